"""Classifier throughput: the project's classifier (its own runtime: OpenVINO bf16 for models
built since 2026-11-25, ONNX Runtime int8 before) vs the same model as plain fp32
`transformers`, in the same run, on 512 ledes of about 100 tokens.

    .venv/bin/python bench/classify.py [--docs 512] [--threads 2]

Each side runs in its own subprocess so that peak RSS is measured per side. Prints docs/s,
peak RSS and the ratio, and writes bench/results/classify.json.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
RESULTS = ROOT / "bench" / "results"


def ledes(n: int) -> list[tuple[str, str]]:
    """Ledes from the training data, lengthened or cut to about 100 tokens."""
    rows = []
    for path in sorted((ROOT / "models" / "data").glob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            o = json.loads(line)
            rows.append((o.get("title") or "", o["text"]))
    out: list[tuple[str, str]] = []
    i = 0
    while len(out) < n:
        title, text = rows[i % len(rows)]
        words = text.split()
        while len(words) < 70:
            words += rows[(i + 7) % len(rows)][1].split()
        out.append((title, " ".join(words[:70])))
        i += 1
    return out


def run_project(n: int, threads: int, batch_size: int | None = None) -> dict[str, Any]:
    from pipeline.classify.base import Document
    from pipeline.classify.encoder import Encoder
    from pipeline.classify.model import load_classifier
    from pipeline.config import Settings

    s = Settings.from_env()
    clf = load_classifier(s.model_dir, s.cache_dir)
    clf._encoder = Encoder(clf.directory, clf.config.max_length, clf.config.prefix, threads=threads)
    if batch_size:
        clf.config = replace(clf.config, batch_size=batch_size)
    docs = [Document(str(i), t, x) for i, (t, x) in enumerate(ledes(n))]
    clf.predict_proba(docs[:32])  # warm-up
    t0 = time.perf_counter()
    clf.predict_proba(docs)
    dt = time.perf_counter() - t0
    tok = clf.encoder.tokenizer
    ntok = sum(len(tok(clf.config.prefix + f"{d.title}. {d.text}")["input_ids"]) for d in docs) / n
    return {
        "docs_per_s": n / dt,
        "seconds": dt,
        "mean_tokens": ntok,
        "runtime": clf.encoder.runtime,
        "batch_size": clf.config.batch_size,
    }


def run_fp32(n: int, threads: int) -> dict[str, float]:
    import numpy as np
    import torch
    from transformers import AutoTokenizer, BertModel

    from pipeline.classify.model import load_classifier
    from pipeline.classify.text import doc_text
    from pipeline.config import Settings

    torch.set_num_threads(threads)
    s = Settings.from_env()
    clf = load_classifier(s.model_dir, s.cache_dir)
    report = json.loads((clf.directory / "training.json").read_text())
    fp32_dir = Path(report.get("fp32_encoder") or s.cache_dir / "base" / "e5-small")
    if not fp32_dir.is_absolute():
        fp32_dir = clf.directory / fp32_dir
    tok = AutoTokenizer.from_pretrained(str(clf.directory))
    model = BertModel.from_pretrained(str(fp32_dir), add_pooling_layer=False).eval()
    texts = [clf.config.prefix + doc_text(t, x) for t, x in ledes(n)]

    def embed(batch: list[str]) -> np.ndarray:
        enc = tok(
            batch,
            padding=True,
            truncation=True,
            max_length=clf.config.max_length,
            return_tensors="pt",
        )
        with torch.inference_mode():
            h = model(**enc).last_hidden_state
        m = enc["attention_mask"].unsqueeze(-1).float()
        e = (h * m).sum(1) / m.sum(1)
        return torch.nn.functional.normalize(e, dim=-1).numpy()

    embed(texts[:32])
    t0 = time.perf_counter()
    # Plain batching in input order, batch 32: what a straightforward transformers loop does.
    embs = [embed(texts[i : i + 32]) for i in range(0, n, 32)]
    dt = time.perf_counter() - t0
    np.vstack(embs)
    return {"docs_per_s": n / dt, "seconds": dt}


def child(side: str, n: int, threads: int, batch_size: int | None) -> None:
    res = run_project(n, threads, batch_size) if side == "project" else run_fp32(n, threads)
    res["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print("RESULT " + json.dumps(res))


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--docs", type=int, default=512)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument(
        "--batch-size", type=int, default=None, help="the project's batch (default: its config's)"
    )
    ap.add_argument("--out", type=Path, default=RESULTS / "classify.json")
    ap.add_argument("--child", choices=["project", "fp32"])
    args = ap.parse_args()
    if args.child:
        child(args.child, args.docs, args.threads, args.batch_size)
        return 0
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "false",
        "OMP_NUM_THREADS": str(args.threads),
    }
    load_before = os.getloadavg()[0]
    results: dict[str, dict[str, Any]] = {}
    for side in ("fp32", "project"):
        out = subprocess.run(
            [
                sys.executable,
                __file__,
                "--child",
                side,
                "--docs",
                str(args.docs),
                "--threads",
                str(args.threads),
                *(["--batch-size", str(args.batch_size)] if args.batch_size else []),
            ],
            capture_output=True,
            text=True,
            env=env,
            check=True,
        )
        line = [x for x in out.stdout.splitlines() if x.startswith("RESULT ")][-1]
        results[side] = json.loads(line[len("RESULT ") :])
    ratio = results["project"]["docs_per_s"] / results["fp32"]["docs_per_s"]
    proj, base = results["project"], results["fp32"]
    print(f"{args.docs} ledes, ~{proj['mean_tokens']:.0f} tokens each, {args.threads} threads")
    print(f"{'run':<34} {'docs/s':>8} {'peak RSS MB':>12}")
    ours = f"sentinela ({proj['runtime']})"
    for name, r in (("plain fp32 transformers (baseline)", base), (ours, proj)):
        print(f"{name:<34} {r['docs_per_s']:8.1f} {r['peak_rss_mb']:12.0f}")
    print(f"ratio: {ratio:.2f}x")
    from pipeline.config import Settings

    s = Settings.from_env()
    pointer = s.model_dir or s.cache_dir / "models" / "CURRENT"
    model = pointer.name if s.model_dir else pointer.read_text().strip()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    report = {
        "docs": args.docs,
        "threads": args.threads,
        **results,
        "ratio": ratio,
        "model_version": model,
        # Other work on the 2 cores slows both sides, not always equally: keep the load.
        "load_average_1m_before": round(load_before, 2),
        "load_average_1m_after": round(os.getloadavg()[0], 2),
        "when": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
