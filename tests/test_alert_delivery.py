"""Routing, severity, one-story-one-alert threads and the reconcile step of delivery, on
SQLite and PostgreSQL against the fake Slack Web API."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from pipeline.alerts.routing import Destination, Match, RoutingError, load_routing, parse_routing
from pipeline.alerts.sinks import SlackSink
from pipeline.alerts.slack_hook import SlackHook
from pipeline.classify.base import Document, Prediction
from pipeline.items import Source
from pipeline.run import RunSummary, classify_unclassified, deliver
from pipeline.storage import repo
from pipeline.storage.schema import alerts, items
from tests.fakes.slack import FakeSlack

ROOT = Path(__file__).resolve().parents[1]
CHANNELS = {
    "#sentinela-alerts": "C0ALERTS",
    "#sentinela-urgent": "C0URGENT",
    "#sentinela-brasil": "C0BRASIL",
    "#ops": "C0OPS",
}
GANG, OPS = "gang_prison_control", "security_operation"


@dataclass(frozen=True)
class Story:
    title: str
    text: str = "Texto de la nota."
    source: str = "elpitazo"
    lang: str = "es"
    country: str | None = "VE"
    cluster: int | None = None
    labels: tuple[str, ...] = (GANG,)
    score: float = 0.7


class StubClassifier:
    """Stands in for the model: the verdict is written on each story."""

    model_version = "stub-1"
    labels = (GANG, OPS)

    def __init__(self, stories: Sequence[Story]) -> None:
        self.by_title = {s.title: s for s in stories}

    def predict(self, docs: Sequence[Document], evidence: bool = True) -> list[Prediction]:
        out = []
        for d in docs:
            s = self.by_title[d.title]
            scores = {lbl: (s.score if lbl in s.labels else 0.05) for lbl in self.labels}
            evidence = {lbl: f"evidence for {lbl}" for lbl in s.labels}
            out.append(Prediction(list(s.labels), scores, self.model_version, evidence))
        return out


def seed(engine: sa.Engine, stories: Sequence[Story]) -> list[int]:
    """Store the stories as items (cluster ids set directly) of their sources."""
    srcs = {
        s.source: Source(
            name=s.source, kind="rss", url=f"https://{s.source}.example/feed", country=s.country
        )
        for s in stories
    }
    ids: list[int] = []
    with engine.begin() as conn:
        src_ids = repo.sync_sources(conn, list(srcs.values()))
        for n, s in enumerate(stories):
            url = f"https://{s.source}.example/{n}-{abs(hash(s.title)) % 10**8}"
            row = conn.execute(
                sa.insert(items)
                .values(
                    source_id=src_ids[s.source],
                    url=url,
                    canonical_url=url,
                    title=s.title,
                    text=s.text,
                    lang=s.lang,
                    published_at=datetime(2024, 5, 1, 12, n % 60, tzinfo=UTC),
                    fetched_at=datetime.now(UTC),
                    content_hash=hashlib.sha256(url.encode()).hexdigest(),
                    cluster_id=s.cluster,
                )
                .returning(items.c.id)
            ).scalar_one()
            ids.append(int(row))
    return ids


def hook_for(slack: FakeSlack, **kw: object) -> SlackHook:
    args: dict[str, object] = {"min_interval_s": 0.0, "max_retries": 2, "timeout_s": 5}
    args.update(kw)
    return SlackHook(slack.state.token, slack.url, **args)  # type: ignore[arg-type]


def alert_rows(engine: sa.Engine) -> list[tuple[int, str, str, str, str]]:
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(
                alerts.c.item_id,
                alerts.c.channel,
                alerts.c.severity,
                alerts.c.kind,
                alerts.c.status,
            ).order_by(alerts.c.item_id, alerts.c.channel)
        ).all()
    return [tuple(r) for r in rows]  # type: ignore[misc]


def posted_ids(slack: FakeSlack) -> list[int]:
    return [
        m.metadata["event_payload"]["alert_id"]
        for m in slack.state.messages
        if m.metadata and m.metadata.get("event_type") == "sentinela_alert"
    ]


ROUTING_YAML = """
default_channel: "#sentinela-alerts"
high_score: 0.9
routes:
  - channel: "#sentinela-urgent"
    severity: high
  - channel: "#sentinela-brasil"
    countries: [BR]
    labels: [gang_prison_control]
    min_score: 0.6
  - channel: default
    languages: [es, en]
