"""Gallery reliability harness for the reliability benchmark and the tests: concurrent writers, creating and
opening one new gallery at once, kill -9 mid-enrolment, corrupted gallery files. Used by
benchmarks/reliability.py (the long runs) and tests/test_reliability.py (CI-sized)."""

from __future__ import annotations

import multiprocessing as mp
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

TOY_MODEL = ("reliability", "1", 64)


def _model() -> Any:
    from squeezerface.gallery import ModelInfo

    return ModelInfo(*TOY_MODEL)


def person_templates(name: str, count: int) -> np.ndarray:
    """The templates a writer enrols for `name`: deterministic, so the parent can check every byte."""
    seed = int.from_bytes(name.encode()[:16].ljust(16, b"\0"), "little") ^ len(name)
    rng = np.random.default_rng(seed)
    centre = rng.normal(size=TOY_MODEL[2])
    x = centre + 0.3 * rng.normal(size=(count, TOY_MODEL[2]))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def _writer(
    path: str, writer: int, enrolments: int, templates: int, key: str | None, barrier: Any, results: Any
) -> None:
    """One concurrent writer: enrols w{writer}_p{i} and identifies after each enrolment."""
    from squeezerface.errors import SqueezerfaceError
    from squeezerface.gallery import Gallery

    stats = Counter[str]()
    try:
        barrier.wait(60)
        with Gallery(path, _model(), key=key if key else False, timeout=60) as gallery:
            for i in range(enrolments):
                name = f"w{writer}_p{i}"
                vectors = person_templates(name, templates)
                try:
                    gallery.enroll(name, vectors)
                    stats["enrolled"] += 1
                except SqueezerfaceError as exc:
                    stats[f"enrol_error:{type(exc).__name__}"] += 1
                    continue
                best = gallery.identify(vectors[0], top_k=3)
                stats["identified"] += 1
                if not best or best[0].name != name:
                    stats["identify_wrong"] += 1
                if not gallery.verify(name, vectors[1 % templates], threshold=0.0).accepted:
                    stats["verify_wrong"] += 1
    except BaseException as exc:
        stats[f"failed:{type(exc).__name__}:{exc}"] += 1
    results.put((writer, dict(stats)))


def _opener(paths: list[str], key: str | None, barrier: Any, results: Any) -> None:
    """One of the processes racing to create and open the same new galleries, one round per path."""
    from squeezerface.gallery import Gallery

    failures = []
    for path in paths:
        barrier.wait(60)
        try:
            Gallery(path, _model(), key=key if key else False, timeout=30).close()
        except Exception as exc:
            failures.append(f"{type(exc).__name__}: {exc}"[:300])
    results.put(failures)


def run_open_race(folder: Path, processes: int, rounds: int, key: str | None = None) -> dict[str, Any]:
    """`processes` processes create and open the same brand-new gallery at once, `rounds` times (a new file
    each round): every open must succeed and every file must be one initialised gallery."""
    from squeezerface.gallery import Gallery

    ctx = mp.get_context("spawn")
    paths = [str(folder / f"race-{'encrypted' if key else 'plain'}-{r}.sqlite") for r in range(rounds)]
    barrier, results = ctx.Barrier(processes), ctx.Queue()
    procs = [ctx.Process(target=_opener, args=(paths, key, barrier, results)) for _ in range(processes)]
    for p in procs:
        p.start()
    failures = [f for _ in procs for f in results.get(timeout=600)]
    for p in procs:
        p.join(60)
    broken = 0
    for path in paths:
        try:
            Gallery(path, _model(), key=key if key else False, create=False).close()
        except Exception as exc:
            broken += 1
            failures.append(f"{path}: {type(exc).__name__}: {exc}"[:300])
        broken += _integrity(Path(path)) != "ok"
    return {
        "processes": processes,
        "rounds": rounds,
        "encrypted": bool(key),
        "open_failures": len(failures) - broken,
        "broken_files": broken,
        "failures": failures[:20],
    }


def _integrity(path: Path) -> str:
    db = sqlite3.connect(path)
    try:
        return ";".join(str(r[0]) for r in db.execute("PRAGMA integrity_check").fetchall())
    finally:
        db.close()


