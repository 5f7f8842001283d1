"""Retrain from analysts' feedback, and promote the new model only if it is better.

Four steps, each an Airflow task of `sentinela_retrain` (or callable one after another):

1. `export_feedback`: the feedback table as training rows (pipeline.alerts.feedback) into
   `<run>/data/feedback.jsonl`, beside a copy of the committed training data.
2. `train_candidate`: models/train.py's `build()` over that data, into a cache of the run's
   own (`<run>/cache`, sharing the base weights), so nothing the pipeline serves changes.
3. `evaluate_candidate`: candidate vs the current model on the dev split (ids in hash bucket 0,
   never trained on) and, when present, the real-article dev set; macro-F1 over both labels.
4. `promote`: copy the candidate into the cache and point `models/CURRENT` at it, only when
   its macro-F1 on the combined dev sets is strictly better. The report is written to
   `<run>/report.json` either way.

The run directory holds everything, so a failed task's retry picks up from the files.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import shutil
import sys
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

from pipeline.config import Settings

log = logging.getLogger(__name__)
ROOT = Path(__file__).resolve().parents[1]
TRAIN_PY = ROOT / "models" / "train.py"
DEFAULT_DATA = ROOT / "models" / "data"
DEFAULT_DEV_REAL = ROOT.parent / "shared" / "data" / "dev-real.jsonl"


@dataclass(frozen=True)
class RetrainOptions:
    """From the environment: SENTINELA_RETRAIN_DATA (committed training data),
    SENTINELA_RETRAIN_DEV_REAL (real dev set; "none" to skip), SENTINELA_RETRAIN_EPOCHS
    (0 = frozen encoder, head only: minutes instead of an hour), SENTINELA_RETRAIN_DRY
    (evaluate and report, never promote)."""

    data_dir: Path = DEFAULT_DATA
    dev_real: Path | None = DEFAULT_DEV_REAL
    epochs: int = 3
    dry: bool = False

    @classmethod
    def from_env(cls) -> RetrainOptions:
        real = os.environ.get("SENTINELA_RETRAIN_DEV_REAL", "").strip()
        epochs = os.environ.get("SENTINELA_RETRAIN_EPOCHS", "").strip()
        return cls(
            data_dir=Path(os.environ.get("SENTINELA_RETRAIN_DATA") or DEFAULT_DATA),
            dev_real=None if real.lower() == "none" else Path(real) if real else DEFAULT_DEV_REAL,
            epochs=int(epochs) if epochs else cls.epochs,
            dry=os.environ.get("SENTINELA_RETRAIN_DRY", "").strip().lower() in {"1", "true", "yes"},
        )


def new_run_dir(settings: Settings) -> Path:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    run = settings.cache_dir / "retrain" / f"{stamp}-{uuid.uuid4().hex[:6]}"
    run.mkdir(parents=True)
    return run


def export_feedback(settings: Settings, run: Path, opts: RetrainOptions) -> dict[str, Any]:
    """Committed data + feedback rows into `<run>/data/`; returns counts."""
    from pipeline.alerts.feedback import export_jsonl
    from pipeline.storage.db import make_engine, upgrade

    data = run / "data"
    data.mkdir(parents=True, exist_ok=True)
    committed = sorted(opts.data_dir.glob("*.jsonl"))
    if not committed:
        raise FileNotFoundError(f"no training data (*.jsonl) in {opts.data_dir}")
    for path in committed:
        shutil.copy2(path, data / path.name)
    engine = make_engine(settings.database_url)
    upgrade(engine)
    try:
        with (data / "feedback.jsonl").open("w", encoding="utf-8") as out:
            n = export_jsonl(engine, out)
    finally:
        engine.dispose()
    return {"run": str(run), "feedback_rows": n, "data_files": len(committed) + 1}


def _train_module(data: Path, dev_real: Path | None) -> ModuleType:
    """A private instance of models/train.py pointed at the run's data: the module-level
    paths are swapped on this instance only, so the trainer's code is used unchanged."""
    spec = importlib.util.spec_from_file_location(f"sentinela_train_{uuid.uuid4().hex}", TRAIN_PY)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {TRAIN_PY}")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses look their module up while the class is made
    try:
        spec.loader.exec_module(mod)
    finally:
        sys.modules.pop(spec.name, None)
    original = mod.load_rows
    vars(mod).update(
        DATA_DIR=data,
        load_rows=lambda data_dir=data: original(data_dir),
        DEV_REAL=dev_real if dev_real is not None else data / "no-dev-real.jsonl",
    )
    return mod


