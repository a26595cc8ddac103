#!/usr/bin/env bash
# Opt-in, NOT part of CI: run the squeezerface runtime as an aarch64 program under qemu-user emulation and
# check that every shipped embedder's embeddings match this (x86) machine's within 1e-4 and every shipped
# detector's faces within 0.01 px (the models are taken from the shipped cards, not listed here).
#
#   sudo benchmarks/qemu_aarch64.sh [WORKDIR]        # from the repository root, after .venv is set up
#
# What it does:
#   1. x86 reference: fixed aligned faces and each shipped embedder's embeddings of them, fixed photos and
#      each shipped detector's faces in them (benchmarks/qemu_parity.py make, with this checkout's .venv);
#   2. an arm64 Debian bookworm rootfs (Python 3.11) with debootstrap --arch arm64 --foreign; the packages
#      are unpacked with dpkg-deb, so no arm64 code runs during the build and no binfmt_misc registration
#      is needed (containers rarely allow it);
#   3. the runtime's aarch64 wheels (numpy, OpenCV, onnxruntime, ai-edge-litert: the ones
#      .ci/aarch64_wheels.sh checks) and a wheel of this checkout, installed into the rootfs by the host's
#      pip with --platform, so pip never runs emulated;
#   4. benchmarks/qemu_parity.py check, run by the rootfs's own python3.11 under qemu-aarch64-static -L ROOTFS
#      (emulated core: QEMU_CPU, default cortex-a72) with SQUEEZERFACE_EMULATION=qemu-aarch64 set, writing
#      WORKDIR/parity.json;
#   5. with BENCH=1, also `squeezerface bench --in-process` under emulation into WORKDIR/bench-emulated/
#      (in-process: qemu-user cannot start the worker processes without binfmt_misc): every figure there
#      is flagged EMULATED (device info and Markdown banner) and is never ARM latency; it only shows that
#      the command runs on aarch64.
#
#      The configurations are benchmarks/configs/aarch64_emulated.toml (the default embedder's int8 ONNX,
#      fp32 ONNX and int8 TFLite files, the first embedder's int8 files); BENCH_RUNS (default 5) timed runs
#      per stage after 1 warm-up. With ../shared/data/lfw beside the checkout it times two LFW photos.
#
# Needs: root (debootstrap), apt (qemu-user-static, debootstrap), network (deb.debian.org, PyPI), ~1.5 GB
# in WORKDIR (default /tmp/squeezerface-qemu; reused on a second run), 5-15 minutes. Exit status 1 when
# any embedding or detection differs beyond those tolerances.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$(pwd)
WORK=${1:-/tmp/squeezerface-qemu}
ROOTFS=$WORK/rootfs
SITE=/opt/squeezerface-site            # inside the rootfs
MIRROR=${MIRROR:-http://deb.debian.org/debian}
PY=${PY:-$REPO/.venv/bin/python}
mkdir -p "$WORK"

echo "== 1/5 x86 reference embeddings"
"$PY" benchmarks/qemu_parity.py make --out "$WORK/reference.npz"

echo "== 2/5 arm64 rootfs (debootstrap --foreign, unpacked without running arm64 code)"
need=()
command -v qemu-aarch64-static >/dev/null || need+=(qemu-user-static)
command -v debootstrap >/dev/null || need+=(debootstrap)
if ((${#need[@]})); then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}"
fi
if [ ! -x "$ROOTFS/usr/bin/python3.11" ]; then
    debootstrap --arch=arm64 --foreign --variant=minbase \
        --include=python3.11,libpython3.11-stdlib,libstdc++6,libgomp1,zlib1g,libexpat1,libffi8,libssl3,ca-certificates \
        bookworm "$ROOTFS" "$MIRROR"
    for deb in "$ROOTFS"/var/cache/apt/archives/*.deb; do
        dpkg-deb -x "$deb" "$ROOTFS"
    done
fi
# The emulated core. Debian's qemu 7.2 with -cpu max (SVE, I8MM, BF16) gave wrong numbers in trials here
# (numpy/OpenBLAS matmul non-finite, LiteRT int8 embeddings off) while onnxruntime matched; an emulator
# bug and a library bug cannot be told apart without the real hardware, so the default is a Raspberry Pi
# 4's core. QEMU_CPU=cortex-a76 (Pi 5) and neoverse-n1 also matched in those trials.
export QEMU_CPU=${QEMU_CPU:-cortex-a72}
case "$QEMU_CPU" in
    cortex-a53) part=0xd03 ;; cortex-a57) part=0xd07 ;; cortex-a76) part=0xd0b ;; neoverse-n1) part=0xd0c ;;
    *) part=0xd08 ;;
esac
# qemu-user shows the guest the host's x86 /proc/cpuinfo, on which onnxruntime's CPU detection crashes
# (SIGSEGV at import). With -L, a file under the rootfs shadows the host path: give it an ARM one.
mkdir -p "$ROOTFS/proc"
printf 'processor\t: 0\nFeatures\t: fp asimd evtstrm crc32 cpuid\nCPU implementer\t: 0x41\nCPU architecture: 8\nCPU variant\t: 0x0\nCPU part\t: %s\nCPU revision\t: 0\n\n' \
    "$part" >"$ROOTFS/proc/cpuinfo"
QEMU=(qemu-aarch64-static -L "$ROOTFS")
"${QEMU[@]}" "$ROOTFS/usr/bin/python3.11" -c 'import platform, sys; print("emulated python", sys.version.split()[0], platform.machine())'

echo "== 3/5 aarch64 wheels into the rootfs (host pip, --platform)"
"$PY" -m pip wheel -q --no-deps -w "$WORK/dist" "$REPO"
platforms=(--platform manylinux2014_aarch64)
for minor in $(seq 17 28); do platforms+=(--platform "manylinux_2_${minor}_aarch64"); done
mapfile -t requirements < <("$PY" - <<'EOF'
import tomllib
with open("pyproject.toml", "rb") as f:
    project = tomllib.load(f)["project"]
print("\n".join(project["dependencies"] + project["optional-dependencies"]["tflite"]))
EOF
)
"$PY" -m pip install -q --upgrade --no-warn-conflicts --only-binary=:all: "${platforms[@]}" --python-version 3.11 --implementation cp \
    --target "$ROOTFS$SITE" "${requirements[@]}"
"$PY" -m pip install -q --upgrade --no-warn-conflicts --no-deps --target "$ROOTFS$SITE" "$WORK"/dist/squeezerface-*.whl

echo "== 4/5 embeddings under qemu-aarch64 against x86"
cp benchmarks/qemu_parity.py "$WORK/"
status=0
SQUEEZERFACE_EMULATION=qemu-aarch64 PYTHONPATH="$SITE" OMP_NUM_THREADS=1 \
    "${QEMU[@]}" "$ROOTFS/usr/bin/python3.11" "$WORK/qemu_parity.py" check \
    --reference "$WORK/reference.npz" --report "$WORK/parity.json" || status=$?

if [ "${BENCH:-0}" = 1 ]; then
    echo "== 5/5 squeezerface bench under emulation (EMULATED: not ARM latency)"
    SQUEEZERFACE_EMULATION=qemu-aarch64 PYTHONPATH="$SITE" \
        "${QEMU[@]}" "$ROOTFS/usr/bin/python3.11" -m squeezerface.bench --in-process --runs "${BENCH_RUNS:-5}" --warmup 1 \
        --config benchmarks/configs/aarch64_emulated.toml --threads 1 --no-peer --search-sizes 1k \
        --out "$WORK/bench-emulated" || status=$?
else
    echo "== 5/5 skipped (BENCH=1 also runs squeezerface bench under emulation, labelled EMULATED)"
fi
echo "parity report: $WORK/parity.json"
exit $status
