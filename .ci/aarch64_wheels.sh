#!/usr/bin/env bash
# CI: every runtime dependency must install from a binary wheel on 64-bit ARM Linux (Raspberry Pi OS,
# Ubuntu/Debian arm64, Jetson) for CPython 3.11, with no compiler on the device. For each dependency
# named in pyproject.toml (the runtime `dependencies` and the LiteRT `tflite` extra) it asks pip for an
# aarch64 manylinux wheel, prints the file it resolved and its platform tag, and fails if any has none.
# Then it resolves the whole dependency closure the same way (transitive dependencies may be pure-Python
# "any" wheels). Needs network access to PyPI; downloads about 100 MB into a temporary folder.
#
#   .ci/aarch64_wheels.sh            # from the repository root (or anywhere: it finds pyproject.toml)
#
# Tags accepted: every manylinux tag a device with glibc 2.28 can install, listed one by one because pip
# (23.x) does not widen an explicit --platform to older glibc versions:
#   manylinux2014_aarch64 (the legacy name of manylinux_2_17_aarch64), manylinux_2_17_aarch64 ...
#   manylinux_2_28_aarch64. glibc 2.28 is Debian 10 / Raspberry Pi OS buster; bullseye has 2.31, bookworm
#   2.36, Ubuntu 20.04 2.31. (ai-edge-litert 2.x ships manylinux_2_27_aarch64 wheels, numpy 2.x
#   manylinux_2_27/2_28, onnxruntime manylinux_2_28, OpenCV manylinux2014.) Android/Termux is not
#   manylinux (bionic libc): see benchmarks/README.md.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON_VERSION=3.11
TAGS=(manylinux2014_aarch64)
for minor in $(seq 17 28); do TAGS+=("manylinux_2_${minor}_aarch64"); done
PLATFORM_ARGS=()
for tag in "${TAGS[@]}"; do PLATFORM_ARGS+=(--platform "$tag"); done

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
python3 -m venv "$tmp/venv"
pip=("$tmp/venv/bin/python" -m pip --disable-pip-version-check -q)

# The requirement strings, read from pyproject.toml (Python >= 3.11 has tomllib).
mapfile -t requirements < <("$tmp/venv/bin/python" - <<'EOF'
import tomllib
with open("pyproject.toml", "rb") as f:
    project = tomllib.load(f)["project"]
for req in project["dependencies"] + project["optional-dependencies"]["tflite"]:
    print(req)
EOF
)
echo "aarch64 wheel check: CPython $PYTHON_VERSION; accepted tags: ${TAGS[*]}"
echo "runtime requirements: ${requirements[*]}"

missing=()
for req in "${requirements[@]}"; do
    dest="$tmp/direct/$(echo "$req" | tr -c 'A-Za-z0-9._-' '_')"
    mkdir -p "$dest"
    if "${pip[@]}" download --only-binary=:all: "${PLATFORM_ARGS[@]}" --python-version "$PYTHON_VERSION" \
        --implementation cp --no-deps -d "$dest" "$req" >"$dest.log" 2>&1; then
        wheel=$(basename "$(ls "$dest"/*.whl)")
        tag=${wheel%.whl}
        tag=${tag##*-}
        printf '  ok       %-32s %-70s %s\n' "$req" "$wheel" "$tag"
    else
        printf '  MISSING  %-32s no aarch64 wheel for CPython %s:\n' "$req" "$PYTHON_VERSION"
        sed 's/^/           /' "$dest.log" | tail -n 3
        missing+=("$req")
    fi
done
if ((${#missing[@]})); then
    echo "FAIL: no aarch64 wheel for: ${missing[*]}"
    exit 1
fi

echo "dependency closure (transitive dependencies included):"
if ! "${pip[@]}" download --only-binary=:all: "${PLATFORM_ARGS[@]}" --python-version "$PYTHON_VERSION" \
    --implementation cp -d "$tmp/closure" "${requirements[@]}" >"$tmp/closure.log" 2>&1; then
    tail -n 5 "$tmp/closure.log"
    echo "FAIL: the dependency closure does not resolve to wheels for aarch64"
    exit 1
fi
for wheel in "$tmp"/closure/*.whl; do
    name=$(basename "$wheel")
    tag=${name%.whl}
    tag=${tag##*-}
    printf '  %-80s %s\n' "$name" "$tag"
done
echo "OK: every runtime dependency resolves to a wheel for aarch64 / CPython $PYTHON_VERSION"
