"""Sentinela monitor: fetch → store → classify → alert, every 10 minutes.

Thin by design: every task is a call into `pipeline.tasks`; imports happen inside the tasks
so that parsing this file costs the scheduler nothing (no DB, no HTTP, no model).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from airflow.sdk import dag, task

DOC = """
### Sentinela monitor
Pulls every source in `SENTINELA_SOURCES`, stores new items in the archive
(`SENTINELA_DATABASE_URL`), classifies them with the transformer classifier and sends
one alert per match to Slack (`SLACK_BOT_TOKEN`, `SENTINELA_SLACK_CHANNEL`) or the task log.
Items are stored before classification and alerts recorded before sending, so a failed
task loses nothing: its retry (or the next run) picks up where it stopped.
"""


@dag(
    dag_id="sentinela_monitor",
    schedule=timedelta(minutes=10),
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    doc_md=DOC,
    tags=["sentinela", "monitoring"],
    default_args={
        "owner": "sentinela",
        "retries": 3,
        "retry_delay": timedelta(seconds=30),
        "retry_exponential_backoff": True,
        "max_retry_delay": timedelta(minutes=10),
    },
)
def sentinela_monitor() -> None:
    @task
    def ingest() -> dict[str, Any]:
        from pipeline.tasks import ingest_sources

        return ingest_sources()

    @task
    def classify() -> dict[str, Any]:
        from pipeline.tasks import classify_new

        return classify_new()

    @task
    def alert() -> dict[str, Any]:
        from pipeline.tasks import send_alerts

        return send_alerts()

    # Stages hand over through the archive, not XCom: each returns only a small summary.
    ingest() >> classify() >> alert()


sentinela_monitor()
