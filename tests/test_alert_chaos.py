"""Chaos: kill the sender at every step, make Slack fail in every way, rerun until done —
every alert is in Slack exactly once, replies in the right threads.

The sender runs in a child process that `os._exit`s at a chosen durable step ("sending"
committed, "posted" to Slack, "sent" committed) of its n-th alert, while the fake Slack
(in this process, so it outlives the children) answers 429s, 5xx, dropped connections and
stalls that land after the client gave up.
"""

from __future__ import annotations

import random
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import sqlalchemy as sa

from pipeline.alerts.routing import Destination
from pipeline.storage import repo
from pipeline.storage.schema import alerts
from tests.fakes.slack import FakeSlack
from tests.test_alert_delivery import GANG, Story, seed

ROOT = Path(__file__).resolve().parents[1]
CHILD = """
import os, sys
from pipeline.alerts.sinks import SlackSink
from pipeline.alerts.slack_hook import SlackHook
from pipeline.run import deliver
from pipeline.storage.db import make_engine

db, url, token, step, nth = sys.argv[1:6]
seen = [0]

def checkpoint(at, alert):
    if at == step:
        seen[0] += 1
        if seen[0] == int(nth):
            os._exit(17)  # no cleanup, no rollback handlers: a kill

hook = SlackHook(token, url, min_interval_s=0.0, max_retries=2, timeout_s=0.25)
sink = SlackSink(hook, "#sentinela-alerts")
sink.settle_s = 0.6  # > the fake's stall: a post that timed out has landed by then
deliver(make_engine(db), sink, checkpoint=checkpoint)
"""
FAULTS = ["429", "500", "503", "timeout", "drop"]


def _run_child(db_url: str, slack: FakeSlack, step: str, nth: int) -> int:
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, db_url, slack.url, slack.state.token, step, str(nth)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode in (0, 17), proc.stderr[-3000:]
    return proc.returncode


def _open(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        return int(
            conn.execute(
                sa.select(sa.func.count()).where(alerts.c.status.in_(["pending", "sending"]))
            ).scalar_one()
        )


def test_kill_and_fault_at_every_step_posts_each_alert_exactly_once(
    db_url: str, engine: sa.Engine
) -> None:
    # 12 stories, two story clusters (threads), to two channels; 3 of them to both.
    stories = [
        Story(f"Historia {n} sobre el penal", cluster=(n % 3 if n % 2 == 0 else None))
        for n in range(12)
    ]
    ids = seed(engine, stories)
    rows = [repo.ClassificationRow(i, "stub-1", [GANG], {GANG: 0.7}, {GANG: "e"}) for i in ids]
    dests = {
        i: [Destination("#sentinela-alerts")] + ([Destination("#ops")] if n % 4 == 0 else [])
        for n, i in enumerate(ids)
    }
    with engine.begin() as conn:
        repo.store_classifications(conn, rows, dests)
    with engine.connect() as conn:
        expected = set(conn.execute(sa.select(alerts.c.id)).scalars())
    assert len(expected) == 15

    rng = random.Random(20240501)
    # Every step, early and later in a run (a later kill leaves sent alerts behind it).
    kills = [("sending", 1), ("posted", 1), ("sent", 1), ("posted", 3), ("sending", 4)]
    with FakeSlack(min_interval=0.0, retry_after=0, stall_s=0.4) as slack:
        outcomes = []
        for step, nth in kills:
            slack.state.faults.extend(rng.choice(FAULTS) for _ in range(2))
            outcomes.append(_run_child(db_url, slack, step, nth))
        assert outcomes.count(17) >= 4  # the kills really happened
        # Rerun (with some faults still) until everything is delivered.
        reruns = 0
        while _open(engine) and reruns < 25:
            if reruns < 4:
                slack.state.faults.append(rng.choice(FAULTS))
            _run_child(db_url, slack, "never", 0)
            reruns += 1
            time.sleep(0.2)
        assert _open(engine) == 0, f"still open after {reruns} reruns"
        print(
            f"kills {outcomes.count(17)}, reruns {reruns}, calls {dict(Counter(slack.state.calls))}"
        )
        slack.idle()
        msgs = list(slack.state.messages)
        calls = Counter(slack.state.calls)

    posted = [m.metadata["event_payload"]["alert_id"] for m in msgs if m.metadata]
    dupes = {a: c for a, c in Counter(posted).items() if c > 1}
    assert not dupes, f"posted twice: {dupes}"
    assert set(posted) == expected and len(posted) == len(expected)
    assert calls["conversations.history"] >= 1  # reconcile ran (kills after "posted")

    # The archive agrees with Slack: every ts recorded is the ts Slack gave that alert, and
    # every reply hangs off its story's top-level alert in the same channel.
    by_alert = {m.metadata["event_payload"]["alert_id"]: m for m in msgs if m.metadata}
    with engine.connect() as conn:
        rows_db = conn.execute(
            sa.select(
                alerts.c.id, alerts.c.status, alerts.c.slack_ts, alerts.c.kind, alerts.c.thread_ts
            )
        ).all()
    for alert_id, status, ts, kind, thread_ts in rows_db:
        assert status == "sent" and ts == by_alert[alert_id].ts, alert_id
        assert (kind == "reply") == (by_alert[alert_id].thread_ts is not None), alert_id
        if kind == "reply":
            assert by_alert[alert_id].thread_ts == thread_ts
            parent = next(m for m in msgs if m.ts == thread_ts)
            assert parent.thread_ts is None and parent.channel == by_alert[alert_id].channel
    # Clusters {0, 6}, {2, 8}, {4, 10} in #sentinela-alerts: three replies; none in #ops.
    assert sorted(r[0] for r in rows_db if r[3] == "reply") == sorted(
        a for a in expected if by_alert[a].thread_ts
    )
    assert sum(1 for r in rows_db if r[3] == "reply") == 3
