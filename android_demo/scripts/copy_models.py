"""Copy the shipped LiteRT models and their cards from the installed squeezerface package into the app.

The app ships exactly the files the Python runtime uses with `FaceVerifier(backend="litert")`: the
detector and embedder of `squeezerface.shipped.SHIPPED_FOR_BACKEND["litert"]` and the landmark refiner the
detector's card names. They are found with `squeezerface.shipped.model_path` (importlib.resources, so
wherever pip installed the package), checked against their cards' SHA-256, and copied with the cards into
android_demo/app/src/main/assets/ (git-ignored: models are never duplicated in the repository), plus a
models.json that tells the app which file is which.

    python android_demo/scripts/copy_models.py [--dest DIR] [--operating-point far_1e-03]
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

DEST = Path(__file__).resolve().parents[1] / "app" / "src" / "main" / "assets"


def shipped_files() -> dict[str, str]:
    """Role -> shipped file name, as the LiteRT runtime picks them."""
    from squeezerface.modelcard import load_card
    from squeezerface.shipped import SHIPPED_FOR_BACKEND, model_path

    embedder, detector = SHIPPED_FOR_BACKEND["litert"]
    refiner = load_card(model_path(detector), verify=False).training.get("detection", {}).get("refiner")
    files = {"detector": detector, "embedder": embedder}
    if refiner:
        files["refiner"] = refiner
    return files


def copy_models(dest: Path, operating_point: str = "far_1e-03") -> dict[str, str]:
    import squeezerface
    from squeezerface.modelcard import card_path, load_card
    from squeezerface.shipped import model_path

    files = shipped_files()
    dest.mkdir(parents=True, exist_ok=True)
    for name in files.values():
        source = model_path(name)
        card = load_card(source, verify=True)  # refuses a file that does not match its card
        if card.format != "tflite":
            raise SystemExit(f"{name} is {card.format}, the app runs TFLite files only")
        shutil.copyfile(source, dest / name)
        shutil.copyfile(card_path(source), dest / (name + ".json"))
    embedder_card = load_card(model_path(files["embedder"]), verify=False)
    embedder_card.threshold(operating_point)  # an operating point the card lacks fails here, not on the phone
    manifest = {
        **files,
        "operating_point": operating_point,
        "squeezerface": getattr(squeezerface, "__version__", "unknown"),
        "copied_by": "android_demo/scripts/copy_models.py",
    }
    (dest / "models.json").write_text(json.dumps(manifest, indent=1) + "\n")
    return files


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dest", type=Path, default=DEST, help=f"assets folder (default {DEST})")
    parser.add_argument(
        "--operating-point", default="far_1e-03", help="the embedder card's operating point to verify at"
    )
    args = parser.parse_args(argv)
    files = copy_models(args.dest, args.operating_point)
    for role, name in files.items():
        size = (args.dest / name).stat().st_size
        print(f"{role:9s} {name} ({size / 1024:.0f} KiB) + card -> {args.dest}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
