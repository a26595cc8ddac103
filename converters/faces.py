"""The aligned faces a conversion needs, from either kind of prepared folder (never LFW).

* `pruning.data` layout (the first embedder's): faces.npy + targets.npy (dlib targets), utkface +
  celeba_wild, held-out = 40 celeba_wild identities.
* face bank (`pruning.facebank`, embedder v2): faces.npy without targets (the trainer computes them
  online), utkface + celeba_wild + Pins, held-out = 40 celeba_wild + 15 Pins identities. Both sets' held-out
  identities calibrate the thresholds, as the issue asks; Pins identities are numbered from `PINS_BASE`.

Quantization ranges come from a seeded sample of the *training* split (what the model was fitted on, not
what it is judged on); parity and thresholds use *every* held-out face.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from pruning.facebank import PINS_BASE
from pruning.faceset import centre_crop


@dataclass(frozen=True)
class ConversionFaces:
    """Aligned 112x112 uint8 RGB faces for the three jobs of a conversion."""

    calibration: np.ndarray  # training split: quantization ranges
    heldout: np.ndarray  # held-out identities: parity and threshold calibration
    heldout_identity: np.ndarray
    calibration_source: str
    heldout_source: str
    heldout_set: np.ndarray = field(default_factory=lambda: np.zeros(0, "<U16"))  # each face's data set


def is_face_bank(folder: Path) -> bool:
    """The face bank has no teacher targets; the `pruning.data` folder always has targets.npy."""
    return (folder / "faces.npy").exists() and not (folder / "targets.npy").exists()


def set_of(identity: np.ndarray) -> np.ndarray:
    """Data set of each held-out face, from its identity number (Pins from PINS_BASE on)."""
    return np.where(identity >= PINS_BASE, "pins", "celeba_wild").astype("<U16")


def load_faces(folder: Path, calibration: int = 512, seed: int = 0) -> ConversionFaces:
    """Calibration faces from the training split, parity/threshold faces from every held-out identity."""
    folder = Path(folder)
    bank = is_face_bank(folder)
    faces = np.load(folder / "faces.npy", mmap_mode="r")
    identity, split = np.load(folder / "identity.npy"), np.load(folder / "split.npy")
    train, val = np.flatnonzero(split == 0), np.flatnonzero(split == 1)
    if len(val) == 0:
        raise SystemExit(f"{folder}: no held-out identities (split 1); prepare it with held-out identities")
    pick = np.sort(np.random.default_rng(seed).permutation(train)[:calibration])
    sets = set_of(identity[val]) if bank else np.full(len(val), "celeba_wild", "<U16")
    counts = ", ".join(f"{len(np.unique(identity[val][sets == s]))} {s}" for s in np.unique(sets))
    train_sets = "utkface + celeba_wild + pins" if bank else "utkface + celeba_wild"
    kind = "face bank" if bank else "prepared faces"
    return ConversionFaces(
        calibration=np.stack([centre_crop(faces[i]) for i in pick]),
        heldout=np.stack([centre_crop(faces[i]) for i in val]),
        heldout_identity=identity[val].copy(),
        calibration_source=f"{len(pick)} training-split faces ({train_sets}, seed {seed}), {kind} {folder}",
        heldout_source=f"{len(val)} faces of the held-out identities ({counts}), {kind} {folder}",
        heldout_set=sets,
    )


def pair_counts(identity: np.ndarray, sets: np.ndarray) -> dict[str, dict[str, int]]:
    """Genuine / impostor pair counts within each data set, and the impostor pairs across sets: what the
    thresholds stand on, per source."""
    out: dict[str, dict[str, int]] = {}
    total = len(identity) * (len(identity) - 1) // 2
    within = 0
    for s in np.unique(sets):
        ids = identity[sets == s]
        _, per = np.unique(ids, return_counts=True)
        genuine = int((per * (per - 1) // 2).sum())
        pairs = len(ids) * (len(ids) - 1) // 2
        within += pairs
        out[str(s)] = {
            "faces": len(ids),
            "identities": len(per),
            "genuine": genuine,
            "impostor": pairs - genuine,
        }
    if len(out) > 1:
        out["across sets"] = {"faces": 0, "identities": 0, "genuine": 0, "impostor": total - within}
    return out
