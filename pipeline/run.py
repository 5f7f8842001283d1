"""One pass of the pipeline: fetch → parse → store → classify → alert.

Each stage is a function over the archive so the CLI runs them in a row and the Airflow DAG
runs them as separate tasks. Items are stored before they are classified and alerts are
recorded as pending before they are sent, so a crash at any point loses nothing: the next
run picks up unclassified items and pending alerts.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from pipeline.alerts.delivery import Checkpoint, deliver_pending
from pipeline.alerts.entities import extract
from pipeline.alerts.routing import Match, Router, load_routing
from pipeline.alerts.sinks import CONSOLE, AlertSink
from pipeline.classify.base import Classifier, Document
from pipeline.config import Settings
from pipeline.ingest import fulltext
from pipeline.ingest.fetch import FetchResult, fetch_all
from pipeline.ingest.parse_pool import ParseJob, ParseOutcome, parse_all
from pipeline.ingest.social.runner import SocialOutcome, collect, is_social
from pipeline.items import Item, Source, SourceReport
from pipeline.sources import IMPORT_KIND
from pipeline.storage import repo
from pipeline.storage.schema import classifications, items, sources

log = logging.getLogger(__name__)
CLASSIFY_BATCH = 256
# Feeds stored per write transaction (each in its own savepoint). Bounded so that another
# writer (a classify task on SQLite) never waits long for the archive.
COMMIT_EVERY_SOURCES = 50


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
        cursors = repo.cursors(conn)
        held = repo.backed_off_sources(
            conn, settings.backoff_after, settings.backoff_base_s, settings.backoff_max_s
        )
    for name, until in held.items():
        if all(s.name != name for s in srcs):
            continue  # a source no longer configured
        summary.report(name).errors.append(
            f"backing off after repeated failures; next fetch after {until:%Y-%m-%d %H:%M} UTC"
        )
    srcs = [s for s in srcs if s.name not in held]
    social = [s for s in srcs if is_social(s.kind)]
    feeds = [s for s in srcs if not is_social(s.kind)]
    # Social platforms are read in their own event loop on a second thread, alongside feeds.
    with ThreadPoolExecutor(max_workers=1) as pool:
        social_future = pool.submit(collect, social, cursors, settings) if social else None
        results = fetch_all(feeds, states, settings)
        outcomes = social_future.result() if social_future else []
    by_name = {s.name: s for s in srcs}
    to_parse = [r for r in results if r.ok and not r.not_modified and r.body is not None]
    outcomes_by_source = parse_all(
        [ParseJob(r.body or b"", by_name[r.source], r.content_type) for r in to_parse],
        settings.parse_workers,
    )
    parsing = {id(r) for r in to_parse}
    new_ids: list[int] = []
    group: list[_FeedWrite] = []
    for result in results:
        parsed = next(outcomes_by_source) if id(result) in parsing else None
        group.append(_prepare(engine, settings, by_name[result.source], result, summary, parsed))
        if len(group) >= COMMIT_EVERY_SOURCES:
            new_ids.extend(_write_group(engine, ids, group, summary))
            group = []
    new_ids.extend(_write_group(engine, ids, group, summary))
    new_ids.extend(_store_social(engine, ids, outcomes, summary))
    with engine.begin() as conn:  # so `sources check` shows this run's back-off
        repo.backed_off_sources(
            conn, settings.backoff_after, settings.backoff_base_s, settings.backoff_max_s
        )
    return new_ids


@dataclass
class _FeedWrite:
    """What one fetched feed leaves to store: items (with the validators that go with them),
    only the fetch outcome, or a payload to quarantine."""

    src: Source
    result: FetchResult
    items: list[Item] | None = None
    parse_error: str | None = None


def _prepare(
    engine: Engine,
    settings: Settings,
    src: Source,
    result: FetchResult,
    summary: RunSummary,
    outcome: ParseOutcome | None,
) -> _FeedWrite:
    """Turn a fetch and its parse into what to store; parsing and full-text enrichment
    happen outside any write transaction, so the archive is locked only while rows are
    written."""
    rep = summary.report(src.name)
    rep.not_modified = result.not_modified
    if not result.ok:
        rep.errors.append(result.error or "unknown error")
        return _FeedWrite(src, result)
    if outcome is None:
        return _FeedWrite(src, result)
    if outcome.parsed is None:
        error = outcome.error or "unparseable feed"
        rep.errors.append(error)
        return _FeedWrite(src, result, parse_error=error)
    parsed = outcome.parsed
    rep.fetched = len(parsed.items)
    if parsed.skipped:
        rep.errors.append(f"{len(parsed.skipped)} unusable entries ({parsed.skipped[0]})")
    # Teaser-only feeds (`fulltext: true`): new items get their article's text.
    return _FeedWrite(src, result, items=fulltext.enrich(engine, settings, src, parsed.items))


@contextmanager
def _write_transaction(engine: Engine) -> Iterator[Connection]:
    with engine.begin() as conn:
        if conn.dialect.name == "sqlite" and not conn.connection.dbapi_connection.in_transaction:  # type: ignore[union-attr]
            # pysqlite opens its transaction lazily, at the first write, and SAVEPOINT does
            # not count as one: a transaction opened by SAVEPOINT would be committed by its
            # RELEASE (SQLAlchemy docs, "Serializable isolation / Savepoints / Transactional
            # DDL" for pysqlite). Open it first.
            conn.exec_driver_sql("BEGIN")
        yield conn


def _write_group(
    engine: Engine, ids: dict[str, int], group: Sequence[_FeedWrite], summary: RunSummary
) -> list[int]:
    """Store a group of feeds in one transaction, each feed in a savepoint of its own: one
    commit per group instead of one per feed (on SQLite each commit rewrote the pages of
    the bucket index it touched, and that dominated ingest), while a feed whose rows the
    database refuses rolls back alone, is recorded as failed and keeps its old validators,
    so the next run fetches it again. A crash before the commit loses no item either: the
    group's validators were not stored, so its feeds are fetched again in full."""
    new_ids: list[int] = []
    if not group:
        return new_ids
    with _write_transaction(engine) as conn:
        for w in group:
            source_id = ids[w.src.name]
            if w.parse_error is not None:
                repo.quarantine_payload(
                    conn, w.src.name, w.result.url, w.parse_error, w.result.body
                )
                repo.record_failure(conn, source_id, w.parse_error)
                continue
            if w.items is None:
                repo.record_fetch(conn, source_id, w.result)
                continue
            rep = summary.report(w.src.name)
            try:
                # Items and the new validators commit together: if the insert fails, the
                # next run fetches the same items again instead of getting a 304.
                with conn.begin_nested():
                    inserted = repo.insert_items(conn, source_id, w.items)
                    repo.record_fetch(conn, source_id, w.result)
            except (sa.exc.DataError, sa.exc.IntegrityError) as exc:
                error = f"could not store items: {exc.orig or exc}"[:2000]
                rep.errors.append(error)
                repo.record_failure(conn, source_id, error)
                continue
            rep.new = len(inserted)
            new_ids.extend(i for i, _ in inserted)
    return new_ids


