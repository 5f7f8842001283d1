"""The committed training data keeps the promises the model card makes about it."""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from pipeline.classify.base import LABELS

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "models" / "data"
DEV_REAL = ROOT.parent / "shared" / "data" / "dev-real.jsonl"
REQUIRED = ("id", "lang", "title", "text", "labels", "category", "hard_negative", "provenance")


def _rows(path: Path) -> list[dict[str, Any]]:
    return [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines() if x.strip()]


@pytest.fixture(scope="module")
def rows() -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for path in sorted(DATA.glob("*.jsonl")):
        for n, row in enumerate(_rows(path), start=1):
            missing = [k for k in REQUIRED if k not in row]
            assert not missing, f"{path.name}:{n}: missing {missing}"
            out.append(row)
    return out


def test_every_example_is_well_formed(rows: list[dict[str, Any]]) -> None:
    ids = Counter(r["id"] for r in rows)
    assert [i for i, n in ids.items() if n > 1] == []
    for r in rows:
        assert r["lang"] in ("en", "es", "pt"), r["id"]
        assert set(r["labels"]) <= set(LABELS) and len(set(r["labels"])) == len(r["labels"])
        assert r["text"].strip(), r["id"]
        assert r["provenance"].startswith("synthetic:"), r["id"]
        # A labelled example and its category agree: pos:* has a label, neg:* has none.
        assert r["category"].startswith("pos:" if r["labels"] else "neg:"), r["id"]
        if r["hard_negative"]:
            assert not r["labels"], r["id"]


def test_size_balance_and_hard_negatives(rows: list[dict[str, Any]]) -> None:
    assert len(rows) >= 1500
    by_lang = Counter(r["lang"] for r in rows)
    for lang in ("en", "es", "pt"):
        assert 0.25 <= by_lang[lang] / len(rows) <= 0.42, by_lang
    hard = sum(1 for r in rows if r["hard_negative"])
    assert hard / len(rows) >= 0.40
    for label in LABELS:
        for lang in ("en", "es", "pt"):
            assert sum(1 for r in rows if r["lang"] == lang and label in r["labels"]) >= 150


def _words(text: str) -> set[str]:
    return set(re.findall(r"\w{4,}", text.lower()))


@pytest.mark.skipif(not DEV_REAL.is_file(), reason="shared/data/dev-real.jsonl is not here")
def test_no_dev_real_item_leaked_into_training(rows: list[dict[str, Any]]) -> None:
    """dev-real is for calibration and checking only: no training text may copy one of its
    titles or most of one of its ledes."""
    train_titles = {r["title"].strip().lower() for r in rows if r["title"].strip()}
    train_words = [_words(r["text"]) for r in rows]
    for real in _rows(DEV_REAL):
        title = (real.get("title") or "").strip().lower()
        assert title not in train_titles, real["id"]
        words = _words(real["text"])
        if len(words) < 12:
            continue
        overlap = max(len(words & w) / len(words) for w in train_words)
        assert overlap < 0.6, (real["id"], overlap)
