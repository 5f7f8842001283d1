"""models/stability.py scores each language on its own rows and labels."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "models"))
import stability


def test_macro_f1_is_per_language_and_uses_the_thresholds() -> None:
    rows = [
        {"lang": "en", "labels": ["gang_prison_control"]},
        {"lang": "en", "labels": ["security_operation"]},
        {"lang": "es", "labels": ["gang_prison_control", "security_operation"]},
        {"lang": "es", "labels": []},
        {"lang": "pt", "labels": ["security_operation"]},
        {"lang": "pt", "labels": []},
    ]
    probs = np.array(
        [[0.9, 0.1], [0.1, 0.9], [0.6, 0.9], [0.1, 0.1], [0.1, 0.2], [0.1, 0.1]],
        dtype=np.float32,
    )
    thresholds = {"gang_prison_control": 0.5, "security_operation": 0.5}
    out = stability.macro_f1_by_lang(rows, probs, thresholds)
    # en and es perfect; pt misses its only security_operation and has no control positive.
    assert out == {"en": 1.0, "es": 1.0, "pt": 0.0}
    # A higher control threshold drops es's control positive (0.6): F1 0 for it, 1 for SOP.
    stricter = {"gang_prison_control": 0.7, "security_operation": 0.5}
    assert stability.macro_f1_by_lang(rows, probs, stricter)["es"] == 0.5
