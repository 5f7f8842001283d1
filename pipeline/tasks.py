"""Entry points for Airflow tasks: each builds what it needs from the environment, does one
stage, and returns a small JSON-able summary (never payloads) for XCom."""

from __future__ import annotations

import math
import os
import time
from typing import Any

from pipeline.config import Settings

# Dynamic task mapping: the monitor DAG maps ingest over shards of sources. The count stays
# far below Airflow's max_map_length (1024 by default) and each shard keeps enough feeds for
# fetch concurrency to pay off.
DEFAULT_SOURCES_PER_SHARD = 50
DEFAULT_MAX_SHARDS = 64
DEFAULT_OPS_CHANNEL = "#sentinela-ops"


def task_settings() -> Settings:
    """Settings for an Airflow task: the environment, gaps filled from Airflow Connections."""
    from pipeline.airflow_conn import resolve_env

    return Settings.from_env(resolve_env())


def _env_int(key: str, default: int) -> int:
    raw = os.environ.get(key, "").strip()
    try:
        value = int(raw) if raw else default
    except ValueError as exc:
        raise ValueError(f"{key} must be an integer, got {raw!r}") from exc
    if value < 1:
        raise ValueError(f"{key} must be at least 1, got {value}")
    return value


def plan_shards(settings: Settings | None = None) -> list[dict[str, int]]:
    """Shard descriptors for `ingest_sources`: SENTINELA_SHARDS if set, else one shard per
    SENTINELA_SOURCES_PER_SHARD sources, at most SENTINELA_MAX_SHARDS."""
    from pipeline.sources import load_sources

    settings = settings or task_settings()
    n_sources = len(load_sources(settings.sources_file))
    # Migrate the archive here, once, before the shards start: parallel shards each running
    # the first migration of an empty database would race to create the same tables.
    _engine(settings, migrate=True).dispose()
    if os.environ.get("SENTINELA_SHARDS", "").strip():
        n = _env_int("SENTINELA_SHARDS", 1)
    else:
        per = _env_int("SENTINELA_SOURCES_PER_SHARD", DEFAULT_SOURCES_PER_SHARD)
        cap = _env_int("SENTINELA_MAX_SHARDS", DEFAULT_MAX_SHARDS)
        n = max(1, min(math.ceil(n_sources / per), cap))
    return [{"shard": i, "of": n} for i in range(n)]


def _engine(settings: Settings, migrate: bool = False) -> Any:
    """An engine on the archive. Only the first task of a DAG run migrates (`plan_shards`,
    or the single task of the digest and health DAGs): the stage tasks after it, mapped
    shards included, would otherwise each run Alembic again for nothing."""
    from pipeline.storage.db import make_engine, upgrade

    engine = make_engine(settings.database_url)
    if migrate:
        upgrade(engine)
    return engine


def ingest_sources(settings: Settings | None = None, shard: int = 0, of: int = 1) -> dict[str, Any]:
    """Fetch and store the sources of shard `shard` of `of` (all of them by default)."""
    from pipeline.run import RunSummary, ingest
    from pipeline.sources import load_sources, select_shard

    started = time.perf_counter()
    settings = settings or task_settings()
    srcs = select_shard(load_sources(settings.sources_file), shard, of)
    summary = RunSummary()
    new_ids = ingest(_engine(settings), settings, srcs, summary) if srcs else []
    return {
        "shard": shard,
        "of": of,
        "sources": len(srcs),
        "new_items": len(new_ids),
        "errors": {r.source: r.errors[:3] for r in summary.reports.values() if r.errors},
        "seconds": round(time.perf_counter() - started, 3),
    }


