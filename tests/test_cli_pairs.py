"""`squeezerface verify --pairs FILE` (issue 17): many pairs in one process, from a file or standard input,
one line per pair (JSON Lines with --json), a failing pair reported and the rest verified; and the start-up
of `verify`, which must not import the benchmark package or unrelated extras."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from squeezerface.cli import EXIT_BAD_INPUT, EXIT_OK, main


def _lfw_photo(shared: Path, name: str, index: int) -> Path:
    return shared / "lfw" / "images" / name / f"{name}_{index:04d}.jpg"


@pytest.fixture
def photos(shared_data: Path) -> dict[str, str]:
    """The photos the other CLI tests use: two of Colin Powell, one of George W. Bush."""
    return {
        "powell_a": str(_lfw_photo(shared_data, "Colin_Powell", 38)),
        "powell_b": str(_lfw_photo(shared_data, "Colin_Powell", 40)),
        "bush": str(_lfw_photo(shared_data, "George_W_Bush", 7)),
    }


def _listing(photos: dict[str, str], missing: Path) -> str:
    return (
        "# same person, then different people, then a photo that is not there\n"
        f"{photos['powell_a']} {photos['powell_b']}\n"
        "\n"
        f"{photos['powell_a']}\t{photos['bush']}\n"
        f"{missing} {photos['powell_b']}\n"
        f"{photos['bush']} {photos['powell_a']}\n"
    )


@pytest.mark.data
def test_pairs_file_text_one_line_per_pair_and_a_failure_goes_on(
    photos: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "nope.jpg"
    listing = tmp_path / "pairs.txt"
    listing.write_text(_listing(photos, missing))
    assert main(["verify", "--pairs", str(listing)]) == EXIT_BAD_INPUT  # the failed pair's status
    captured = capsys.readouterr()
    out = captured.out.splitlines()
    assert len(out) == 4, out
    assert out[0].startswith(f"{photos['powell_a']} {photos['powell_b']}: same person: cosine ")
    assert out[1].startswith(f"{photos['powell_a']} {photos['bush']}: different people: cosine ")
    assert out[2].startswith(f"{missing} {photos['powell_b']}: error: cannot decode image {missing}")
    assert out[3].startswith(f"{photos['bush']} {photos['powell_a']}: different people")  # went on
    assert f"error: {listing}:5: cannot decode image {missing}" in captured.err


@pytest.mark.data
def test_pairs_from_stdin_json_lines(
    photos: dict[str, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    missing = tmp_path / "nope.jpg"
    monkeypatch.setattr(sys, "stdin", io.StringIO(_listing(photos, missing)))
    assert main(["verify", "--pairs", "-", "--json"]) == EXIT_BAD_INPUT
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(r["a"], r["b"]) for r in records] == [
        (photos["powell_a"], photos["powell_b"]),
        (photos["powell_a"], photos["bush"]),
        (str(missing), photos["powell_b"]),
        (photos["bush"], photos["powell_a"]),
    ]
    assert [r.get("accepted") for r in records] == [True, False, None, False]
    # a result has the single verify's fields, the same values, plus a and b
    main(["verify", photos["powell_a"], photos["powell_b"], "--json"])
    single = json.loads(capsys.readouterr().out)
    assert set(records[0]) == set(single) | {"a", "b"}
    assert {k: records[0][k] for k in single} == single
    # a failure is the error object plus the pair
    assert set(records[2]) == {"a", "b", "error"}
    assert records[2]["error"]["type"] == "ImageDecodeError" and records[2]["error"]["path"] == str(missing)
    assert set(records[2]["error"]) == {"type", "message", "path"}


@pytest.mark.data
def test_pairs_all_ran_is_exit_0_and_no_face_names_its_photo(
    photos: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import cv2
    import numpy as np

    listing = tmp_path / "pairs.txt"
    listing.write_text(f"{photos['powell_a']} {photos['bush']}\n")
    assert (
        main(["verify", "--pairs", str(listing)]) == EXIT_OK
    )  # "different people" is an answer, not a failure
    capsys.readouterr()
    grey = tmp_path / "grey.png"
    cv2.imwrite(str(grey), np.full((120, 100, 3), 128, np.uint8))
    listing.write_text(
        f"{photos['powell_a']} {grey}\nonly_one.jpg\n{photos['powell_a']} {photos['powell_b']}\n"
    )
    assert main(["verify", "--pairs", str(listing), "--json"]) == EXIT_BAD_INPUT
    first, second, third = (json.loads(line) for line in capsys.readouterr().out.splitlines())
    assert first["error"]["type"] == "NoFaceError" and first["error"]["path"] == str(grey)
    assert second["error"]["type"] == "PairsFormatError" and (second["a"], second["b"]) == (
        "only_one.jpg",
        None,
    )
    assert third["accepted"] is True


def test_pairs_beside_photos_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    listing = tmp_path / "pairs.txt"
    listing.write_text("a.jpg b.jpg\n")
    with pytest.raises(SystemExit) as done:
        main(["verify", "a.jpg", "b.jpg", "--pairs", str(listing)])
    assert done.value.code == EXIT_BAD_INPUT
    assert "--pairs" in capsys.readouterr().err
    with pytest.raises(SystemExit) as done:
        main(["verify", "a.jpg", "--pairs", str(listing), "--json"])
    assert done.value.code == EXIT_BAD_INPUT
    assert json.loads(capsys.readouterr().out)["error"]["type"] == "UsageError"
    with pytest.raises(SystemExit) as done:
        main(["verify", "a.jpg"])  # one photo and no --pairs
    assert done.value.code == EXIT_BAD_INPUT


def test_missing_pairs_file_fails_before_any_model_work(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "none.txt"
    assert main(["verify", "--pairs", str(missing), "--json"]) == EXIT_BAD_INPUT
    assert json.loads(capsys.readouterr().out)["error"]["path"] == str(missing)


_IMPORTS_OF_VERIFY = """
import sys
from squeezerface.cli import main
main(["verify", "missing_a.jpg", "missing_b.jpg"])  # the whole verify path up to reading the photo
unwanted = ("squeezerface.bench", "squeezerface.gallery", "sqlite3", "PIL", "cryptography", "tqdm",
            "matplotlib", "torch", "dlib", "skimage")
print(sorted(m for m in sys.modules if m.split(".")[0] in unwanted or m.startswith(unwanted)))
"""


def test_verify_start_up_imports_no_benchmark_package_or_extras() -> None:
    done = subprocess.run(
        [sys.executable, "-c", _IMPORTS_OF_VERIFY], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == "[]"
    bare = subprocess.run(
        [sys.executable, "-c", "import sys, squeezerface; print('squeezerface.bench' in sys.modules)"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert bare.stdout.strip() == "False"


def test_python_dash_m_runs_the_command_line() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "squeezerface", "--version"], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0 and done.stdout.strip() == "squeezerface 0.1.0"
