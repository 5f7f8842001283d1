"""Two deliverers at once (an Airflow retry next to the first try, a CLI run during a DAG run)
against one archive and the fake Slack: every alert reaches Slack exactly once."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from typing import TypeVar

import pytest
import sqlalchemy as sa

from pipeline.alerts import delivery
from pipeline.alerts.delivery import DeliveryReport, deliver_pending
from pipeline.alerts.routing import Destination
from pipeline.alerts.sinks import SlackSink
from pipeline.run import RunSummary, classify_unclassified, deliver
from pipeline.storage import repo
from pipeline.storage.db import make_engine
from pipeline.storage.schema import alerts
from tests.fakes.slack import FakeSlack
from tests.test_alert_delivery import GANG, Story, StubClassifier, hook_for, posted_ids, seed

CHANNEL = "#sentinela-alerts"
T = TypeVar("T")


@pytest.fixture
def second_engine(db_url: str, engine: sa.Engine) -> Iterator[sa.Engine]:
    """The other deliverer's own engine: its own connections, as another process has."""
    eng = make_engine(db_url)
    yield eng
    eng.dispose()


def _pending(engine: sa.Engine, n: int, title: str = "Motín {} en el penal de Tocorón") -> None:
    stories = [Story(title.format(k), source=title.split()[0].lower()) for k in range(n)]
    seed(engine, stories)
    classify_unclassified(engine, StubClassifier(stories), CHANNEL)  # type: ignore[arg-type]


def _statuses(engine: sa.Engine) -> Counter[str]:
    with engine.connect() as conn:
        return Counter(conn.execute(sa.select(alerts.c.status)).scalars())


class Paused:
    """A checkpoint that stops its deliverer right after it claimed `alert_id`, until
    released: the other deliverer runs in that window."""

    def __init__(self, alert_id: int) -> None:
        self.alert_id = alert_id
        self.reached = threading.Event()
        self.release = threading.Event()

    def __call__(self, step: str, alert: repo.PendingAlert) -> None:
        if step == "sending" and alert.alert_id == self.alert_id:
            self.reached.set()
            assert self.release.wait(20), "never released"


def _in_thread(
    target: Callable[..., T], *args: object, **kwargs: object
) -> tuple[threading.Thread, list[T]]:
    out: list[T] = []

    def run() -> None:
        out.append(target(*args, **kwargs))

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t, out


def test_second_deliverer_skips_a_busy_channel(engine: sa.Engine, second_engine: sa.Engine) -> None:
    _pending(engine, 4)
    with FakeSlack(min_interval=0.0) as slack:
        pause = Paused(alert_id=1)
        first, result = _in_thread(
            deliver_pending, engine, SlackSink(hook_for(slack), CHANNEL), checkpoint=pause
        )
        assert pause.reached.wait(20)
        # The first deliverer holds the channel mid-post: the second one leaves it alone.
        summary = RunSummary()
        assert deliver(second_engine, SlackSink(hook_for(slack), CHANNEL), summary) == 0
        assert posted_ids(slack) == []
        assert summary.alert_errors == [
            f"{CHANNEL}: busy, another run is delivering its alerts (left to that run)"
        ]
        pause.release.set()
        first.join(20)
        report = result[0]
        assert isinstance(report, DeliveryReport)
        assert [a.alert_id for a in report.sent] == [1, 2, 3, 4] and report.busy == []
        assert posted_ids(slack) == [1, 2, 3, 4]
        # Once the first one is done the channel is free again (the lock went with it).
        _pending(engine, 1, "Requisa {} en Tocuyito")
        assert deliver(second_engine, SlackSink(hook_for(slack), CHANNEL)) == 1
        assert posted_ids(slack) == [1, 2, 3, 4, 5]
    assert _statuses(engine) == {"sent": 5}


def test_alert_claim_stops_a_deliverer_with_a_stale_queue(
    engine: sa.Engine, second_engine: sa.Engine
) -> None:
    """Even a deliverer that got past the channel lock (here: one that never takes it) does
    not post alerts someone else claimed after it read its queue."""
    _pending(engine, 4)
    with FakeSlack(min_interval=0.0) as slack:
        pause = Paused(alert_id=1)
        report = DeliveryReport()
        stale, _ = _in_thread(
            delivery._deliver_channel,
            engine,
            SlackSink(hook_for(slack), CHANNEL),
            CHANNEL,
            report,
            lambda a: None,
            pause,
        )
        assert pause.reached.wait(20)
        # Alert 1 is in flight (too recent to reconcile): the other deliverer posts 2-4.
        other = deliver_pending(second_engine, SlackSink(hook_for(slack), CHANNEL))
        assert [a.alert_id for a in other.sent] == [2, 3, 4] and other.waiting == [1]
        pause.release.set()
        stale.join(20)
        # The stale deliverer read 2-4 as pending; its claims fail, so it posts only 1.
        assert [a.alert_id for a in report.sent] == [1]
        assert sorted(posted_ids(slack)) == [1, 2, 3, 4]
    assert _statuses(engine) == {"sent": 4}
    with engine.connect() as conn:
        attempts = set(conn.execute(sa.select(alerts.c.attempts)).scalars())
    assert attempts == {1}


def test_racing_deliverers_post_each_alert_once(pg_url: str) -> None:
    """Free-running: two deliverers started together, on PostgreSQL, over two channels."""
    engines = [make_engine(pg_url) for _ in range(2)]
    try:
        from pipeline.storage.db import upgrade

        upgrade(engines[0])
        stories = [Story(f"Requisa {k} en el penal de Yare") for k in range(24)]
        ids = seed(engines[0], stories)
        rows = [repo.ClassificationRow(i, "stub-1", [GANG], {GANG: 0.7}, {GANG: "e"}) for i in ids]
        dests = {i: [Destination(CHANNEL), Destination("#ops")] for i in ids}
        with engines[0].begin() as conn:
            repo.store_classifications(conn, rows, dests)

        def slow(step: str, alert: repo.PendingAlert) -> None:
            if step == "sending":
                time.sleep(0.005)  # keeps both deliverers inside the channel loop together

        with FakeSlack(min_interval=0.0) as slack:
            start = threading.Barrier(2)

            def run(eng: sa.Engine) -> DeliveryReport:
                start.wait(10)
                return deliver_pending(eng, SlackSink(hook_for(slack), CHANNEL), checkpoint=slow)

            threads = [_in_thread(run, eng) for eng in engines]
            for t, _ in threads:
                t.join(60)
            reports = [out[0] for _, out in threads]
            posted = Counter(posted_ids(slack))
        assert all(isinstance(r, DeliveryReport) for r in reports)
        assert sum(len(r.sent) for r in reports) == 48
        assert len(posted) == 48 and set(posted.values()) == {1}
        assert _statuses(engines[0]) == {"sent": 48}
    finally:
        for eng in engines:
            eng.dispose()
