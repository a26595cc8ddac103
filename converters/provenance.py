"""Where a converted embedder comes from, and what that obliges its card to say.

A model card carries three kinds of obligation, and each model line has its own:

* *starting weights*: a pruned public network (MobileFaceNet, Apache-2.0) must carry that licence's notice,
  say where the weights came from and that they were modified (Apache-2.0, section 4);
* *teacher*: the network whose embeddings the student learnt (its terms follow the distilled model);
* *training data*: every face set the model saw, with its terms (all of them research-only here).

The facts are read, in this order, from CLI flags (field by field), from the `provenance` object the trainer
writes into the weights' JSON, and, for a SqueezerFaceNet stem without either, from the first embedder's
history (dlib teacher, utkface + celeba_wild), so old stems still convert to the cards they had. A stem of
another architecture with no provenance anywhere is refused: a card without its starting weights' notice
must not be made.

Weights' JSON (written by the trainer; names refer to `KNOWN_WEIGHTS` / `KNOWN_DATA`, or spell the fields):

    "provenance": {"start_weights": "mobilefacenet", "teacher": "mobilefacenet",
                   "training_data": ["utkface", "celeba_wild", "pins"],
                   "modifications": "pruned by first-order Taylor scores, fine-tuned by distillation"}
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from squeezerface.modelcard import RESEARCH_ONLY


@dataclass(frozen=True)
class Weights:
    """Third-party network weights (a starting point or a teacher) and what their licence asks for."""

    name: str
    licence: str = ""  # SPDX identifier, "" when none is known
    source: str = ""  # repository + commit + path: where exactly they came from
    trained_on: str = ""  # the data the weights' authors trained them on, and its terms
    licence_url: str = ""
    licence_file: str = ""  # a local copy of the licence text, appended to the NOTICE beside the model


@dataclass(frozen=True)
class DataSet:
    name: str
    terms: str


MOBILEFACENET_LICENCE = str(Path(__file__).resolve().parents[2] / "shared/teachers/mobilefacenet/LICENSE")
"""The weights' own LICENSE as stored beside the checkout (../shared/teachers); its text goes into NOTICE."""

KNOWN_WEIGHTS: dict[str, Weights] = {
    "mobilefacenet": Weights(
        name="MobileFaceNet (Chen et al. 2018), weights from foamliu/MobileFaceNet",
        licence="Apache-2.0",
        source="https://github.com/foamliu/MobileFaceNet, commit a6cc9032a659b615f477833e1a70b5e7931bcccc, "
        "weights/ (mobilefacenet.pt, sha256 "
        "90a00ba1d8b0b688af3deb731ed53dca582e6106805d1bc3cfdef55f570493f4)",
        trained_on="refined MS-Celeb-1M (research terms)",
        licence_url="https://www.apache.org/licenses/LICENSE-2.0",
        licence_file=MOBILEFACENET_LICENCE,
    ),
    "dlib": Weights(name="dlib ResNet face descriptor (dlib_face_recognition_resnet_model_v1)"),
}
"""Weights this project has used, by short name (`--start-weights mobilefacenet`, `"teacher": "dlib"`)."""

KNOWN_DATA: dict[str, DataSet] = {
    "utkface": DataSet("utkface", "non-commercial research use only"),
    "celeba_wild": DataSet("celeba_wild", "non-commercial research use only"),
    "pins": DataSet(
        "pins",
        "Pins face set (105 celebrities scraped from Pinterest; 90 used, the 15 also in LFW dropped): "
        "no licence stated, research use only",
    ),
}

LEGACY_DATA = "utkface + celeba_wild (distilled from the dlib ResNet teacher); never LFW"
"""The first embedder's `training.data` line, kept so its stems convert to the cards they had."""


@dataclass(frozen=True)
class Provenance:
    teacher: Weights | None
    training_data: tuple[DataSet, ...]
    start_weights: Weights | None = None
    modifications: str = ""
    source: str = ""  # where these facts were read from (flags / weights JSON / legacy default)

    def data_line(self) -> str:
        """The card's one-line `training.data` (the legacy wording when it is the legacy history)."""
        names = [d.name for d in self.training_data]
        legacy = names == ["utkface", "celeba_wild"] and self.teacher == KNOWN_WEIGHTS["dlib"]
        if self.start_weights is None and legacy:
            return LEGACY_DATA
        teacher = f"distilled from {self.teacher.name}" if self.teacher else "no teacher"
        if not names:
            return f"no training of ours ({teacher}): the starting weights as published; never LFW"
        return f"{' + '.join(names)} ({teacher}); never LFW"

    def licence(self) -> str:
        """The card's `licence` line: the data's research-only terms first, then the starting weights."""
        names = [d.name for d in self.training_data]
        if self.start_weights is None and names == ["utkface", "celeba_wild"]:
            return RESEARCH_ONLY
        listed = " and ".join([", ".join(names[:-1]), names[-1]]) if len(names) > 1 else "".join(names)
        text = "research use only: " + (
            f"trained on {listed}, whose terms allow non-commercial research only"
            if names
            else "not trained by us"
        )
        if self.start_weights is not None:
            w = self.start_weights
            text += (
                f"; derived from {w.name} ({w.licence or 'licence unknown'}; see training.start_weights and "
                f"the NOTICE file), trained by their authors on {w.trained_on or 'undisclosed data'}"
            )
        return text + "; do not deploy commercially"

    def card_training(self) -> dict[str, Any]:
        """The provenance part of the card's `training` section."""
        out: dict[str, Any] = {
            "data": self.data_line(),
            "data_terms": [asdict(d) for d in self.training_data],
        }
        if self.teacher is not None:
            out["teacher"] = asdict(self.teacher)
        if self.start_weights is not None:
            out["start_weights"] = {**asdict(self.start_weights), "modifications": self.modifications}
        out["provenance_source"] = self.source
        return out

    def notice(self, model_name: str) -> str | None:
        """NOTICE text for the starting weights' licence (None when there are none): what the model derives
        from, what was changed, and the licence text itself where a local copy is known."""
        w = self.start_weights
        if w is None:
            return None
        parts = [
            f"{model_name} is derived from {w.name}.",
            f"Source: {w.source}." if w.source else "",
            f"Licence: {w.licence}" + (f" ({w.licence_url})." if w.licence_url else "."),
            f"Changes: {self.modifications}." if self.modifications else "",
            f"The starting weights were trained by their authors on {w.trained_on}." if w.trained_on else "",
            "Training data of this model: "
            + (
                "; ".join(f"{d.name}: {d.terms}" for d in self.training_data)
                or "none beyond the starting weights'"
            )
            + ".",
        ]
        text = "\n".join(p for p in parts if p) + "\n"
        if w.licence_file and Path(w.licence_file).is_file():
            body = Path(w.licence_file).read_text()
            digest = hashlib.sha256(body.encode()).hexdigest()
            text += f"\n--- licence text of the starting weights (sha256 {digest}) ---\n\n{body}"
        return text


