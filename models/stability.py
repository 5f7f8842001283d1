"""How much the classifier's figures depend on the fine-tuning seed.

    python models/stability.py --seeds 7 21 [--out FILE.json]

Rebuilds the model once per seed from the committed data, exactly as `make model` does
except for the seed, into a temporary cache (the served model in ~/.cache is not touched),
and prints macro-F1 per language on the synthetic dev split and on dev-real. About 7 minutes
a seed on 2 quiet cores. The figures go into MODEL_CARD.md.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

import train  # noqa: E402

from pipeline.classify.base import Prediction  # noqa: E402
from pipeline.evaluate import Example, example_from_row, macro_f1, metrics  # noqa: E402

LANGS = ("en", "es", "pt")


def macro_f1_by_lang(examples: list[Example], preds: list[Prediction]) -> dict[str, float]:
    """The per-language macro-F1 that `sentinela evaluate` prints, rounded as it prints it."""
    m = metrics(examples, preds)
    return {lang: round(macro_f1(m[lang]), 3) for lang in LANGS if lang in m}


def run_seed(seed: int, cache: Path) -> dict[str, Any]:
    from pipeline.classify.model import SentinelaClassifier

    t0 = time.time()
    target = train.build(cache, train.Hyper(seed=seed), force=True)
    clf = SentinelaClassifier.from_pretrained(target)
    rows = train.load_rows()
    sets = {
        "dev split": [r for r in rows if train.is_dev(r["id"])],
        "dev-real": train.load_dev_real(),
    }
    result: dict[str, Any] = {
        "seed": seed,
        "thresholds": clf.config.thresholds,
        "build_seconds": round(time.time() - t0),
    }
    for name, part in sets.items():
        if not part:
            continue
        examples = [example_from_row(r) for r in part]
        # As `sentinela evaluate` does it: the classifier's own thresholds and rounding.
        preds = clf.predict([e.doc for e in examples], evidence=False)
        result[name] = macro_f1_by_lang(examples, preds)
    return result


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--seeds", type=int, nargs="+", required=True)
    ap.add_argument("--out", type=Path, help="also write the results here as JSON")
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    served_seed = train.Hyper.seed
    results = []
    with tempfile.TemporaryDirectory(prefix="sentinela-stability-") as tmp:
        cache = Path(tmp)
        real_base = (
            Path(os.environ.get("SENTINELA_CACHE_DIR") or train.default_cache_dir()) / "base"
        )
        if real_base.is_dir():  # reuse the converted base weights instead of converting again
            (cache / "base").symlink_to(real_base)
        for seed in args.seeds:
            res = run_seed(seed, cache)
            results.append(res)
            print(
                f"seed {seed}: " + json.dumps({k: v for k, v in res.items() if k != "seed"}),
                flush=True,
            )
    print(f"\nseed  {'dev split en/es/pt':>22}  {'dev-real en/es/pt':>22}")
    for r in results:
        cells = [
            "/".join(f"{r[s][lang]:.3f}" for lang in LANGS) if s in r else "-"
            for s in ("dev split", "dev-real")
        ]
        print(f"{r['seed']:>4}  {cells[0]:>22}  {cells[1]:>22}")
    if args.out:
        args.out.write_text(
            json.dumps({"served_model_seed": served_seed, "runs": results}, indent=2) + "\n"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