def _store_social(
    engine: Engine, ids: dict[str, int], outcomes: Sequence[SocialOutcome], summary: RunSummary
) -> list[int]:
    new_ids: list[int] = []
    for out in outcomes:
        rep = summary.report(out.source)
        source_id = ids[out.source]
        if out.result is None:
            error = out.error or "unknown error"
            rep.errors.append(error)
            with engine.begin() as conn:
                if out.bad_excerpt is not None:
                    repo.quarantine_payload(conn, out.source, out.bad_url, error, out.bad_excerpt)
                repo.record_failure(conn, source_id, error)
            continue
        result = out.result
        if result.skipped:
            rep.skipped = result.skipped
            continue
        for note in result.notes:
            log.info("%s: %s", out.source, note)
        if result.interrupted:
            rep.errors.append(result.interrupted)
        rep.fetched = len(result.items)
        # Items and cursor commit together: the cursor never moves past unstored posts.
        with engine.begin() as conn:
            inserted = repo.insert_items(conn, source_id, result.items)
            repo.record_cursor(conn, source_id, result.cursor)
        rep.new = len(inserted)
        new_ids.extend(i for i, _ in inserted)
    return new_ids


def make_router(settings: Settings, sink: AlertSink) -> Router:
    """Routing rules from $SENTINELA_ROUTING for Slack; the console takes everything."""
    if sink.destination == CONSOLE:
        return Router.single(sink.destination)
    return load_routing(settings.routing_file, sink.destination)


