"""One pass of the pipeline: fetch → parse → store → classify → alert.

Each stage is a function over the archive so the CLI runs them in a row and the Airflow DAG
runs them as separate tasks. Items are stored before they are classified and alerts are
recorded as pending before they are sent, so a crash at any point loses nothing: the next
run picks up unclassified items and pending alerts.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from pipeline.alerts.sinks import AlertSink
from pipeline.alerts.slack_hook import SlackConfigError, SlackMessageError
from pipeline.classify.base import Classifier, Document
from pipeline.config import Settings
from pipeline.errors import FeedParseError, PermanentError, SentinelaError
from pipeline.ingest.fetch import fetch_all
from pipeline.ingest.parse import parse_feed
from pipeline.items import Source, SourceReport
from pipeline.storage import repo
from pipeline.storage.schema import classifications, items, sources

log = logging.getLogger(__name__)
CLASSIFY_BATCH = 256


@dataclass
class RunSummary:
    reports: dict[str, SourceReport] = field(default_factory=dict)
    alert_errors: list[str] = field(default_factory=list)

    def report(self, source: str) -> SourceReport:
        return self.reports.setdefault(source, SourceReport(source))

    @property
    def totals(self) -> SourceReport:
        t = SourceReport("TOTAL")
        for r in self.reports.values():
            t.fetched += r.fetched
            t.new += r.new
            t.matched += r.matched
            t.alerted += r.alerted
            t.errors.extend(r.errors)
        return t


def ingest(
    engine: Engine, settings: Settings, srcs: Sequence[Source], summary: RunSummary
) -> list[int]:
    """Fetch and store every source; return the ids of new items. One source's failure is
    recorded against it and never stops the others."""
    with engine.begin() as conn:
        ids = repo.sync_sources(conn, srcs)
        states = repo.fetch_states(conn)
    results = fetch_all(srcs, states, settings)
    by_name = {s.name: s for s in srcs}
    new_ids: list[int] = []
    for result in results:
        src = by_name[result.source]
        rep = summary.report(src.name)
        rep.not_modified = result.not_modified
        if not result.ok:
            rep.errors.append(result.error or "unknown error")
            with engine.begin() as conn:
                repo.record_fetch(conn, ids[src.name], result)
            continue
        if result.not_modified or result.body is None:
            with engine.begin() as conn:
                repo.record_fetch(conn, ids[src.name], result)
            continue
        try:
            parsed = parse_feed(result.body, src, result.content_type)
        except FeedParseError as exc:
            rep.errors.append(str(exc))
            with engine.begin() as conn:
                repo.quarantine_payload(conn, src.name, result.url, str(exc), result.body)
                repo.record_failure(conn, ids[src.name], str(exc))
            continue
        rep.fetched = len(parsed.items)
        if parsed.skipped:
            rep.errors.append(f"{len(parsed.skipped)} unusable entries ({parsed.skipped[0]})")
        # Items and the new validators commit together: if the insert fails, the next run
        # fetches the same items again instead of getting a 304 and losing them.
        with engine.begin() as conn:
            inserted = repo.insert_items(conn, ids[src.name], parsed.items)
            repo.record_fetch(conn, ids[src.name], result)
        rep.new = len(inserted)
        new_ids.extend(i for i, _ in inserted)
    return new_ids


def classify_unclassified(
    engine: Engine,
    classifier: Classifier,
    destination: str,
    summary: RunSummary | None = None,
    item_ids: Sequence[int] | None = None,
) -> list[int]:
    """Classify items that have no score from this model version yet (all of them, or only
    `item_ids`), store the scores and pending alerts. Returns matched item ids."""
    matched_all: list[int] = []
    last_id = 0
    while True:
        done = (
            sa.select(classifications.c.id)
            .where(classifications.c.item_id == items.c.id)
            .where(classifications.c.model_version == classifier.model_version)
        )
        q = (
            sa.select(items.c.id, items.c.title, items.c.text, items.c.lang, sources.c.name)
            .join(sources, sources.c.id == items.c.source_id)
            .where(~done.exists(), items.c.id > last_id)
            .order_by(items.c.id)
            .limit(CLASSIFY_BATCH)
        )
        if item_ids is not None:
            q = q.where(items.c.id.in_(list(item_ids)))
        with engine.connect() as conn:
            rows = conn.execute(q).all()
        if not rows:
            break
        last_id = rows[-1][0]
        docs = [Document(str(r[0]), r[1], r[2], r[3]) for r in rows]
        preds = classifier.predict(docs)
        out = [
            repo.ClassificationRow(
                item_id=int(r[0]),
                model_version=p.model_version,
                labels=p.labels,
                scores=p.scores,
                evidence=p.evidence,
            )
            for r, p in zip(rows, preds, strict=True)
        ]
        with engine.begin() as conn:
            matched = repo.store_classifications(conn, out, destination)
        matched_set = set(matched)
        if summary is not None:
            for r in rows:
                if r[0] in matched_set:
                    summary.report(r[4]).matched += 1
        matched_all.extend(matched)
    return matched_all


def deliver(
    engine: Engine,
    sink: AlertSink,
    summary: RunSummary | None = None,
    on_sent: Callable[[repo.PendingAlert], None] | None = None,
) -> int:
    """Send every pending alert for the sink's destination. A Slack outage leaves the rest
    pending for the next run; a message Slack will never accept is marked failed."""
    sent = 0
    with engine.connect() as conn:
        pending = repo.pending_alerts(conn, sink.destination)
    for alert in pending:
        try:
            ts = sink.send(alert)
        except SlackConfigError as exc:
            _fail(engine, alert, str(exc), permanent=False, summary=summary)
            break
        except SlackMessageError as exc:
            _fail(engine, alert, str(exc), permanent=True, summary=summary)
            continue
        except SentinelaError as exc:
            _fail(
                engine, alert, str(exc), permanent=isinstance(exc, PermanentError), summary=summary
            )
            break
        with engine.begin() as conn:
            repo.mark_alert_sent(conn, alert.alert_id, ts)
        sent += 1
        if summary is not None:
            summary.report(alert.source).alerted += 1
        if on_sent is not None:
            on_sent(alert)
    return sent


def _fail(
    engine: Engine,
    alert: repo.PendingAlert,
    error: str,
    permanent: bool,
    summary: RunSummary | None,
) -> None:
    log.warning("alert %s not delivered: %s", alert.alert_id, error)
    with engine.begin() as conn:
        repo.mark_alert_failed(conn, alert.alert_id, error, permanent=permanent)
    if summary is not None:
        summary.alert_errors.append(f"alert {alert.alert_id}: {error}")


def run_once(
    engine: Engine,
    settings: Settings,
    srcs: Sequence[Source],
    classifier: Classifier,
    sink: AlertSink,
) -> RunSummary:
    summary = RunSummary()
    for s in srcs:
        summary.report(s.name)
    ingest(engine, settings, srcs, summary)
    classify_unclassified(engine, classifier, sink.destination, summary)
    deliver(engine, sink, summary)
    return summary


def format_summary(summary: RunSummary) -> str:
    headers = ("source", "fetched", "new", "matched", "alerted", "errors")
    rows = []
    for r in [*summary.reports.values(), summary.totals]:
        err = "; ".join(r.errors)
        if r.not_modified and not err:
            err = "(not modified)"
        rows.append(
            (
                r.source,
                str(r.fetched),
                str(r.new),
                str(r.matched),
                str(r.alerted),
                str(len(r.errors)) + (f"  {err[:90]}" if err and r.source != "TOTAL" else ""),
            )
        )
    widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(headers[:-1])]

    def line(cols: Sequence[str]) -> str:
        left = "  ".join(
            c.ljust(w) if i == 0 else c.rjust(w)
            for i, (c, w) in enumerate(zip(cols[:-1], widths, strict=True))
        )
        return f"{left}  {cols[-1]}"

    sep = "-" * (sum(widths) + 2 * len(widths) + 6)
    out = [line(headers), sep]
    out += [line(r) for r in rows[:-1]]
    out += [sep, line(rows[-1])]
    if summary.alert_errors:
        first = summary.alert_errors[0]
        out.append(f"alert delivery problems: {len(summary.alert_errors)} (first: {first})")
    return "\n".join(out)