@dataclass(frozen=True)
class ProvenanceFlags:
    """CLI overrides; None leaves the field to the weights' JSON (or the legacy default)."""

    start_weights: str | None = None
    start_weights_licence: str | None = None
    start_weights_source: str | None = None
    start_weights_licence_file: str | None = None
    teacher: str | None = None
    training_data: tuple[str, ...] | None = None
    data_terms: dict[str, str] = field(default_factory=dict)
    modifications: str | None = None

    def given(self) -> bool:
        return any(v for v in asdict(self).values())


def weights_of(entry: str | dict | None) -> Weights | None:
    """A known short name, a free-text name, or a dict of `Weights` fields."""
    if entry in (None, "", "none"):
        return None
    if isinstance(entry, dict):
        base = KNOWN_WEIGHTS.get(str(entry.get("name", "")), Weights(name=str(entry.get("name", "?"))))
        return replace(
            base, **{k: v for k, v in entry.items() if k in Weights.__dataclass_fields__ and k != "name"}
        )
    return KNOWN_WEIGHTS.get(str(entry), Weights(name=str(entry)))


def data_of(names: list[str] | tuple[str, ...], terms: dict[str, str]) -> tuple[DataSet, ...]:
    """Data sets by name; terms from `terms` (flags) first, then `KNOWN_DATA`; unknown terms are an error."""
    out = []
    for name in names:
        if name in terms:
            out.append(DataSet(name, terms[name]))
        elif name in KNOWN_DATA:
            out.append(KNOWN_DATA[name])
        else:
            raise SystemExit(f"training data {name!r} has no known terms: give --data-terms {name}=TERMS")
    return tuple(out)


def _override_start(start: Weights | None, flags: ProvenanceFlags) -> Weights | None:
    """Apply the `--start-weights-*` field flags on top of whatever named the starting weights."""
    fields = {
        "licence": flags.start_weights_licence,
        "source": flags.start_weights_source,
        "licence_file": flags.start_weights_licence_file,
    }
    fields = {k: v for k, v in fields.items() if v is not None}
    if not fields:
        return start
    if start is None:
        raise SystemExit("--start-weights-licence/-source/-licence-file need --start-weights NAME")
    return replace(start, **fields)


def resolve(meta: dict[str, Any], spec_text: str, flags: ProvenanceFlags = ProvenanceFlags()) -> Provenance:
    """Flags over the weights' JSON `provenance` over the legacy SqueezerFaceNet history (see the top)."""
    written = meta.get("provenance") or {}
    if not written and not flags.given():
        if not spec_text.startswith("squeezerfacenet:"):
            raise SystemExit(
                f"{spec_text.split(':', 1)[0]} weights carry no provenance (the trainer writes a "
                "'provenance' object into the weights' JSON): give --start-weights, --teacher and "
                "--training-data, so the card carries the starting weights' licence notice and data terms"
            )
        return Provenance(
            KNOWN_WEIGHTS["dlib"], data_of(["utkface", "celeba_wild"], {}), source="legacy default"
        )
    start = weights_of(
        flags.start_weights if flags.start_weights is not None else written.get("start_weights")
    )
    teacher = weights_of(flags.teacher if flags.teacher is not None else written.get("teacher"))
    names = flags.training_data if flags.training_data is not None else written.get("training_data")
    if not names:
        raise SystemExit("no training data named: give --training-data (e.g. utkface,celeba_wild,pins)")
    names = [n for n in names if n != "none"]  # "none": the starting weights, not trained further
    if not names and start is None:
        raise SystemExit("--training-data none needs --start-weights: a model has to come from somewhere")
    mods = flags.modifications if flags.modifications is not None else written.get("modifications", "")
    if start is not None and not mods:
        mods = "pruned and fine-tuned (details in this card's training section)"
    sources = [s for s, used in (("CLI flags", flags.given()), ("weights JSON", bool(written))) if used]
    return Provenance(
        teacher=teacher,
        training_data=data_of(names, flags.data_terms),
        start_weights=_override_start(start, flags),
        modifications=mods,
        source=" over ".join(sources),
    )
