"""Threshold calibration in models/train.py: every held-out set weighs the same, and a pick
one item wide loses to a plateau."""

from __future__ import annotations

import numpy as np
import pytest
import train

from pipeline.classify.base import LABELS


def _set(pos: list[float], neg: list[float]) -> tuple[np.ndarray, np.ndarray]:
    """Scores and targets, the same for every label."""
    scores = np.array(pos + neg, dtype=np.float32)
    y = np.array([1.0] * len(pos) + [0.0] * len(neg), dtype=np.float32)
    return np.tile(scores[:, None], (1, len(LABELS))), np.tile(y[:, None], (1, len(LABELS)))


def _tile(s: tuple[np.ndarray, np.ndarray], n: int) -> tuple[np.ndarray, np.ndarray]:
    return np.tile(s[0], (n, 1)), np.tile(s[1], (n, 1))


# "synthetic": perfect above 0.6. "real": its positives sit at 0.5, so it needs t <= 0.5.
SYNTHETIC = _set(pos=[0.9] * 10, neg=[0.6] * 10 + [0.1] * 10)
REAL = _set(pos=[0.5] * 8 + [0.9] * 2, neg=[0.1] * 10)


def test_each_held_out_set_weighs_the_same_whatever_its_size() -> None:
    balanced = train.calibrate([SYNTHETIC, REAL])
    ten_times = train.calibrate([_tile(SYNTHETIC, 10), REAL])
    assert balanced == ten_times
    for label in LABELS:
        assert balanced[label] <= 0.5  # catches the real set's positives

    # Pooled into one set, the larger one would decide: the guard above is not vacuous.
    pooled = train.calibrate(
        [tuple(np.vstack(parts) for parts in zip(_tile(SYNTHETIC, 10), REAL, strict=True))]
    )
    for label in LABELS:
        assert pooled[label] > 0.6


def test_a_plateau_beats_a_spike_one_item_wide() -> None:
    # F1 is 30/31 for t <= 0.74, 1.0 at exactly 0.75, then falls as positives drop out.
    spiky = _set(pos=[0.75, 0.76, 0.77, 0.78, 0.79, 0.80] + [0.95] * 9, neg=[0.74] + [0.05] * 30)
    thresholds = train.calibrate([spiky])
    for label in LABELS:
        assert thresholds[label] < 0.74
        assert thresholds[label] >= 0.10

    # Without the window the spike wins: the smoothing is what moved the pick.
    unsmoothed = train.calibrate([spiky], half_width=0)[LABELS[0]]
    assert unsmoothed == pytest.approx(0.75)


def test_thresholds_come_from_the_grid() -> None:
    thresholds = train.calibrate([SYNTHETIC, REAL])
    grid = set(np.round(train.CALIBRATION_GRID, 2).tolist())
    assert set(thresholds) == set(LABELS)
    assert all(round(t, 2) in grid for t in thresholds.values())
