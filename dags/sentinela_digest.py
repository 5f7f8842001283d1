"""Sentinela daily digest: yesterday's matches, one message per routed Slack channel."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from airflow.sdk import dag, task

DOC = """
### Sentinela daily digest
Every morning (07:00 UTC) posts the previous UTC day's digest (counts per label, country
and source, the top stories, a chart) to every channel of the routing rules
(`SENTINELA_ROUTING`). Posting is idempotent per channel and day: a retry, or a manual
re-run, finds the message already posted and does not post it again.

Runs in the `slack` pool with the monitor's alerts, so the two never post at once.
Without a Slack token (`SLACK_BOT_TOKEN` or the Connection `slack_api_default`) it skips.
"""


@dag(
    dag_id="sentinela_digest",
    schedule="0 7 * * *",
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    doc_md=DOC,
    tags=["sentinela", "digest"],
    default_args={
        "owner": "sentinela",
        "retries": 3,
        "retry_delay": timedelta(minutes=1),
        "retry_exponential_backoff": True,
        "max_retry_delay": timedelta(minutes=30),
    },
)
def sentinela_digest() -> None:
    @task(pool="slack", execution_timeout=timedelta(minutes=15))
    def send_digest(**context: Any) -> dict[str, Any]:
        from pipeline.tasks import send_daily_digest

        # The day before the run's logical date (a manual run may have none: yesterday).
        when = context.get("logical_date")
        return send_daily_digest(
            day=(when - timedelta(days=1)).date().isoformat() if when else None
        )

    send_digest()


sentinela_digest()
