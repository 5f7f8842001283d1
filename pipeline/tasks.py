"""Entry points for Airflow tasks: each builds what it needs from the environment, does one
stage, and returns a small JSON-able summary (never payloads) for XCom."""

from __future__ import annotations

from typing import Any

from pipeline.config import Settings


def _engine(settings: Settings) -> Any:
    from pipeline.storage.db import make_engine, upgrade

    engine = make_engine(settings.database_url)
    upgrade(engine)
    return engine


def ingest_sources(settings: Settings | None = None) -> dict[str, Any]:
    from pipeline.run import RunSummary, ingest
    from pipeline.sources import load_sources

    settings = settings or Settings.from_env()
    srcs = load_sources(settings.sources_file)
    summary = RunSummary()
    new_ids = ingest(_engine(settings), settings, srcs, summary)
    return {
        "sources": len(srcs),
        "new_items": len(new_ids),
        "errors": {r.source: r.errors for r in summary.reports.values() if r.errors},
    }


def classify_new(settings: Settings | None = None) -> dict[str, Any]:
    from pipeline.alerts.sinks import make_sink
    from pipeline.classify.model import load_classifier
    from pipeline.run import classify_unclassified, make_router

    settings = settings or Settings.from_env()
    classifier = load_classifier(settings.model_dir, settings.cache_dir)
    router = make_router(settings, make_sink(settings))
    matched = classify_unclassified(_engine(settings), classifier, router)
    return {"matched": len(matched), "model_version": classifier.model_version}


def send_alerts(settings: Settings | None = None) -> dict[str, Any]:
    from pipeline.alerts.sinks import make_sink
    from pipeline.run import RunSummary, deliver

    settings = settings or Settings.from_env()
    summary = RunSummary()
    sent = deliver(_engine(settings), make_sink(settings), summary)
    if summary.alert_errors:
        from pipeline.errors import TransientError

        # Fail the task so Airflow retries it; the alerts stay pending in the archive.
        raise TransientError(f"{sent} sent, then: {summary.alert_errors[0]}")
    return {"sent": sent}


def send_daily_digest(settings: Settings | None = None, day: str | None = None) -> dict[str, Any]:
    """Post yesterday's (or `day`'s) digest to every routed channel; once per channel and day."""
    from datetime import UTC, date, datetime, timedelta

    from pipeline.alerts.digest import send_digest
    from pipeline.alerts.sinks import make_hook, make_sink
    from pipeline.run import make_router

    settings = settings or Settings.from_env()
    when = date.fromisoformat(day) if day else datetime.now(UTC).date() - timedelta(days=1)
    if not settings.slack_bot_token:
        return {"day": when.isoformat(), "skipped": "no SLACK_BOT_TOKEN"}
    engine = _engine(settings)
    hook = make_hook(settings)
    channels = make_router(settings, make_sink(settings)).channels
    results = {c: send_digest(engine, hook, c, when).status for c in channels}
    return {"day": when.isoformat(), "channels": results}
