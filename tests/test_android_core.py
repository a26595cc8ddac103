"""The Android demo's pure-Kotlin core (android_demo/core) against golden vectors from the Python runtime.

Exports fresh golden vectors with android_demo/scripts/export_golden.py, compiles the core's main and test
sources with kotlinc, and runs its JUnit 4 tests on the JVM (org.junit.runner.JUnitCore), printing
"N passed, N failed" for each run. No Gradle or Android SDK is involved: the Android app itself is not built
here (see android_demo/README.md).

Tools: `kotlinc` (on PATH, $KOTLINC, ./node_modules/.bin, or the npm package `kotlin-compiler` installed
globally), `java`, and the junit4 + hamcrest jars (Debian `junit4`, or $JUNIT_JAR / $HAMCREST_JAR). Where
one is missing the tests skip with the reason, except under CI=true, where they fail. The real-face part
skips without ../shared/data, like every test that needs the data.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
DEMO = REPO / "android_demo"
CORE = DEMO / "core"
PACKAGE = "io.squeezerface.core"
SYNTHETIC_CLASSES = ("SyntheticGoldenTest", "CardTest", "GalleryCodecTest")
PHOTO_CLASSES = ("PhotoGoldenTest", "PairsGoldenTest")
REPORT_CLASS = "ZzGoldenReport"
GRADLE_KOTLIN = "2.1"


def _unavailable(reason: str) -> None:
    """Skip, or under CI=true fail: CI must run these tests, not quietly skip them."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"CI=true and {reason}: .ci/run installs kotlin-compiler (npm) and junit4 (apt)")
    pytest.skip(reason)


def _kotlinc() -> Path | None:
    candidates: list[Path] = []
    if os.environ.get("KOTLINC"):
        candidates.append(Path(os.environ["KOTLINC"]))
    for name in ("kotlinc", "kotlinc-jvm"):
        found = shutil.which(name)
        if found:
            candidates.append(Path(found))
    for root in (REPO, DEMO):
        candidates.append(root / "node_modules" / ".bin" / "kotlinc")
        candidates.append(root / "node_modules" / "kotlin-compiler" / "bin" / "kotlinc")
    npm = shutil.which("npm")
    if npm:
        try:
            root = subprocess.run(
                [npm, "root", "-g"], capture_output=True, text=True, timeout=60
            ).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            root = ""
        if root:
            candidates.append(Path(root) / "kotlin-compiler" / "bin" / "kotlinc")
    return next((c for c in candidates if c.is_file() and os.access(c, os.X_OK)), None)


def _jar(env: str, names: tuple[str, ...]) -> Path | None:
    if os.environ.get(env):
        return Path(os.environ[env]) if Path(os.environ[env]).is_file() else None
    for name in names:
        path = Path("/usr/share/java") / name
        if path.is_file():
            return path
    return None


@pytest.fixture(scope="module")
def toolchain() -> dict[str, Path]:
    kotlinc = _kotlinc()
    java = shutil.which("java")
    junit = _jar("JUNIT_JAR", ("junit4.jar", "junit4-4.13.2.jar"))
    hamcrest = _jar("HAMCREST_JAR", ("hamcrest-core.jar", "hamcrest.jar", "hamcrest-all.jar"))
    missing = [
        name
        for name, found in (
            ("kotlinc (npm install -g kotlin-compiler@2.4)", kotlinc),
            ("java", java),
            ("junit4 jar (apt-get install junit4)", junit),
            ("hamcrest jar (comes with junit4)", hamcrest),
        )
        if not found
    ]
    if missing:
        _unavailable("Kotlin core tests need " + ", ".join(missing))
    assert kotlinc and java and junit and hamcrest
    stdlib = kotlinc.resolve().parent.parent / "lib" / "kotlin-stdlib.jar"
    if not stdlib.is_file():
        _unavailable(f"no kotlin-stdlib.jar beside {kotlinc.resolve()} (expected {stdlib})")
    return {"kotlinc": kotlinc, "java": Path(java), "junit": junit, "hamcrest": hamcrest, "stdlib": stdlib}


