"""`squeezerface demo`: the whole pipeline on a public-domain photo shipped by scikit-image, offline."""

from __future__ import annotations

import json

import pytest

from squeezerface.cli import main


@pytest.mark.parametrize("backend", ["onnxruntime", "litert"])
def test_demo_verifies_the_astronaut_against_a_second_capture(
    backend: str, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("skimage", reason="the demo photo comes with the 'demo' extra (scikit-image)")
    if backend == "litert":
        pytest.importorskip("ai_edge_litert", reason="LiteRT comes with the 'tflite' extra")
    assert main(["demo", "--json", "--backend", backend]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["match"]["same"] and out["match"]["score"] > out["match"]["threshold"]
    original, second = out["faces"]
    assert second["quality"]["iod"] < original["quality"]["iod"]  # the second capture is smaller in frame


def test_demo_names_the_extra_when_scikit_image_is_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    import builtins

    real_import = builtins.__import__

    def no_skimage(name: str, *args: object, **kwargs: object) -> object:
        if name.split(".")[0] == "skimage":
            raise ImportError("blocked in this test")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_skimage)
    assert main(["demo"]) == 3
