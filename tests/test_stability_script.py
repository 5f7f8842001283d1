"""models/stability.py scores each language on its own rows and labels."""

from __future__ import annotations

import stability

from pipeline.classify.base import LABELS, Document, Prediction
from pipeline.evaluate import Example

GOLD = [
    ("en", ["gang_prison_control"]),
    ("en", ["security_operation"]),
    ("es", ["gang_prison_control", "security_operation"]),
    ("es", []),
    ("pt", ["security_operation"]),
    ("pt", []),
]
PROBS = [[0.9, 0.1], [0.1, 0.9], [0.6, 0.9], [0.1, 0.1], [0.1, 0.2], [0.1, 0.1]]


def _score(thresholds: dict[str, float]) -> dict[str, float]:
    examples = [
        Example(Document(str(i), "", "text", lang), frozenset(labels))
        for i, (lang, labels) in enumerate(GOLD)
    ]
    preds = [
        Prediction(
            [lbl for lbl, p in zip(LABELS, row, strict=True) if p >= thresholds[lbl]],
            dict(zip(LABELS, row, strict=True)),
            "test",
            {},
        )
        for row in PROBS
    ]
    return stability.macro_f1_by_lang(examples, preds)


def test_macro_f1_is_per_language_as_evaluate_counts_it() -> None:
    thresholds = {"gang_prison_control": 0.5, "security_operation": 0.5}
    out = _score(thresholds)
    # en and es perfect; pt misses its only security_operation and has no control positive.
    assert out == {"en": 1.0, "es": 1.0, "pt": 0.0}
    # A higher control threshold drops es's control positive (0.6): F1 0 for it, 1 for SOP.
    stricter = {"gang_prison_control": 0.7, "security_operation": 0.5}
    assert _score(stricter)["es"] == 0.5