def _match(
    row: repo.ClassificationRow, title: str, text: str, lang: str | None, country: str | None
) -> Match:
    # Countries: those of prisons and gangs named in the story, else the source's own.
    countries = extract(f"{title}\n{text}", country).countries or ((country,) if country else ())
    return Match(labels=row.labels, scores=row.scores, lang=lang, countries=countries)


def classify_unclassified(
    engine: Engine,
    classifier: Classifier,
    destination: str | Router,
    summary: RunSummary | None = None,
    item_ids: Sequence[int] | None = None,
) -> list[int]:
    """Classify items that have no score from this model version yet (all of them, or only
    `item_ids`), store the scores and a pending alert per routed channel (`destination`: one
    channel for everything, or the routing rules). Returns matched item ids."""
    router = Router.single(destination) if isinstance(destination, str) else destination
    matched_all: list[int] = []
    last_id = 0
    while True:
        done = (
            sa.select(classifications.c.id)
            .where(classifications.c.item_id == items.c.id)
            .where(classifications.c.model_version == classifier.model_version)
        )
        q = (
            sa.select(
                items.c.id,
                items.c.title,
                items.c.text,
                items.c.lang,
                sources.c.name,
                sources.c.country,
                sources.c.kind,
            )
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
        # Imported history (`sentinela archive import`) is scored and archived as matches but
        # never alerted: a year of backfill must not flood the channels with old stories.
        routes = {
            row.item_id: router.destinations(_match(row, r[1], r[2], r[3], r[5]))
            for r, row in zip(rows, out, strict=True)
            if row.is_match and r[6] != IMPORT_KIND
        }
        with engine.begin() as conn:
            matched = repo.store_classifications(conn, out, routes)
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
    checkpoint: Checkpoint | None = None,
) -> int:
    """Send every pending alert of the channels the sink handles, exactly once (see
    pipeline/alerts/delivery.py). A Slack outage leaves the rest pending for the next run; a
    message Slack will never accept is marked failed."""
    report = deliver_pending(engine, sink, on_sent=on_sent, checkpoint=checkpoint)
    if summary is not None:
        for alert in report.sent + report.reconciled:
            summary.report(alert.source).alerted += 1
        for failed, error in report.errors:
            summary.alert_errors.append(
                f"alert {failed.alert_id}: {error}" if failed is not None else error
            )
        for channel in report.busy:
            summary.alert_errors.append(
                f"{channel}: busy, another run is delivering its alerts (left to that run)"
            )
    return len(report.sent) + len(report.reconciled)


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
    classify_unclassified(engine, classifier, make_router(settings, sink), summary)
    deliver(engine, sink, summary)
    return summary


def format_summary(summary: RunSummary) -> str:
    headers = ("source", "fetched", "new", "matched", "alerted", "errors")
    rows = []
    for r in [*summary.reports.values(), summary.totals]:
        err = "; ".join(r.errors)
        if r.not_modified and not err:
            err = "(not modified)"
        if r.skipped and not err:
            err = f"(skipped: {r.skipped})"
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
