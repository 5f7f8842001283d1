"""Sentinela monitor: fetch → normalise/dedup → store → classify → alert, every 10 minutes.

Thin by design: every task is a call into `pipeline.tasks`; imports happen inside the tasks
so that parsing this file costs the scheduler nothing (no DB, no HTTP, no model).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from airflow.sdk import dag, task

DOC = """
### Sentinela monitor
Pulls every source in `SENTINELA_SOURCES`, stores new items in the archive, classifies them
with the transformer classifier and sends one alert per match to Slack or the task log.

* **plan_shards** splits the sources into shards (`SENTINELA_SHARDS`, or one per
  `SENTINELA_SOURCES_PER_SHARD` sources, at most `SENTINELA_MAX_SHARDS`; a source's shard is
  a stable hash of its name).
* **ingest_shard** is mapped over the shards (dynamic task mapping): each fetches, parses,
  normalises, de-duplicates and stores its own sources, so shards run in parallel on as many
  workers as there are and one slow shard does not hold the others' retries.
* **classify** scores every item the current model has not scored yet and records the
  pending alerts; **alert** sends them. `alert` runs in the `slack` pool
  (`airflow pools set slack 1 "Slack rate limit"`), so no two Slack-posting tasks (this DAG's
  or `sentinela_digest`'s) ever run at once and Slack's per-channel rate limit holds.

Stages hand over through the archive; XComs carry only counts. Items are stored before
classification and alerts recorded before sending, so a failed task loses nothing: its retry
(or the next run) picks up where it stopped.

Secrets: `SENTINELA_DATABASE_URL` or the Airflow Connection `sentinela_db`; `SLACK_BOT_TOKEN`
or the Connection `slack_api_default` (password = bot token, extra `base_url`).
"""

DEFAULT_ARGS: dict[str, Any] = {
    "owner": "sentinela",
    "retries": 3,
    "retry_delay": timedelta(seconds=30),
    "retry_exponential_backoff": True,
    "max_retry_delay": timedelta(minutes=10),
}


@dag(
    dag_id="sentinela_monitor",
    schedule=timedelta(minutes=10),
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    dagrun_timeout=timedelta(minutes=30),
    doc_md=DOC,
    tags=["sentinela", "monitoring"],
    default_args=DEFAULT_ARGS,
)
def sentinela_monitor() -> None:
    @task
    def plan_shards() -> list[dict[str, int]]:
        from pipeline.tasks import plan_shards

        return plan_shards()

    @task(execution_timeout=timedelta(minutes=15))
    def ingest_shard(shard: dict[str, int]) -> dict[str, Any]:
        from pipeline.tasks import ingest_sources

        return ingest_sources(shard=shard["shard"], of=shard["of"])

    @task(execution_timeout=timedelta(minutes=20))
    def classify(ingested: Any) -> dict[str, Any]:
        # `ingested`: the mapped shards' summaries (an XComArg while the DAG is built).
        from pipeline.tasks import classify_new

        out = classify_new()
        out["new_items"] = sum(int(r["new_items"]) for r in ingested)
        return out

    @task(pool="slack", execution_timeout=timedelta(minutes=20))
    def alert() -> dict[str, Any]:
        from pipeline.tasks import send_alerts

        return send_alerts()

    ingested = ingest_shard.expand(shard=plan_shards())
    classify(ingested) >> alert()


sentinela_monitor()
