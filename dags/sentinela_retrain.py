"""Sentinela retrain: analysts' feedback → candidate model → evaluate → promote if better."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from airflow.sdk import dag, task

DOC = """
### Sentinela retrain (manual)
Trigger by hand after analysts have judged enough alerts.

1. **export_feedback** writes the feedback table as training rows beside a copy of the
   committed training data (`SENTINELA_RETRAIN_DATA`, default `models/data`), in a run
   directory under the cache (`SENTINELA_CACHE_DIR/retrain/<time>-<id>`).
2. **train** builds a candidate with `models/train.py` into the run's own cache:
   `SENTINELA_RETRAIN_EPOCHS` (default 3; 0 = frozen encoder, head only).
3. **evaluate** scores candidate and current model on the dev split and on
   `SENTINELA_RETRAIN_DEV_REAL` (default `../shared/data/dev-real.jsonl`, if present).
4. **promote** points `models/CURRENT` at the candidate only if its macro-F1 on the
   combined dev sets is strictly better; `SENTINELA_RETRAIN_DRY=1` never promotes.

The report (scores, versions, decision) is the `promote` task's XCom, is in its log, and is
written to `report.json` in the run directory. Running tasks pick the new model up on their
next load.
"""


@dag(
    dag_id="sentinela_retrain",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    doc_md=DOC,
    tags=["sentinela", "model"],
    default_args={
        "owner": "sentinela",
        "retries": 1,
        "retry_delay": timedelta(minutes=2),
        "retry_exponential_backoff": True,
    },
)
def sentinela_retrain() -> None:
    @task
    def export_feedback() -> dict[str, Any]:
        from pipeline.retrain import RetrainOptions, export_feedback, new_run_dir
        from pipeline.tasks import task_settings

        settings = task_settings()
        return export_feedback(settings, new_run_dir(settings), RetrainOptions.from_env())

    @task(execution_timeout=timedelta(hours=3))
    def train(exported: Any) -> dict[str, Any]:
        from pathlib import Path

        from pipeline.retrain import RetrainOptions, train_candidate
        from pipeline.tasks import task_settings

        run = Path(exported["run"])
        return {"run": str(run)} | train_candidate(task_settings(), run, RetrainOptions.from_env())

    @task(execution_timeout=timedelta(hours=1))
    def evaluate(trained: Any) -> dict[str, Any]:
        from pathlib import Path

        from pipeline.retrain import RetrainOptions, evaluate_candidate
        from pipeline.tasks import task_settings

        return evaluate_candidate(
            task_settings(),
            Path(trained["run"]),
            Path(trained["candidate"]),
            RetrainOptions.from_env(),
        )

    @task
    def promote(report: Any) -> dict[str, Any]:
        from pipeline.retrain import promote
        from pipeline.tasks import task_settings

        return promote(task_settings(), report)

    # Each step hands the next a small dict of paths and scores (XComArgs at parse time).
    promote(evaluate(train(export_feedback())))


sentinela_retrain()
