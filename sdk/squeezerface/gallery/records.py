"""The gallery's records: the model that makes its templates, an enrolled person, search and verification
results, what `encrypt_gallery` did. Frozen dataclasses with `to_dict` for JSON output; no SQL here, so
callers and the CLI can use them without touching a database."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np

from squeezerface.errors import GalleryError

Aggregate = Literal["mean", "best"]
AGGREGATES: tuple[Aggregate, ...] = ("mean", "best")
"""How an identity with several templates is scored against a probe (see `Gallery`)."""


@dataclass(frozen=True)
class ModelInfo:
    """The embedding model that makes a gallery's templates. `name`, `version` and `embedding_size` decide
    whether two models' embeddings can be compared; `file` and `sha256` are provenance only, because the
    precision variants of one model (fp32, int8, LiteRT) share name and version and agree closely."""

    name: str
    version: str
    embedding_size: int
    file: str = ""
    sha256: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise GalleryError(f"a model needs a name, got {self.name!r}")
        size = self.embedding_size
        if isinstance(size, bool) or not isinstance(size, int | np.integer) or size < 1:
            raise GalleryError(f"embedding_size must be a positive integer, got {size!r}")

    @classmethod
    def from_card(cls, card: Any) -> ModelInfo:
        """From a `ModelCard` (or anything with name, version, embedding_size and optionally file, sha256);
        duck-typed so the gallery does not import the model-card module."""
        return cls(
            name=str(card.name),
            version=str(card.version),
            embedding_size=int(card.embedding_size),
            file=str(getattr(card, "file", "") or ""),
            sha256=str(getattr(card, "sha256", "") or ""),
        )

    @property
    def key(self) -> tuple[str, str, int]:
        """What must be equal for two models' embeddings to be comparable."""
        return (self.name, self.version, int(self.embedding_size))

    def compatible(self, other: ModelInfo) -> bool:
        return self.key == other.key

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "embedding_size": int(self.embedding_size),
            "file": self.file,
            "sha256": self.sha256,
        }

    def __str__(self) -> str:
        return f"model {self.name} {self.version} ({self.embedding_size}-d)"


@dataclass(frozen=True)
class IdentityInfo:
    """One enrolled person: how many templates they have and when they were first and last enrolled (UTC)."""

    name: str
    templates: int
    created: datetime
    updated: datetime

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "templates": self.templates,
            "created": self.created.isoformat(),
            "updated": self.updated.isoformat(),
        }


@dataclass(frozen=True)
class Candidate:
    """A 1:N search result: cosine score of the probe against one identity (aggregated over its templates)
    and whether it clears the reject threshold (accept when score > threshold, as `FaceVerifier` does)."""

    name: str
    score: float
    accepted: bool
    templates: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "score": self.score,
            "accepted": self.accepted,
            "templates": self.templates,
        }


@dataclass(frozen=True)
class Verification:
    """A 1:1 check of a probe against one enrolled identity: score, the threshold, and the decision."""

    name: str
    score: float
    threshold: float
    accepted: bool

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "score": self.score,
            "threshold": self.threshold,
            "accepted": self.accepted,
        }


@dataclass(frozen=True)
class EncryptionResult:
    """What `encrypt_gallery` did: how many identities and templates it encrypted, and whether the old
    plaintext file's bytes were overwritten before they were released (best effort, see the
    `squeezerface.gallery` doc)."""

    path: Path
    identities: int
    templates: int
    plaintext_overwritten: bool
