"""Deliver pending alerts exactly once, whatever crashes or retries happen on the way.

Each alert goes pending → sending (committed before the post) → sent (with Slack's `ts`).
An alert found in 'sending' may or may not be in Slack (the process died after posting, or
the request timed out after Slack had acted on it), so before posting it again the channel's
history is read — every message carries {event_type: sentinela_alert, alert_id, item_id} in
its metadata — and alerts found there are marked sent with the ts they already have.
When Slack answers that it did not post (429 after retries, 5xx, a refused channel), the
alert goes back to 'pending' and is simply posted later.

One story, one alert: the first alert of a story cluster (items.cluster_id; NULL is a
cluster of one) in a channel is posted top-level; later ones become replies in its thread.

Two deliverers at once (an Airflow retry, a CLI run during a DAG run) never post the same
alert: each channel is delivered by one of them at a time (pipeline/alerts/channel_lock.py;
the other reports it busy), and each alert is claimed by an UPDATE that only succeeds from
the state it was read in.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from sqlalchemy.engine import Engine

from pipeline.alerts.channel_lock import channel_lock
from pipeline.alerts.sinks import AlertSink
from pipeline.alerts.slack_hook import (
    SlackChannelError,
    SlackConfigError,
    SlackMessageError,
    SlackOutcomeUnknownError,
)
from pipeline.errors import PermanentError, SentinelaError
from pipeline.storage import repo
from pipeline.storage.repo import PendingAlert

log = logging.getLogger(__name__)
# Slack's clock and ours may disagree: read history from a little before the first attempt.
HISTORY_MARGIN_S = 300.0
# Called after each durable step ("sending", "posted", "sent"): tests crash the sender here.
Checkpoint = Callable[[str, PendingAlert], None]


@dataclass
class DeliveryReport:
    sent: list[PendingAlert] = field(default_factory=list)
    reconciled: list[PendingAlert] = field(default_factory=list)  # found already posted
    waiting: list[int] = field(default_factory=list)  # alert ids left for a later run
    errors: list[tuple[PendingAlert | None, str]] = field(default_factory=list)
    busy: list[str] = field(default_factory=list)  # channels another deliverer was sending


def _noop(step: str, alert: PendingAlert) -> None:
    return None


def deliver_pending(
    engine: Engine,
    sink: AlertSink,
    on_sent: Callable[[PendingAlert], None] | None = None,
    checkpoint: Checkpoint | None = None,
) -> DeliveryReport:
    """Deliver every pending alert of every channel this sink handles."""
    report = DeliveryReport()
    with engine.connect() as conn:
        channels = [c for c in repo.pending_channels(conn) if sink.handles(c)]
    for channel in channels:
        with channel_lock(engine, channel) as mine:
            if not mine:
                # Its alerts are the other deliverer's; it reports them, we report the skip.
                log.info("channel %s is being delivered by another run; skipped", channel)
                report.busy.append(channel)
                continue
            stop_all = _deliver_channel(
                engine, sink, channel, report, on_sent or (lambda a: None), checkpoint or _noop
            )
        if stop_all:
            break
    return report


def _reconcile(
    engine: Engine, sink: AlertSink, channel: str, queue: list[PendingAlert], report: DeliveryReport
) -> tuple[list[PendingAlert], bool]:
    """Settle alerts left in 'sending'; return what still needs posting and whether to stop
    every channel (the token is bad)."""
    now = time.time()
    maybe = [a for a in queue if a.status == "sending"]
    if not maybe:
        return queue, False
    unsettled = {
        a.alert_id
        for a in maybe
        if a.last_attempt_at is not None and a.last_attempt_at.timestamp() > now - sink.settle_s
    }
    settled = [a for a in maybe if a.alert_id not in unsettled]
    skip = set(unsettled)
    report.waiting.extend(sorted(unsettled))
    if settled:
        starts = [(a.first_attempt_at or a.last_attempt_at) for a in settled]
        oldest = min(s.timestamp() for s in starts if s is not None) if any(starts) else 0.0
        threads = {a.thread_ts for a in settled if a.thread_ts}
        try:
            found = sink.posted(channel, max(0.0, oldest - HISTORY_MARGIN_S), threads)
        except SlackConfigError as exc:
            report.errors.append((None, f"{channel}: {exc}"))
            return [], not isinstance(exc, SlackChannelError)
        except SentinelaError as exc:
            # Cannot tell what is in the channel: posting again could duplicate. Wait.
            report.errors.append((None, f"{channel}: history unavailable: {exc}"))
            skip |= {a.alert_id for a in settled}
            report.waiting.extend(a.alert_id for a in settled)
            found = {}
        for a in settled:
            hit = (found or {}).get(a.alert_id)
            if hit is not None and hit[0] == a.item_id:
                with engine.begin() as conn:
                    repo.mark_alert_sent(conn, a.alert_id, hit[1])
                report.reconciled.append(a)
                skip.add(a.alert_id)
    return [a for a in queue if a.alert_id not in skip], False


def _place_in_thread(engine: Engine, alert: PendingAlert) -> PendingAlert | None:
    """Top-level, or a reply under its story's first alert; None while that one is not
    posted yet."""
    if alert.status == "sending" and alert.kind == "reply" and alert.thread_ts:
        return alert  # keep the thread chosen at the first attempt
    if alert.cluster_id is None:
        return replace(alert, kind="alert", parent_alert_id=None, thread_ts=None)
    with engine.connect() as conn:
        root = repo.cluster_root(conn, alert.channel, alert.cluster_id)
    if root is None or root.alert_id == alert.alert_id:
        return replace(alert, kind="alert", parent_alert_id=None, thread_ts=None)
    if root.status != "sent" or not root.slack_ts:
        return None
    return replace(alert, kind="reply", parent_alert_id=root.alert_id, thread_ts=root.slack_ts)


def _deliver_channel(
    engine: Engine,
    sink: AlertSink,
    channel: str,
    report: DeliveryReport,
    on_sent: Callable[[PendingAlert], None],
    checkpoint: Checkpoint,
) -> bool:
    """Deliver one channel's alerts in order; return True to stop every channel."""
    with engine.connect() as conn:
        queue = repo.pending_alerts(conn, channel)
    queue, stop_all = _reconcile(engine, sink, channel, queue, report)
    if stop_all:
        return True
    for original in queue:
        alert = _place_in_thread(engine, original)
        if alert is None:
            report.waiting.append(original.alert_id)
            continue
        with engine.begin() as conn:
            claimed = repo.mark_alert_sending(
                conn,
                alert.alert_id,
                alert.kind,
                alert.parent_alert_id,
                alert.thread_ts,
                expect=(original.status, original.attempts),
            )
        if not claimed:
            log.info("alert %s was taken by another deliverer; skipped", alert.alert_id)
            continue
        checkpoint("sending", alert)
        try:
            ts = sink.send(alert)
        except SlackOutcomeUnknownError as exc:
            # Maybe posted: stays 'sending'; the next run looks in the channel first.
            _note(engine, report, alert, str(exc))
            return False
        except SlackChannelError as exc:
            _fail(engine, report, alert, str(exc), permanent=False)
            return False
        except SlackConfigError as exc:
            _fail(engine, report, alert, str(exc), permanent=False)
            return True
        except SlackMessageError as exc:
            _fail(engine, report, alert, str(exc), permanent=True)
            continue
        except SentinelaError as exc:
            permanent = isinstance(exc, PermanentError)
            _fail(engine, report, alert, str(exc), permanent=permanent)
            if permanent:
                continue
            return True  # Slack is struggling: leave the rest for the next run
        checkpoint("posted", alert)
        with engine.begin() as conn:
            repo.mark_alert_sent(conn, alert.alert_id, ts)
        checkpoint("sent", alert)
        report.sent.append(alert)
        on_sent(alert)
    return False


def _fail(
    engine: Engine, report: DeliveryReport, alert: PendingAlert, error: str, permanent: bool
) -> None:
    log.warning("alert %s not delivered: %s", alert.alert_id, error)
    with engine.begin() as conn:
        repo.mark_alert_failed(conn, alert.alert_id, error, permanent=permanent)
    report.errors.append((alert, error))


def _note(engine: Engine, report: DeliveryReport, alert: PendingAlert, error: str) -> None:
    log.warning("alert %s may not have been delivered: %s", alert.alert_id, error)
    with engine.begin() as conn:
        repo.note_alert_error(conn, alert.alert_id, error)
    report.errors.append((alert, error))
