"""What every classifier takes and gives."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

# The two labels of the labeling guide, in the order the model's outputs use.
LABELS: tuple[str, ...] = ("gang_prison_control", "security_operation")


@dataclass(frozen=True)
class Document:
    id: str
    title: str
    text: str
    lang: str | None = None


@dataclass(frozen=True)
class Prediction:
    labels: list[str]
    scores: dict[str, float]
    model_version: str
    evidence: dict[str, str] = field(default_factory=dict)

    @property
    def is_match(self) -> bool:
        return bool(self.labels)


class Classifier(Protocol):
    model_version: str
    labels: tuple[str, ...]

    def predict(self, docs: Sequence[Document], evidence: bool = True) -> list[Prediction]:
        """One prediction per document, in order; `evidence=False` skips the evidence
        sentences (they cost a second encoder pass per match)."""
