"""Evaluate the current classifier on the synthetic dev split and on dev-real.jsonl, side by
side with the keyword baseline (the numbers in MODEL_CARD.md come from this script).

    python models/evaluate.py [--dev-only] [--write-dev FILE]

The dev split is every example of models/data whose id hashes into bucket 0 of 5 (see
train.py); it is never trained on.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from train import DEV_REAL, is_dev, load_rows  # noqa: E402

from pipeline.config import Settings  # noqa: E402
from pipeline.evaluate import run_evaluate  # noqa: E402


def write_dev(path: Path) -> int:
    rows = [r for r in load_rows() if is_dev(r["id"])]
    with path.open("w", encoding="utf-8") as fh:
        for r in rows:
            out = {k: r[k] for k in ("id", "lang", "title", "text", "labels")}
            fh.write(json.dumps(out, ensure_ascii=False) + "\n")
    return len(rows)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--dev-only", action="store_true", help="skip dev-real.jsonl")
    ap.add_argument("--write-dev", type=Path, help="also keep the dev split as JSONL here")
    args = ap.parse_args()
    settings = Settings.from_env()
    with tempfile.TemporaryDirectory() as tmp:
        dev = args.write_dev or Path(tmp) / "dev.jsonl"
        n = write_dev(dev)
        print(f"### synthetic dev split ({n} examples, never trained on)\n")
        run_evaluate(dev, settings)
    if not args.dev_only and DEV_REAL.is_file():
        print("\n### dev-real.jsonl (real ledes: thresholds calibrated on it, never trained on)\n")
        run_evaluate(DEV_REAL, settings)
    return 0


if __name__ == "__main__":
    sys.exit(main())
