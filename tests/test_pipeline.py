"""The whole pipeline over local feeds, into SQLite and PostgreSQL, alerting the fake Slack."""

from __future__ import annotations

import io

import sqlalchemy as sa

from pipeline.alerts.sinks import ConsoleSink, SlackSink
from pipeline.alerts.slack_hook import SlackHook
from pipeline.config import Settings
from pipeline.demo import demo_sources
from pipeline.items import Source
from pipeline.run import format_summary, run_once
from tests.fakes.slack import FakeSlack


def _count(engine: sa.Engine, sql: str) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.text(sql)).scalar() or 0)


def test_run_twice_stores_and_alerts_once(
    engine, settings: Settings, classifier, demo_feeds: str, fake_slack: FakeSlack
) -> None:
    srcs = demo_sources(demo_feeds)
    sink = SlackSink(
        SlackHook(fake_slack.state.token, fake_slack.url, min_interval_s=0.0), "#sentinela-alerts"
    )
    first = run_once(engine, settings, srcs, classifier, sink)
    items = _count(engine, "SELECT COUNT(*) FROM items")
    matches = _count(engine, "SELECT COUNT(*) FROM matches")
    assert items >= 30
    assert 5 <= matches < items  # the feeds mix relevant and irrelevant stories
    assert first.totals.alerted == matches == len(fake_slack.state.messages)
    assert first.totals.new == items
    assert (
        _count(engine, "SELECT COUNT(*) FROM alerts WHERE status = 'sent' AND slack_ts IS NOT NULL")
        == matches
    )
    # Every alert carries its alert id in message metadata and names its labels.
    ids = {m.metadata["event_payload"]["alert_id"] for m in fake_slack.state.messages if m.metadata}
    assert len(ids) == matches

    second = run_once(engine, settings, srcs, classifier, sink)
    assert second.totals.new == 0 and second.totals.alerted == 0
    assert len(fake_slack.state.messages) == matches
    assert _count(engine, "SELECT COUNT(*) FROM items") == items
    assert "TOTAL" in format_summary(second)


def test_unreachable_and_broken_sources_do_not_stop_the_run(
    engine, settings: Settings, classifier, demo_feeds: str, fixture_feeds: str
) -> None:
    srcs = demo_sources(demo_feeds)[:1] + [
        Source(name="dead", kind="rss", url="http://127.0.0.1:9/feed.xml", allow_private=True),
        Source(name="html", kind="rss", url=fixture_feeds + "not_a_feed.html", allow_private=True),
        Source(
            name="bomb", kind="rss", url=fixture_feeds + "billion_laughs.xml", allow_private=True
        ),
    ]
    out = io.StringIO()
    summary = run_once(engine, settings, srcs, classifier, ConsoleSink(out))
    good = summary.reports[srcs[0].name]
    assert good.fetched > 0 and good.new == good.fetched and not good.errors
    for name in ("dead", "html", "bomb"):
        assert summary.reports[name].errors, name
        assert summary.reports[name].new == 0
    assert _count(engine, "SELECT COUNT(*) FROM quarantine") == 2  # html + bomb payloads kept
    assert _count(engine, "SELECT consecutive_failures FROM sources WHERE name = 'dead'") == 1
    table = format_summary(summary)
    for col in ("source", "fetched", "new", "matched", "alerted", "errors"):
        assert col in table


def test_slack_outage_loses_no_alert(
    engine, settings: Settings, classifier, demo_feeds: str, fake_slack: FakeSlack
) -> None:
    srcs = demo_sources(demo_feeds)
    hook = SlackHook(fake_slack.state.token, fake_slack.url, min_interval_s=0.0, max_retries=1)
    sink = SlackSink(hook, "#sentinela-alerts")
    # max_retries=1: the first post and its one retry both fail, so the first run stops.
    fake_slack.state.faults.extend(["503"] * 2)
    first = run_once(engine, settings, srcs, classifier, sink)
    expected = _count(engine, "SELECT COUNT(*) FROM matches")
    assert expected > 0
    assert first.alert_errors
    sent_first = len(fake_slack.state.messages)
    assert sent_first < expected
    assert (
        _count(engine, "SELECT COUNT(*) FROM alerts WHERE status = 'pending'")
        == expected - sent_first
    )
    # Slack is back: the next run sends exactly the rest.
    second = run_once(engine, settings, srcs, classifier, sink)
    assert second.totals.new == 0
    assert len(fake_slack.state.messages) == expected
    assert _count(engine, "SELECT COUNT(*) FROM alerts WHERE status = 'sent'") == expected
    alert_ids = [
        m.metadata["event_payload"]["alert_id"] for m in fake_slack.state.messages if m.metadata
    ]
    assert len(alert_ids) == len(set(alert_ids)) == expected


def test_dead_database_is_a_clear_error(settings: Settings, classifier, demo_feeds: str) -> None:
    import pytest

    from pipeline.storage.db import make_engine

    dead = make_engine(
        "postgresql+psycopg://postgres@127.0.0.1:9/none", connect_args={"connect_timeout": 2}
    )
    with pytest.raises(sa.exc.OperationalError):
        run_once(dead, settings, demo_sources(demo_feeds), classifier, ConsoleSink(io.StringIO()))