def run_concurrent(
    folder: Path, writers: int, enrolments: int, templates: int = 3, key: str | None = None
) -> dict[str, Any]:
    """`writers` processes enrol and identify at once in one new gallery; then every record is counted."""
    from squeezerface.gallery import Gallery

    ctx = mp.get_context("spawn")
    path = folder / f"concurrent-{'encrypted' if key else 'plain'}.sqlite"
    barrier, results = ctx.Barrier(writers), ctx.Queue()
    procs = [
        ctx.Process(target=_writer, args=(str(path), w, enrolments, templates, key, barrier, results))
        for w in range(writers)
    ]
    started = time.monotonic()
    for p in procs:
        p.start()
    stats = Counter[str]()
    for _ in procs:
        _, s = results.get(timeout=600)
        stats.update(s)
    for p in procs:
        p.join(60)
    seconds = time.monotonic() - started
    expected = {
        f"w{w}_p{i}": person_templates(f"w{w}_p{i}", templates)
        for w in range(writers)
        for i in range(enrolments)
    }
    lost = duplicated = corrupt = unexpected = 0
    with Gallery(path, _model(), key=key if key else False, create=False) as gallery:
        present = {p.name: p.templates for p in gallery.identities()}
        for name, vectors in expected.items():
            have = present.get(name, 0)
            lost += max(0, templates - have)
            duplicated += max(0, have - templates)
            if have:
                stored = gallery.templates(name)
                if stored.shape != vectors.shape or not np.allclose(stored, vectors, atol=1e-6):
                    corrupt += 1
        unexpected = len(set(present) - set(expected))
    integrity = _integrity(path)
    return {
        "writers": writers,
        "enrolments_per_writer": enrolments,
        "templates_per_enrolment": templates,
        "encrypted": bool(key),
        "records_expected": len(expected) * templates,
        "records_lost": lost,
        "records_duplicated": duplicated,
        "records_corrupt": corrupt,
        "unexpected_identities": unexpected,
        "integrity_check": integrity,
        "writer_stats": dict(sorted(stats.items())),
        "exit_codes": [p.exitcode for p in procs],
        "seconds": round(seconds, 2),
    }


_KILL9_CHILD = r"""
import sys
import numpy as np
from squeezerface.bench.gallery_stress import person_templates, _model
from squeezerface.gallery import Gallery

path, round_, templates, key = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
rng = np.random.default_rng(round_)
enrolled = []
with Gallery(path, _model(), key=key if key != "-" else False, timeout=30) as g:
    print("ready", flush=True)
    i = 0
    while True:
        name = f"r{round_}_p{i}"
        g.enroll(name, person_templates(name, templates))
        print("enrolled", name, flush=True)
        enrolled.append(name)
        i += 1
        if i % 3 == 0 and len(enrolled) > 2:
            victim = enrolled.pop(int(rng.integers(len(enrolled) - 1)))
            print("forgetting", victim, flush=True)
            g.forget(victim, vacuum=bool(rng.random() < 0.25))
            print("forgot", victim, flush=True)
"""


@dataclass
class _Kill9Tally:
    """What the kill -9 rounds found, kept over every round: what was committed must stay unless forgotten."""

    failures: list[str] = field(default_factory=list)
    integrity_failures: int = 0
    partial: int = 0
    lost: int = 0
    resurrected: int = 0
    open_failures: int = 0
    enrolled_total: int = 0
    forgotten_total: int = 0
    committed: set[str] = field(default_factory=set)
    forgetting: set[str] = field(default_factory=set)
    forgotten: set[str] = field(default_factory=set)
    reported: set[str] = field(default_factory=set)

    def add_child_log(self, out: str) -> None:
        """What a killed child printed: names enrolled, forgets started and forgets returned."""
        seen: dict[str, set[str]] = {"enrolled": set(), "forgetting": set(), "forgot": set()}
        for line in out.splitlines():
            words = line.split()
            if len(words) == 2 and words[0] in seen:
                seen[words[0]].add(words[1])
        self.enrolled_total += len(seen["enrolled"])
        self.forgotten_total += len(seen["forgot"])
        self.committed |= seen["enrolled"]
        self.forgetting |= seen["forgetting"]
        self.forgotten |= seen["forgot"]

    def fail(self, message: str) -> None:
        self.failures.append(message[:500])


def _start_kill9_child(path: Path, r: int, templates: int, key: str | None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", _KILL9_CHILD, str(path), str(r), str(templates), key or "-"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        text=True,
    )


def _check_after_kill(path: Path, r: int, templates: int, key: str | None, tally: _Kill9Tally) -> None:
    """Open the gallery from scratch: whole enrolments with their templates, none committed lost, none
    forgotten back, a search that runs."""
    from squeezerface.gallery import Gallery

    with Gallery(path, _model(), key=key if key else False, create=False) as gallery:
        present = {p.name: p.templates for p in gallery.identities()}
        for name, count in present.items():
            if count != templates:
                tally.partial += 1
                tally.fail(f"round {r}: {name} has {count} of {templates} templates")
            elif not np.allclose(gallery.templates(name), person_templates(name, templates), atol=1e-6):
                tally.partial += 1
                tally.fail(f"round {r}: {name}'s templates differ from those enrolled")
        # a forget the child started but did not see return may or may not have committed
        missing = tally.committed - tally.forgetting - set(present) - tally.reported
        back = (tally.forgotten & set(present)) - tally.reported
        tally.reported |= missing | back  # each counted once, in the round it went wrong
        tally.lost += len(missing)
        tally.resurrected += len(back)
        if missing:
            tally.fail(f"round {r}: committed enrolments missing: {sorted(missing)[:5]}")
        gallery.identify(person_templates("probe", 1)[0])