def classify_new(settings: Settings | None = None) -> dict[str, Any]:
    from pipeline.alerts.sinks import make_sink
    from pipeline.classify.model import load_classifier
    from pipeline.run import classify_unclassified, make_router

    started = time.perf_counter()
    settings = settings or task_settings()
    classifier = load_classifier(settings.model_dir, settings.cache_dir)
    router = make_router(settings, make_sink(settings))
    matched = classify_unclassified(_engine(settings), classifier, router)
    return {
        "matched": len(matched),
        "model_version": classifier.model_version,
        "seconds": round(time.perf_counter() - started, 3),
    }


def send_alerts(settings: Settings | None = None) -> dict[str, Any]:
    from pipeline.alerts.sinks import make_sink
    from pipeline.run import RunSummary, deliver

    started = time.perf_counter()
    settings = settings or task_settings()
    summary = RunSummary()
    sent = deliver(_engine(settings), make_sink(settings), summary)
    if summary.alert_errors:
        from pipeline.errors import TransientError

        # Fail the task so Airflow retries it; the alerts stay pending in the archive.
        raise TransientError(f"{sent} sent, then: {summary.alert_errors[0]}")
    return {"sent": sent, "seconds": round(time.perf_counter() - started, 3)}


def send_daily_digest(settings: Settings | None = None, day: str | None = None) -> dict[str, Any]:
    """Post yesterday's (or `day`'s) digest to every routed channel; once per channel and day."""
    from datetime import UTC, date, datetime, timedelta

    from pipeline.alerts.digest import send_digest
    from pipeline.alerts.sinks import make_hook, make_sink
    from pipeline.run import make_router

    settings = settings or task_settings()
    when = date.fromisoformat(day) if day else datetime.now(UTC).date() - timedelta(days=1)
    if not settings.slack_bot_token:
        return {"day": when.isoformat(), "skipped": "no SLACK_BOT_TOKEN"}
    engine = _engine(settings, migrate=True)
    hook = make_hook(settings)
    channels = make_router(settings, make_sink(settings)).channels
    results = {c: send_digest(engine, hook, c, when).status for c in channels}
    return {"day": when.isoformat(), "channels": results}


# Statuses worth waking someone for: dead (failing), held back by back-off, or unusually quiet.
_UNHEALTHY = ("failing", "backing off", "silent")


def report_source_health(
    settings: Settings | None = None, channel: str | None = None, now: Any = None
) -> dict[str, Any]:
    """Post the sources that are failing, backing off or silent to the ops channel
    (SENTINELA_OPS_CHANNEL); without a Slack token, log them. Nothing is posted when all
    sources are healthy."""
    import logging

    from pipeline.health import format_health, source_health
    from pipeline.sources import load_sources

    settings = settings or task_settings()
    channel = channel or os.environ.get("SENTINELA_OPS_CHANNEL") or DEFAULT_OPS_CHANNEL
    rows = source_health(_engine(settings, migrate=True), load_sources(settings.sources_file), now)
    bad = [h for h in rows if h.status in _UNHEALTHY]
    out: dict[str, Any] = {
        "sources": len(rows),
        "unhealthy": {h.name: h.status for h in bad},
        "channel": channel,
        "posted": False,
    }
    if not bad:
        return out
    counts = ", ".join(f"{sum(h.status == s for h in bad)} {s}" for s in _UNHEALTHY)
    text = f"Sentinela source health: {len(bad)} of {len(rows)} sources need attention ({counts})"
    table = format_health(bad)
    if not settings.slack_bot_token:
        logging.getLogger(__name__).warning("%s\n%s", text, table)
        return out
    from pipeline.alerts.sinks import make_hook

    # Slack caps a section's text at 3,000 characters; the full table is in the task log.
    body = table if len(table) <= 2900 else table[:2880] + "\n…"
    blocks = [
        {"type": "section", "text": {"type": "mrkdwn", "text": text}},
        {"type": "section", "text": {"type": "mrkdwn", "text": f"```{body}```"}},
    ]
    out["ts"] = make_hook(settings).post_message(channel, text, blocks=blocks)
    out["posted"] = True
    return out