"""


def test_routing_rules_and_severity() -> None:
    import yaml

    router = parse_routing(yaml.safe_load(ROUTING_YAML), "#fallback")
    assert router.default_channel == "#sentinela-alerts"
    # Both labels fire: high, whatever the scores.
    both = Match([GANG, OPS], {GANG: 0.6, OPS: 0.55}, "es", ("VE",))
    assert router.destinations(both) == [
        Destination("#sentinela-urgent", "high"),
        Destination("#sentinela-alerts", "high"),
    ]
    # One label over the threshold: high too.
    assert router.severity(Match([OPS], {OPS: 0.93}, "en")) == "high"
    # Brazil, Portuguese, gang label over 0.6: only the Brazil channel (pt is not routed to
    # default by the last rule, and the item is routed, so no fallback).
    br = Match([GANG], {GANG: 0.7, OPS: 0.1}, "pt", ("BR",))
    assert router.destinations(br) == [Destination("#sentinela-brasil", "normal")]
    # Below the Brazil rule's min_score and not es/en: no rule takes it → default channel.
    weak = Match([GANG], {GANG: 0.5}, "pt", ("BR",))
    assert router.destinations(weak) == [Destination("#sentinela-alerts", "normal")]
    # The min_score looks at the rule's own labels, not the best one.
    ops_br = Match([OPS], {OPS: 0.8, GANG: 0.1}, "pt", ("BR",))
    assert router.destinations(ops_br) == [Destination("#sentinela-alerts", "normal")]
    assert router.destinations(Match([], {GANG: 0.2})) == []
    drop = parse_routing(
        {"unrouted": "drop", "routes": [{"channel": "#x", "countries": ["EC"]}]}, "#d"
    )
    assert drop.destinations(weak) == []


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({"routes": [{"channel": "#x", "label": ["gang"]}]}, "route 1: unknown key(s) label"),
        ({"routes": [{"channel": "#x", "labels": ["gangs"]}]}, "unknown label(s) gangs"),
        ({"routes": [{"severity": "urgent"}]}, "'severity' must be one of normal, high"),
        ({"high_score": "very"}, "'high_score' must be a number"),
        ({"rutes": []}, "unknown key(s) rutes"),
        (["#x"], "expected a mapping"),
    ],
)
def test_bad_routing_is_a_clear_error(doc: object, message: str) -> None:
    with pytest.raises(RoutingError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_routing(doc, "#d", "routing.yaml")


def test_routing_file_from_env_and_example(tmp_path: Path) -> None:
    from pipeline.config import Settings

    assert Settings.from_env({}).routing_file is None
    s = Settings.from_env({"SENTINELA_ROUTING": str(ROOT / "routing.yaml")})
    router = load_routing(s.routing_file, s.slack_channel)
    assert "#sentinela-urgent" in router.channels  # the shipped example parses
    assert load_routing(None, "#a").destinations(Match([GANG], {GANG: 0.99})) == [
        Destination("#a", "high")
    ]
    bad = tmp_path / "r.yaml"
    bad.write_text("routes: [\n")
    with pytest.raises(RoutingError, match="not valid YAML"):
        load_routing(bad, "#a")
    with pytest.raises(RoutingError, match="cannot read routing file"):
        load_routing(tmp_path / "missing.yaml", "#a")


def test_routing_is_applied_where_alerts_are_created(engine: sa.Engine, tmp_path: Path) -> None:
    import yaml

    stories = [
        Story("Toma de Tocorón", labels=(GANG, OPS), score=0.8),  # high: urgent + default
        Story("Facção do PCC domina presídio", lang="pt", country="BR", source="g1"),  # BR
        Story("Rebelião em Alcaçuz", lang="pt", country=None, source="wire", score=0.5),  # weak
        Story("Nothing here", labels=()),
    ]
    ids = seed(engine, stories)
    router = parse_routing(yaml.safe_load(ROUTING_YAML), "#sentinela-alerts")
    matched = classify_unclassified(engine, StubClassifier(stories), router)
    assert sorted(matched) == sorted(ids[:3])
    assert alert_rows(engine) == [
        (ids[0], "#sentinela-alerts", "high", "alert", "pending"),
        (ids[0], "#sentinela-urgent", "high", "alert", "pending"),
        (ids[1], "#sentinela-brasil", "normal", "alert", "pending"),
        # No source country, but the story names Alcaçuz: Brazil. Below min_score, pt: default.
        (ids[2], "#sentinela-alerts", "normal", "alert", "pending"),
    ]
    # Classifying again stores nothing twice.
    assert classify_unclassified(engine, StubClassifier(stories), router) == []
    assert len(alert_rows(engine)) == 4


def test_every_channel_gets_its_alerts_once(engine: sa.Engine) -> None:
    import yaml

    stories = [
        Story("Toma de Tocorón", labels=(GANG, OPS), score=0.8),
        Story("Facção do PCC domina presídio", lang="pt", country="BR", source="g1"),
    ]
    seed(engine, stories)
    router = parse_routing(yaml.safe_load(ROUTING_YAML), "#sentinela-alerts")
    classify_unclassified(engine, StubClassifier(stories), router)
    with FakeSlack(channels=dict(CHANNELS), min_interval=0.0) as slack:
        sink = SlackSink(hook_for(slack), "#sentinela-alerts")
        summary = RunSummary()
        assert deliver(engine, sink, summary) == 3
        assert deliver(engine, sink) == 0
        by_channel = sorted((m.channel, m.blocks[0]["text"]["text"]) for m in slack.state.messages)
    assert by_channel == [
        ("C0ALERTS", "🚨 HIGH · Toma de Tocorón"),
        ("C0BRASIL", "Facção do PCC domina presídio"),
        ("C0URGENT", "🚨 HIGH · Toma de Tocorón"),
    ]
    assert summary.reports["elpitazo"].alerted == 2 and summary.reports["g1"].alerted == 1
    assert {r[4] for r in alert_rows(engine)} == {"sent"}


def test_one_story_one_alert_later_reports_go_in_its_thread(engine: sa.Engine) -> None:
    first = [
        Story("Fuerzas toman Tocorón", cluster=7, source="elpitazo"),
        Story("Requisa en Yare", cluster=None, source="elpitazo"),
        Story("Venezuela retoma Tocorón", cluster=7, source="efecto-cocuyo"),
    ]
    seed(engine, first)
    classify_unclassified(engine, StubClassifier(first), "#sentinela-alerts")
    with FakeSlack(min_interval=0.0) as slack:
        sink = SlackSink(hook_for(slack), "#sentinela-alerts")
        assert deliver(engine, sink) == 3
        # The same story from a third outlet, next run: a reply in the same thread.
        later = [Story("Tocorón: 11.000 efectivos", cluster=7, source="cronica")]
        seed(engine, later)
        classify_unclassified(engine, StubClassifier(later), "#sentinela-alerts")
        assert deliver(engine, sink) == 1
        msgs = slack.state.messages
    top = [m for m in msgs if m.thread_ts is None]
    replies = [m for m in msgs if m.thread_ts is not None]
    assert [m.blocks[0]["text"]["text"] for m in top] == [
        "Fuerzas toman Tocorón",
        "Requisa en Yare",
    ]
    assert {m.thread_ts for m in replies} == {top[0].ts}
    assert [m.text.split(" https://")[0] for m in replies] == [
        "also reported by efecto-cocuyo: Venezuela retoma Tocorón",
        "also reported by cronica: Tocorón: 11.000 efectivos",
    ]
    with engine.connect() as conn:
        kinds = conn.execute(
            sa.select(alerts.c.kind, alerts.c.thread_ts, alerts.c.parent_alert_id).order_by(
                alerts.c.id
            )
        ).all()
    assert [k[0] for k in kinds] == ["alert", "alert", "reply", "reply"]
    assert kinds[2][1] == kinds[3][1] == top[0].ts and kinds[2][2] == kinds[3][2] == 1


def test_crash_after_post_is_reconciled_not_reposted(engine: sa.Engine) -> None:
    stories = [Story(f"Motín {n} en el penal", cluster=1 if n < 3 else None) for n in range(4)]
    seed(engine, stories)
    classify_unclassified(engine, StubClassifier(stories), "#sentinela-alerts")

    class Crash(Exception):
        pass

    def crash_after_second_post(step: str, alert: repo.PendingAlert) -> None:
        if step == "posted" and alert.alert_id == 2:
            raise Crash

    with FakeSlack(min_interval=0.0) as slack:
        sink = SlackSink(hook_for(slack), "#sentinela-alerts")
        sink.settle_s = 0.0
        with pytest.raises(Crash):
            deliver(engine, sink, checkpoint=crash_after_second_post)
        assert posted_ids(slack) == [1, 2]  # alert 2 (a reply) is in Slack, 'sending' here
        with engine.connect() as conn:
            status = conn.execute(sa.select(alerts.c.status).where(alerts.c.id == 2)).scalar()
        assert status == "sending"
        summary = RunSummary()
        assert deliver(engine, sink, summary) == 3  # 2 found in its thread, 3 and 4 posted
        assert posted_ids(slack) == [1, 2, 3, 4]
        calls = slack.state.calls
        assert "conversations.history" in calls and "conversations.replies" in calls
        reply_ts = next(
            m.ts for m in slack.state.messages if m.metadata["event_payload"]["alert_id"] == 2
        )
    with engine.connect() as conn:
        row = conn.execute(
            sa.select(alerts.c.status, alerts.c.slack_ts, alerts.c.attempts).where(alerts.c.id == 2)
        ).one()
    assert tuple(row) == ("sent", reply_ts, 1)


def test_timeout_that_landed_is_found_after_settling(engine: sa.Engine) -> None:
    stories = [Story("Traslado de cabecillas del Tren de Aragua")]
    seed(engine, stories)
    classify_unclassified(engine, StubClassifier(stories), "#sentinela-alerts")
    with FakeSlack(min_interval=0.0, stall_s=0.6) as slack:
        sink = SlackSink(hook_for(slack, timeout_s=0.2, max_retries=0), "#sentinela-alerts")
        sink.settle_s = 0.8
        slack.state.faults.append("timeout")
        summary = RunSummary()
        assert deliver(engine, sink, summary) == 0
        assert "no answer from Slack" in summary.alert_errors[0]
        # Too soon to trust the history: the alert waits, nothing is posted or read.
        assert deliver(engine, sink) == 0 and "conversations.history" not in slack.state.calls
        slack.idle()
        import time

        time.sleep(0.8)
        assert posted_ids(slack) == [1]  # the slow post landed
        assert deliver(engine, sink) == 1  # found, marked sent, not posted again
        assert posted_ids(slack) == [1]
    assert alert_rows(engine)[0][4] == "sent"


def test_unreadable_history_means_wait_not_repost(engine: sa.Engine) -> None:
    stories = [Story("Motín en Tocuyito"), Story("Requisa en Rodeo I")]
    seed(engine, stories)
    classify_unclassified(engine, StubClassifier(stories), "#sentinela-alerts")
    with engine.begin() as conn:
        repo.mark_alert_sending(conn, 1)  # as if a run died mid-post
    with FakeSlack(min_interval=0.0) as slack:
        sink = SlackSink(hook_for(slack, max_retries=0), "#sentinela-alerts")
        sink.settle_s = 0.0
        slack.state.faults.append("503")
        summary = RunSummary()
        assert deliver(engine, sink, summary) == 1  # alert 2 is safe to post; 1 waits
        assert posted_ids(slack) == [2]
        assert any("history unavailable" in e for e in summary.alert_errors)
        assert deliver(engine, sink) == 1  # history readable now: 1 is not there → posted
        assert posted_ids(slack) == [2, 1]


def test_unknown_channel_stops_only_that_channel(engine: sa.Engine) -> None:
    stories = [Story("Motín en Tocuyito"), Story("Requisa en Rodeo I")]
    ids = seed(engine, stories)
    dests = {
        ids[0]: [Destination("#gone"), Destination("#sentinela-alerts")],
        ids[1]: [Destination("#sentinela-alerts")],
    }
    rows = [repo.ClassificationRow(i, "stub-1", [GANG], {GANG: 0.7}, {GANG: "e"}) for i in ids]
    with engine.begin() as conn:
        repo.store_classifications(conn, rows, dests)
    with FakeSlack(min_interval=0.0) as slack:
        summary = RunSummary()
        sent = deliver(engine, SlackSink(hook_for(slack), "#sentinela-alerts"), summary)
        assert sent == 2 and len(slack.state.messages) == 2
    assert any("channel_not_found" in e and "#gone" in e for e in summary.alert_errors)
    statuses = {(r[0], r[1]): r[4] for r in alert_rows(engine)}
    assert statuses[(ids[0], "#gone")] == "pending"  # kept for when the channel is fixed
