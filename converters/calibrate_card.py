"""Calibrate the thresholds of any embedder file's card on the held-out identities of a face bank.

    python -m converters.calibrate_card --model runs/teachers/edgeface-xxs.onnx --faces runs/facebank

Why: a peer network exported by `converters.export_teacher` (MobileFaceNet, EdgeFace-xxs) has no operating
points, so its pipeline could not decide "same person" in the latency benchmark; the shipped embedder's
thresholds come from all pairs of the held-out faces of the face bank (`converters.faces.load_faces`),
and this gives a peer's card thresholds from exactly the same faces and pairs, so the two are compared
at the same nominal false-accept rates. Only the card's `calibration` changes; the model file is untouched.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from converters.faces import load_faces
from converters.parity import embed_with, input_spec_for
from squeezerface.backends import open_backend
from squeezerface.modelcard import calibrate, card_path, load_card, save_card
from squeezerface.thresholds import all_pairs


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m converters.calibrate_card", description=__doc__.split("\n\n")[0]
    )
    p.add_argument("--model", type=Path, required=True, help="embedder file with a card beside it")
    p.add_argument("--faces", type=Path, required=True, help="face bank (pruning.facebank) with held-out ids")
    p.add_argument("--batch", type=int, default=32, help="faces per engine call")
    args = p.parse_args(argv)
    card = load_card(args.model)
    faces = load_faces(args.faces)
    backend = open_backend(args.model, threads=1)
    spec = input_spec_for(backend, card.input)
    emb = embed_with(backend, faces.heldout, spec, batch=args.batch)
    scores, labels = all_pairs(emb, faces.heldout_identity)
    cal = calibrate(scores, labels, source=f"all pairs of {faces.heldout_source}")
    written = save_card(replace(card, calibration=cal), card_path(args.model))
    for point in cal.points:
        print(f"  {point.name:>10}: threshold {point.threshold:.4f}  FAR {point.far:.5f} TAR {point.tar:.4f}")
    print(f"wrote {written} ({cal.genuine_pairs} genuine / {cal.impostor_pairs} impostor pairs)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