def _kill9_round(
    path: Path, r: int, templates: int, key: str | None, delay: Callable[[], float], tally: _Kill9Tally
) -> None:
    """Start a child enrolling, kill it after `delay()` seconds (drawn only once it is ready), check."""
    child = _start_kill9_child(path, r, templates, key)
    assert child.stdout is not None
    first = child.stdout.readline()
    if first.strip() != "ready":
        child.kill()
        tally.fail(f"round {r}: child did not start: {first!r} {child.stderr.read() if child.stderr else ''}")
        tally.open_failures += 1
        return
    time.sleep(delay())
    os.kill(child.pid, signal.SIGKILL)
    out, _ = child.communicate(timeout=60)
    tally.add_child_log(out)
    try:
        _check_after_kill(path, r, templates, key, tally)
    except Exception as exc:  # any failure to open or read is counted
        tally.open_failures += 1
        tally.fail(f"round {r}: {type(exc).__name__}: {exc}")
    integrity = _integrity(path)
    if integrity != "ok":
        tally.integrity_failures += 1
        tally.fail(f"round {r}: integrity_check: {integrity[:200]}")


def run_kill9(
    folder: Path,
    rounds: int,
    templates: int = 4,
    key: str | None = None,
    seed: int = 0,
    max_delay: float = 0.6,
) -> dict[str, Any]:
    """Kill a child mid-enrolment `rounds` times; after each kill check the gallery from scratch."""
    path = folder / f"kill9-{'encrypted' if key else 'plain'}.sqlite"
    rng = random.Random(seed)
    tally = _Kill9Tally()
    started = time.monotonic()
    for r in range(rounds):
        _kill9_round(path, r, templates, key, lambda: rng.uniform(0.0, max_delay), tally)
    return {
        "rounds": rounds,
        "templates_per_enrolment": templates,
        "encrypted": bool(key),
        "enrolments_committed": tally.enrolled_total,
        "forgets_committed": tally.forgotten_total,
        "integrity_failures": tally.integrity_failures,
        "partial_enrolments": tally.partial,
        "committed_lost": tally.lost,
        "forgotten_resurrected": tally.resurrected,
        "open_failures": tally.open_failures,
        "failures": tally.failures[:50],
        "seconds": round(time.monotonic() - started, 1),
    }


def run_corrupt_files(folder: Path, count: int, seed: int = 0, key: str | None = None) -> dict[str, Any]:
    """Overwrite random bytes of copies of a gallery: each must open and work, or raise a typed error with
    the file left byte for byte; never anything else."""
    from squeezerface.errors import SqueezerfaceError
    from squeezerface.gallery import Gallery

    good = folder / f"corrupt-source-{'encrypted' if key else 'plain'}.sqlite"
    with Gallery(good, _model(), key=key if key else False) as g:
        for i in range(30):
            g.enroll(f"p{i}", person_templates(f"p{i}", 3))
    original = good.read_bytes()
    rng = np.random.default_rng(seed)
    outcomes: Counter[str] = Counter()
    changed_after_error = crashes = 0
    failures: list[str] = []
    target = folder / "corrupt.sqlite"
    for case in range(count):
        data = bytearray(original)
        for _ in range(int(rng.choice([1, 4, 32, 256]))):
            at = int(rng.integers(len(data))) if rng.random() < 0.7 else int(rng.integers(0, 100))
            data[at] = int(rng.integers(256))
        if rng.random() < 0.1:
            data = data[: int(rng.integers(len(data)))]
        for leftover in (Path(f"{target}-wal"), Path(f"{target}-shm")):
            leftover.unlink(missing_ok=True)
        target.write_bytes(bytes(data))
        try:
            with Gallery(target, _model(), key=key if key else False, create=False) as g:
                g.identities()
                g.identify(person_templates("p1", 1)[0])
                g.templates(g.identities()[0].name) if len(g) else None
            outcomes["opened"] += 1
        except SqueezerfaceError as exc:
            outcomes[type(exc).__name__] += 1
            if target.read_bytes() != bytes(data):
                changed_after_error += 1
                failures.append(f"case {case}: the file changed although opening failed ({exc})"[:300])
        except Exception as exc:  # anything but a typed error is a crash
            crashes += 1
            failures.append(f"case {case}: {type(exc).__name__}: {exc}"[:300])
    return {
        "files": count,
        "encrypted": bool(key),
        "outcomes": dict(sorted(outcomes.items())),
        "crashes": crashes,
        "changed_after_error": changed_after_error,
        "failures": failures[:20],
    }