@pytest.fixture(scope="module")
def golden(tmp_path_factory: pytest.TempPathFactory, toolchain: dict[str, Path]) -> Path:
    """Fresh golden vectors from the runtime (photos only when ../shared/data is there)."""
    import importlib.util

    if importlib.util.find_spec("ai_edge_litert") is None:
        _unavailable("the golden export runs the shipped TFLite models: pip install 'squeezerface[tflite]'")
    out = tmp_path_factory.mktemp("golden")
    cmd = [
        sys.executable,
        str(DEMO / "scripts" / "export_golden.py"),
        "--out",
        str(out),
        "--data",
        str(SHARED_DATA),
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=REPO)
    assert done.returncode == 0, f"export_golden.py failed:\n{done.stdout}\n{done.stderr}"
    return out


@pytest.fixture(scope="module")
def classes(tmp_path_factory: pytest.TempPathFactory, toolchain: dict[str, Path]) -> Path:
    """The core's main and test sources compiled together (one kotlinc run)."""
    out = tmp_path_factory.mktemp("kotlin") / "classes"
    sources = [CORE / "src" / "main" / "kotlin", CORE / "src" / "test" / "kotlin"]
    classpath = os.pathsep.join(str(toolchain[k]) for k in ("junit", "hamcrest"))
    # Language and API level of the Kotlin Gradle plugin in android_demo/gradle/libs.versions.toml, so code
    # that compiles here also compiles in Android Studio.
    level = ["-language-version", GRADLE_KOTLIN, "-api-version", GRADLE_KOTLIN, "-jvm-target", "17"]
    cmd = [str(toolchain["kotlinc"]), *map(str, sources), "-cp", classpath, "-d", str(out), *level, "-nowarn"]
    start = time.monotonic()
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"kotlinc failed ({' '.join(cmd)}):\n{done.stdout}\n{done.stderr}"
    print(f"kotlinc: compiled android_demo/core in {time.monotonic() - start:.0f} s")
    return out