def train_candidate(settings: Settings, run: Path, opts: RetrainOptions) -> dict[str, Any]:
    """Build the candidate into `<run>/cache/models/<version>`."""
    mod = _train_module(run / "data", opts.dev_real)
    cache = run / "cache"
    (cache / "base").mkdir(parents=True, exist_ok=True)
    shared_base = settings.cache_dir / "base" / "e5-small"
    link = cache / "base" / "e5-small"
    if shared_base.is_dir() and not link.exists():
        link.symlink_to(shared_base, target_is_directory=True)
    target = mod.build(cache, mod.Hyper(epochs=opts.epochs), force=True)
    return {"candidate": str(target), "model_version": target.name, "epochs": opts.epochs}


def _dev_examples(run: Path, opts: RetrainOptions) -> dict[str, list[Any]]:
    from pipeline.evaluate import example_from_row, load_examples

    mod = _train_module(run / "data", opts.dev_real)
    rows = [r for r in mod.load_rows() if mod.is_dev(r["id"])]
    sets = {"dev_split": [example_from_row(r) for r in rows]}
    if opts.dev_real is not None and opts.dev_real.is_file():
        sets["dev_real"] = load_examples(opts.dev_real)
    return sets


def evaluate_candidate(
    settings: Settings, run: Path, candidate: Path, opts: RetrainOptions
) -> dict[str, Any]:
    """Macro-F1 of candidate and current model per dev set and combined; writes the report."""
    from pipeline.classify.model import SentinelaClassifier, load_classifier
    from pipeline.evaluate import evaluate, macro_f1

    sets = _dev_examples(run, opts)
    sets["combined"] = [e for name in list(sets) for e in sets[name]]
    models: dict[str, Any] = {"candidate": SentinelaClassifier.from_pretrained(candidate)}
    try:
        models["current"] = load_classifier(settings.model_dir, settings.cache_dir)
    except Exception as exc:  # no model yet: any candidate is better than none
        log.warning("no current model to compare with: %s", exc)
    scores: dict[str, dict[str, Any]] = {}
    for set_name, examples in sets.items():
        row: dict[str, Any] = {"examples": len(examples)}
        for who, clf in models.items():
            m, _ = evaluate(clf, examples)
            row[who] = round(macro_f1(m["all"]), 4)
        scores[set_name] = row
    cand = scores["combined"]["candidate"]
    cur = scores["combined"].get("current")
    better = cur is None or cand > cur
    report = {
        "run": str(run),
        "candidate": str(candidate),
        "candidate_version": models["candidate"].model_version,
        "current_version": models["current"].model_version if "current" in models else None,
        "macro_f1": scores,
        "better": better,
        "dry": opts.dry,
        "promoted": False,
        "decision": (
            "dry run: not promoted"
            if opts.dry
            else f"candidate {cand:.4f} vs current {cur if cur is None else f'{cur:.4f}'}: "
            + ("promote" if better else "keep current")
        ),
    }
    write_report(run, report)
    return report


def write_report(run: Path, report: dict[str, Any]) -> Path:
    path = run / "report.json"
    path.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    log.info("retrain report (%s):\n%s", path, json.dumps(report, indent=2))
    return path


def promote(settings: Settings, report: dict[str, Any]) -> dict[str, Any]:
    """Point the cache's models/CURRENT at the candidate when the report says it is better."""
    report = {**report, "promoted": False}
    if report["dry"] or not report["better"]:
        write_report(Path(report["run"]), report)
        return report
    candidate = Path(report["candidate"])
    models = settings.cache_dir / "models"
    target = models / candidate.name
    if not (target / "config.json").is_file():
        staging = models / f".{candidate.name}.{uuid.uuid4().hex[:6]}.tmp"
        shutil.copytree(candidate, staging, symlinks=False)
        if target.exists():
            shutil.rmtree(target)
        staging.rename(target)
    pointer = models / "CURRENT"
    tmp = models / f".CURRENT.{uuid.uuid4().hex[:6]}"
    tmp.write_text(candidate.name + "\n")
    os.replace(tmp, pointer)  # atomic: a task loading the model sees the old or the new one
    report["promoted"] = True
    report["promoted_to"] = str(target)
    if settings.model_dir is not None:
        report["note"] = f"SENTINELA_MODEL_DIR={settings.model_dir} pins the served model"
    write_report(Path(report["run"]), report)
    return report
