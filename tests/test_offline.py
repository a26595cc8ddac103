"""Offline for real: a process that uses the runtime opens no network socket and writes nothing under $HOME.

onnxruntime 1.32 starts a telemetry client at import (files under ~/.cache/Microsoft, DNS look-ups for its
upload host once the process has lived about 9 s); `squeezerface._ort` turns it off without the user
setting anything. These tests run the runtime in a child process whose environment has no
ORT_DISABLE_TELEMETRY (pytest's own process has it, set by `import squeezerface`: it must not leak in).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

LFW = Path(__file__).resolve().parents[2] / "shared" / "data" / "lfw" / "images"
PHOTOS = (LFW / "George_W_Bush" / "George_W_Bush_0007.jpg", LFW / "George_W_Bush" / "George_W_Bush_0016.jpg")
"""The network test's photo and a second one of the same person; without ../shared/data, the demo pair."""

STAY_ALIVE_S = 20  # onnxruntime's telemetry upload started after about 9 s

_VERIFY_AND_WAIT = textwrap.dedent(
    """
    import sys, time

    def no_network(event, args):
        if event.startswith("socket."):
            raise OSError(f"network access attempted: {event}")

    sys.addaudithook(no_network)
    import squeezerface
    from squeezerface import FaceVerifier

    if sys.argv[1] == "-":
        from squeezerface.demo import demo_images

        pair = demo_images()
        a, b = pair.original, pair.recaptured_jpeg
    else:
        a, b = sys.argv[1], sys.argv[2]
    match = FaceVerifier().verify(a, b)
    print("same" if match.same else "different", flush=True)
    time.sleep(float(sys.argv[3]))
    print("OK")
    """
)


def _child_env(home: Path) -> dict[str, str]:
    """The test process's environment with HOME moved and nothing that would switch telemetry off for us.

    XDG_CACHE_HOME is removed so that anything using the default cache location lands under HOME where the
    test sees it; the configured cache is `$SQUEEZERFACE_CACHE` inside HOME (allowed to appear)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ORT_", "XDG_CACHE_HOME"))}
    env.update(HOME=str(home), SQUEEZERFACE_CACHE=str(home / "configured-cache" / "embeddings.sqlite"))
    return env


def _strace() -> str:
    """strace, usable here (ptrace allowed); where it is not: a failure in CI, else a skip."""
    strace = shutil.which("strace")
    usable = strace is not None and (
        subprocess.run([strace, "-qq", "-o", os.devnull, "true"], capture_output=True, timeout=30).returncode
        == 0
    )
    if not usable:
        message = "strace is missing or cannot trace here (.ci/run installs it: apt-get install strace)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    assert strace is not None
    return strace


def _created_files(home: Path) -> list[str]:
    return sorted(str(p.relative_to(home)) for p in home.rglob("*") if not p.is_dir())


def _photos() -> list[str]:
    if all(p.is_file() for p in PHOTOS):
        return [str(p) for p in PHOTOS]
    pytest.importorskip("skimage", reason="without ../shared/data the demo photo (the 'demo' extra) is used")
    return ["-", "-"]


@pytest.mark.slow
def test_a_process_alive_20_s_after_verifying_opens_no_socket_and_writes_nothing_in_home(
    tmp_path: Path,
) -> None:
    """Under strace with every socket() refused (EACCES): no network system call but AF_UNIX, even 20 s
    after the last verification, and no file under $HOME but the configured cache."""
    strace = _strace()
    home = tmp_path / "home"
    home.mkdir()
    trace = tmp_path / "network.trace"
    command = [
        strace, "-f", "-qq", "-e", "trace=%network", "-e", "inject=socket:error=EACCES", "-o", str(trace),
        sys.executable, "-c", _VERIFY_AND_WAIT, *_photos(), str(STAY_ALIVE_S),
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, env=_child_env(home))
    assert done.returncode == 0, done.stderr[-3000:]
    decision, ok = done.stdout.split()  # the decision itself is the accuracy tests' business
    assert decision in ("same", "different") and ok == "OK", done.stdout
    calls = [line for line in trace.read_text().splitlines() if line.strip() and "AF_UNIX" not in line]
    assert calls == [], calls[:10]
    stray = [f for f in _created_files(home) if not f.startswith("configured-cache/")]
    assert stray == [], stray
    assert "telemetry" not in done.stderr.lower(), done.stderr[-2000:]


def test_an_unwritable_home_prints_no_telemetry_warning(tmp_path: Path) -> None:
    """With telemetry on, onnxruntime warns "Failed to persist telemetry device ID" on every command run
    where ~/.cache cannot be created; with it off there is nothing to persist."""
    env = _child_env(Path("/proc/squeezerface-unwritable-home"))  # not creatable, even by root
    code = (
        "import squeezerface, numpy as np\n"
        "squeezerface.FaceVerifier().embed(np.zeros((1, 112, 112, 3), np.uint8))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=180, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "telemetry" not in done.stderr.lower(), done.stderr[-2000:]


def test_onnxruntime_imported_first_is_named_not_silent(tmp_path: Path) -> None:
    """Imported before squeezerface, onnxruntime has already started its telemetry (it reads the variable
    only at import), which nothing in-process can undo: the first model opened warns once, naming the fix."""
    code = (
        "import warnings, onnxruntime, squeezerface, numpy as np\n"
        "with warnings.catch_warnings(record=True) as seen:\n"
        "    warnings.simplefilter('always')\n"
        "    squeezerface.FaceVerifier().embed(np.zeros((1, 112, 112, 3), np.uint8))\n"
        "print(sum('import squeezerface first' in str(w.message) for w in seen))\n"
    )
    env = _child_env(tmp_path)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=180, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.split()[-1] == "1", done.stdout