def _run_junit(toolchain: dict[str, Path], classes: Path, golden: Path, names: tuple[str, ...]) -> str:
    classpath = os.pathsep.join([str(classes), *(str(toolchain[k]) for k in ("stdlib", "junit", "hamcrest"))])
    cmd = [
        str(toolchain["java"]),
        f"-Dgolden.dir={golden}",
        "-cp",
        classpath,
        "org.junit.runner.JUnitCore",
        *(f"{PACKAGE}.{n}" for n in (*names, REPORT_CLASS)),
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    return done.stdout + done.stderr


def _counts(output: str) -> tuple[int, int]:
    """(passed, failed) from JUnitCore's summary: "OK (N tests)" or "Tests run: N,  Failures: M"."""
    ok = re.search(r"^OK \((\d+) tests?\)", output, re.M)
    if ok:
        return int(ok.group(1)), 0
    bad = re.search(r"^Tests run: (\d+),\s+Failures: (\d+)", output, re.M)
    if bad:
        return int(bad.group(1)) - int(bad.group(2)), int(bad.group(2))
    raise AssertionError(f"no JUnit summary in the output:\n{output[-4000:]}")


def _check(what: str, output: str, minimum: int, capsys: pytest.CaptureFixture[str]) -> None:
    passed, failed = _counts(output)
    report = [line for line in output.splitlines() if line.startswith("GOLDEN |")]
    with capsys.disabled():
        print(f"\nKotlin core, {what}: {passed} passed, {failed} failed")
        for line in report:
            print("  " + line)
    assert failed == 0, f"{failed} Kotlin tests failed:\n{output[-8000:]}"
    assert passed >= minimum, (
        f"only {passed} Kotlin tests ran (expected at least {minimum}):\n{output[-4000:]}"
    )


def test_kotlin_core_reproduces_synthetic_golden_vectors(
    toolchain: dict[str, Path], classes: Path, golden: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Umeyama, alignment, NMS, decoding, resampling, quantization, names, aggregation; the shipped cards."""
    output = _run_junit(toolchain, classes, golden, SYNTHETIC_CLASSES)
    _check("synthetic golden vectors and cards", output, 150, capsys)


@pytest.mark.data
def test_kotlin_core_reproduces_the_runtime_on_real_faces(
    shared_data: Path,
    toolchain: dict[str, Path],
    classes: Path,
    golden: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Every pipeline stage on 12 LFW photos, end to end with recorded model outputs, 66 pairs, gallery."""
    if not (golden / "golden.json").read_text().count('"photos":['):
        pytest.skip(f"the golden export wrote no photos (looked in {shared_data / 'lfw' / 'images'})")
    output = _run_junit(toolchain, classes, golden, PHOTO_CLASSES)
    _check("real faces (12 LFW photos)", output, 100, capsys)


# -- checks that need no Kotlin toolchain -------------------------------------------------------------


def test_core_is_pure_kotlin() -> None:
    """The core must build for the JVM and for Android alike: no android.*, androidx.* or LiteRT imports."""
    sources = sorted((CORE / "src").rglob("*.kt"))
    assert len(sources) >= 8
    banned = re.compile(r"^import\s+(android|androidx|org\.tensorflow|com\.google\.ai\.edge)\.", re.M)
    offenders = [str(p.relative_to(DEMO)) for p in sources if banned.search(p.read_text())]
    assert not offenders, f"platform imports in the pure core: {offenders}"


def test_gradle_files_are_complete_and_consistent() -> None:
    """Every module in settings has a build file, every libs.* alias used exists in the version catalog,
    LiteRT is pinned, and Kotlin packages match their folders."""
    settings = (DEMO / "settings.gradle.kts").read_text()
    modules = re.findall(r'":(\w+)"', settings)
    assert sorted(modules) == ["app", "core"]
    for m in modules:
        assert (DEMO / m / "build.gradle.kts").is_file(), m
    catalog = (DEMO / "gradle" / "libs.versions.toml").read_text()
    sections = dict(re.findall(r"^\[(\w+)\]\n(.*?)(?=^\[|\Z)", catalog, re.M | re.S))
    versions = dict(re.findall(r'^([\w-]+)\s*=\s*"([^"]+)"', sections["versions"], re.M))
    aliases = {
        kind: set(re.findall(r"^([\w-]+)\s*=", sections[kind], re.M)) for kind in ("libraries", "plugins")
    }
    for ref in re.findall(r'version\.ref\s*=\s*"([\w-]+)"', catalog):
        assert ref in versions, f"version.ref {ref} is not in [versions]"
    assert re.search(r'module\s*=\s*"com\.google\.ai\.edge\.litert:litert"', sections["libraries"])
    assert re.fullmatch(r"\d+\.\d+\.\d+", versions["litert"])
    assert versions["kotlin"].startswith(GRADLE_KOTLIN + "."), (
        "the driver compiles at the catalog's Kotlin level"
    )
    for build in [DEMO / "build.gradle.kts", *(DEMO / m / "build.gradle.kts" for m in modules)]:
        text = re.sub(r"//.*", "", build.read_text())  # code only, not comments
        for alias in re.findall(r"libs\.plugins\.([\w.]+)", text):
            assert alias.replace(".", "-") in aliases["plugins"], f"{build.name}: plugin {alias}"
        for alias in re.findall(r"libs\.(?!plugins\.)([\w.]+)", text):
            assert alias.replace(".", "-") in aliases["libraries"], f"{build.name}: library {alias}"
    assert 'project(":core")' in (DEMO / "app" / "build.gradle.kts").read_text()
    assert (DEMO / "gradle" / "wrapper" / "gradle-wrapper.properties").is_file()
    assert (DEMO / "app" / "src" / "main" / "AndroidManifest.xml").is_file()
    for module, package in (("core", "io.squeezerface.core"), ("app", "io.squeezerface.demo")):
        for source in (DEMO / module / "src").rglob("*.kt"):
            declared = re.search(r"^package\s+([\w.]+)", source.read_text(), re.M)
            assert declared and declared.group(1) == package, source
            assert source.parent.as_posix().endswith(package.replace(".", "/")), source


def test_copy_models_copies_the_runtime_litert_files(tmp_path: Path) -> None:
    """The documented copy step: the files FaceVerifier(backend="litert") runs, byte for byte, with cards."""
    import hashlib
    import importlib.util
    import json

    from squeezerface.modelcard import load_card
    from squeezerface.shipped import model_path

    spec = importlib.util.spec_from_file_location("copy_models", DEMO / "scripts" / "copy_models.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    files = module.copy_models(tmp_path)
    assert set(files) >= {"detector", "embedder"}
    manifest = json.loads((tmp_path / "models.json").read_text())
    for name in files.values():
        assert manifest[next(r for r, n in files.items() if n == name)] == name
        copied = hashlib.sha256((tmp_path / name).read_bytes()).hexdigest()
        assert copied == load_card(model_path(name), verify=False).sha256
        assert (tmp_path / (name + ".json")).read_bytes() == model_path(name).with_name(
            name + ".json"
        ).read_bytes()
