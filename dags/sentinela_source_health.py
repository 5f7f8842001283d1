"""Sentinela source health: hourly report of dead, backing-off and silent sources."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from airflow.sdk import dag, task

DOC = """
### Sentinela source health
Every hour, checks each configured source in the archive: **failing** (three or more
fetches in a row failed), **backing off** (held back after repeated failures) or **silent**
(no new item for much longer than its usual gap — a local outlet that stops publishing can
mean its reporters were threatened). When any is found, posts the list to the ops channel
`SENTINELA_OPS_CHANNEL` (default `#sentinela-ops`); without a Slack token it writes the
list to the task log. Healthy hours post nothing.
"""


@dag(
    dag_id="sentinela_source_health",
    schedule=timedelta(hours=1),
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    doc_md=DOC,
    tags=["sentinela", "ops"],
    default_args={
        "owner": "sentinela",
        "retries": 2,
        "retry_delay": timedelta(minutes=1),
        "retry_exponential_backoff": True,
        "max_retry_delay": timedelta(minutes=10),
    },
)
def sentinela_source_health() -> None:
    @task(pool="slack", execution_timeout=timedelta(minutes=10))
    def report_health() -> dict[str, Any]:
        from pipeline.tasks import report_source_health

        return report_source_health()

    report_health()


sentinela_source_health()
