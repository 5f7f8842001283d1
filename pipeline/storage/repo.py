"""Idempotent reads and writes. Every insert is `INSERT … ON CONFLICT` on a unique key, so a
run repeated over the same feeds stores nothing twice and alerts nothing twice."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from pipeline.alerts.routing import Destination
from pipeline.ingest import dedup
from pipeline.ingest.fetch import FetchResult, FetchState
from pipeline.items import Item, Source
from pipeline.storage.schema import alerts, classifications, items, quarantine, sources


def _now() -> datetime:
    return datetime.now(UTC)


def _insert(conn: Connection, table: sa.Table) -> Any:
    if conn.dialect.name == "postgresql":
        return postgresql.insert(table)
    if conn.dialect.name == "sqlite":
        return sqlite.insert(table)
    raise NotImplementedError(f"unsupported database dialect {conn.dialect.name}")


def sync_sources(conn: Connection, srcs: Sequence[Source]) -> dict[str, int]:
    """Upsert the configured sources; return name -> id."""
    for s in srcs:
        values = {
            "name": s.name,
            "kind": s.kind,
            "url": s.url,
            "lang": s.lang,
            "country": s.country,
            "tags": list(s.tags),
        }
        stmt = _insert(conn, sources).values(**values)
        stmt = stmt.on_conflict_do_update(
            index_elements=[sources.c.name],
            set_={k: stmt.excluded[k] for k in ("kind", "url", "lang", "country", "tags")},
        )
        conn.execute(stmt)
    rows = conn.execute(sa.select(sources.c.name, sources.c.id)).all()
    return {name: id_ for name, id_ in rows}


def fetch_states(conn: Connection) -> dict[str, FetchState]:
    rows = conn.execute(sa.select(sources.c.name, sources.c.etag, sources.c.last_modified))
    return {name: FetchState(etag, lm) for name, etag, lm in rows}


def record_fetch(conn: Connection, source_id: int, result: FetchResult) -> None:
    now = _now()
    if result.ok:
        values: dict[str, Any] = {
            "last_fetch_at": now,
            "last_success_at": now,
            "consecutive_failures": 0,
            "last_error": None,
            "etag": result.etag,
            "last_modified": result.last_modified,
        }
    else:
        values = {
            "last_fetch_at": now,
            "consecutive_failures": sources.c.consecutive_failures + 1,
            "last_error": result.error,
        }
    conn.execute(sa.update(sources).where(sources.c.id == source_id).values(**values))


def record_failure(conn: Connection, source_id: int, error: str) -> None:
    conn.execute(
        sa.update(sources)
        .where(sources.c.id == source_id)
        .values(
            last_fetch_at=_now(),
            consecutive_failures=sources.c.consecutive_failures + 1,
            last_error=error,
        )
    )


def cursors(conn: Connection) -> dict[str, str | None]:
    """name -> the paging cursor social connectors stored last run."""
    return {name: cur for name, cur in conn.execute(sa.select(sources.c.name, sources.c.cursor))}


def record_cursor(conn: Connection, source_id: int, cursor: str | None) -> None:
    """A successful social read: store its cursor (in the transaction that stores its items,
    so the cursor never runs ahead of what was stored)."""
    now = _now()
    conn.execute(
        sa.update(sources)
        .where(sources.c.id == source_id)
        .values(
            cursor=cursor,
            last_fetch_at=now,
            last_success_at=now,
            consecutive_failures=0,
            last_error=None,
        )
    )


def insert_items(conn: Connection, source_id: int, batch: Iterable[Item]) -> list[tuple[int, Item]]:
    """Store items not yet in the archive (by canonical URL or by content hash); return the
    new ones with their ids."""
    fresh: dict[str, Item] = {}
    hashes: set[str] = set()
    for it in batch:
        if it.canonical_url in fresh or it.content_hash in hashes:
            continue
        fresh[it.canonical_url] = it
        hashes.add(it.content_hash)
    if not fresh:
        return []
    known = set(
        conn.execute(
            sa.select(items.c.content_hash).where(items.c.content_hash.in_(list(hashes)))
        ).scalars()
    )
    candidates = [it for it in fresh.values() if it.content_hash not in known]
    if not candidates:
        return []
    now = _now()
    rows = [
        {
            "source_id": source_id,
            "url": it.url,
            "canonical_url": it.canonical_url,
            "guid": it.guid,
            "title": it.title,
            "text": it.text,
            "lang": it.lang,
            "published_at": it.published_at,
            "fetched_at": now,
            "content_hash": it.content_hash,
        }
        for it in candidates
    ]
    # executemany (batched into multi-row INSERTs by SQLAlchemy) compiles once per process;
    # a .values(rows) statement was compiled anew for every batch size.
    stmt = (
        _insert(conn, items)
        .on_conflict_do_nothing(index_elements=[items.c.canonical_url])
        .returning(items.c.id, items.c.canonical_url)
    )
    inserted = conn.execute(stmt, rows).all()
    by_url = {it.canonical_url: it for it in candidates}
    out = [(id_, by_url[url]) for id_, url in inserted]
    # Near-duplicates (the same wire story re-edited by another outlet) join one cluster.
    dedup.assign_clusters(conn, out)
    return out


@dataclass(frozen=True)
class ClassificationRow:
    item_id: int
    model_version: str
    labels: list[str]
    scores: dict[str, float]
    evidence: dict[str, str]

    @property
    def is_match(self) -> bool:
        return bool(self.labels)

    @property
    def score(self) -> float:
        return max(self.scores.values()) if self.scores else 0.0


def store_classifications(
    conn: Connection,
    rows: Sequence[ClassificationRow],
    destinations: str | Mapping[int, Sequence[Destination]],
) -> list[int]:
    """Store scores and, in the same transaction, a pending alert for every match and each
    of its destinations: one channel name for all, or the routed destinations per item id.
    Returns the ids of items that matched."""
    if not rows:
        return []
    stmt = (
        _insert(conn, classifications)
        .values(
            [
                {
                    "item_id": r.item_id,
                    "model_version": r.model_version,
                    "labels": r.labels,
                    "scores": r.scores,
                    "evidence": r.evidence,
                    "score": r.score,
                    "is_match": r.is_match,
                }
                for r in rows
            ]
        )
        .on_conflict_do_nothing(index_elements=["item_id", "model_version"])
    )
    conn.execute(stmt)
    matched = [r.item_id for r in rows if r.is_match]
    alert_rows: list[dict[str, Any]] = []
    for item_id in matched:
        dests = (
            [Destination(destinations)]
            if isinstance(destinations, str)
            else destinations.get(item_id, ())
        )
        alert_rows += [
            {"item_id": item_id, "channel": d.channel, "status": "pending", "severity": d.severity}
            for d in dests
        ]
    if alert_rows:
        conn.execute(
            _insert(conn, alerts)
            .values(alert_rows)
            .on_conflict_do_nothing(index_elements=["item_id", "channel"])
        )
    return matched


@dataclass(frozen=True)
class PendingAlert:
    alert_id: int
    item_id: int
    channel: str
    source: str
    country: str | None
    url: str
    title: str
    text: str
    lang: str | None
    published_at: datetime | None
    labels: list[str]
    scores: dict[str, float]
    evidence: dict[str, str]
    model_version: str
    severity: str = "normal"
    status: str = "pending"  # pending | sending (maybe posted: reconcile first)
    kind: str = "alert"  # alert | reply
    cluster_id: int | None = None
    parent_alert_id: int | None = None
    thread_ts: str | None = None
    attempts: int = 0
    first_attempt_at: datetime | None = None
    last_attempt_at: datetime | None = None


def latest_classification_id() -> Any:
    """Correlated scalar subquery: the id of the newest classification of `items.c.id`
    (after a retrain an item has one row per model version)."""
    c2 = classifications.alias("c2")
    return (
        sa.select(sa.func.max(c2.c.id))
        .where(c2.c.item_id == items.c.id)
        .correlate(items)
        .scalar_subquery()
    )


def _aware(value: datetime | None) -> datetime | None:
    # SQLite hands back naive datetimes; everything stored is UTC.
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


def pending_alerts(
    conn: Connection, channel: str | None = None, limit: int = 500
) -> list[PendingAlert]:
    """Alerts not yet known to be delivered (pending, or sending: maybe posted), oldest
    first; for one channel or all."""
    q = (
        sa.select(
            alerts.c.id,
            items.c.id,
            alerts.c.channel,
            sources.c.name,
            sources.c.country,
            items.c.url,
            items.c.title,
            items.c.text,
            items.c.lang,
            items.c.published_at,
            classifications.c.labels,
            classifications.c.scores,
            classifications.c.evidence,
            classifications.c.model_version,
            alerts.c.severity,
            alerts.c.status,
            alerts.c.kind,
            items.c.cluster_id,
            alerts.c.parent_alert_id,
            alerts.c.thread_ts,
            alerts.c.attempts,
            alerts.c.first_attempt_at,
            alerts.c.last_attempt_at,
        )
        .select_from(
            alerts.join(items, items.c.id == alerts.c.item_id)
            .join(sources, sources.c.id == items.c.source_id)
            .join(classifications, classifications.c.item_id == items.c.id)
        )
        .where(alerts.c.status.in_(["pending", "sending"]))
        .where(classifications.c.id == latest_classification_id())
        .order_by(alerts.c.id)
        .limit(limit)
    )
    if channel is not None:
        q = q.where(alerts.c.channel == channel)
    return [
        PendingAlert(
            alert_id=r[0],
            item_id=r[1],
            channel=r[2],
            source=r[3],
            country=r[4],
            url=r[5],
            title=r[6],
            text=r[7],
            lang=r[8],
            published_at=_aware(r[9]),
            labels=list(r[10] or []),
            scores=dict(r[11] or {}),
            evidence=dict(r[12] or {}),
            model_version=r[13],
            severity=r[14],
            status=r[15],
            kind=r[16],
            cluster_id=r[17],
            parent_alert_id=r[18],
            thread_ts=r[19],
            attempts=r[20],
            first_attempt_at=_aware(r[21]),
            last_attempt_at=_aware(r[22]),
        )
        for r in conn.execute(q)
    ]


def pending_channels(conn: Connection) -> list[str]:
    """Channels with alerts still to deliver."""
    q = (
        sa.select(alerts.c.channel)
        .where(alerts.c.status.in_(["pending", "sending"]))
        .group_by(alerts.c.channel)
        .order_by(sa.func.min(alerts.c.id))
    )
    return list(conn.execute(q).scalars())


@dataclass(frozen=True)
class ThreadRoot:
    alert_id: int
    status: str
    slack_ts: str | None


def cluster_root(conn: Connection, channel: str, cluster_id: int) -> ThreadRoot | None:
    """The top-level alert of a story cluster in a channel: its first alert not given up on."""
    q = (
        sa.select(alerts.c.id, alerts.c.status, alerts.c.slack_ts)
        .select_from(alerts.join(items, items.c.id == alerts.c.item_id))
        .where(items.c.cluster_id == cluster_id, alerts.c.channel == channel)
        .where(alerts.c.kind == "alert", alerts.c.status != "failed")
        .order_by(alerts.c.id)
        .limit(1)
    )
    row = conn.execute(q).first()
    return ThreadRoot(row[0], row[1], row[2]) if row else None


def mark_alert_sending(
    conn: Connection,
    alert_id: int,
    kind: str = "alert",
    parent_alert_id: int | None = None,
    thread_ts: str | None = None,
    expect: tuple[str, int] | None = None,
) -> bool:
    """Committed before the post: from here on the alert may be in Slack, so a later run
    looks for it in the channel's history before posting it again.

    With `expect` (the status and attempt count the alert was read with) this is a claim:
    it only moves an alert nobody else has moved since, and returns False when another
    deliverer got there first — a single UPDATE, so two claims never both succeed."""
    now = _now()
    q = sa.update(alerts).where(alerts.c.id == alert_id)
    if expect is not None:
        q = q.where(alerts.c.status == expect[0], alerts.c.attempts == expect[1])
    result = conn.execute(
        q.values(
            status="sending",
            attempts=alerts.c.attempts + 1,
            first_attempt_at=sa.func.coalesce(alerts.c.first_attempt_at, now),
            last_attempt_at=now,
            kind=kind,
            parent_alert_id=parent_alert_id,
            thread_ts=thread_ts,
        )
    )
    return result.rowcount == 1


def mark_alert_sent(conn: Connection, alert_id: int, ts: str | None) -> None:
    conn.execute(
        sa.update(alerts)
        .where(alerts.c.id == alert_id)
        .values(status="sent", slack_ts=ts, sent_at=_now(), last_error=None)
    )


def mark_alert_failed(conn: Connection, alert_id: int, error: str, permanent: bool) -> None:
    """Slack answered and did not post: 'failed' if it never will, else back to pending."""
    conn.execute(
        sa.update(alerts)
        .where(alerts.c.id == alert_id)
        .values(status="failed" if permanent else "pending", last_error=error[:2000])
    )


def note_alert_error(conn: Connection, alert_id: int, error: str) -> None:
    """The outcome is unknown (timeout, lost connection): keep 'sending', note why."""
    conn.execute(sa.update(alerts).where(alerts.c.id == alert_id).values(last_error=error[:2000]))


def quarantine_payload(
    conn: Connection, source_name: str, url: str | None, reason: str, excerpt: bytes | None
) -> None:
    text = excerpt[:2000].decode("utf-8", "replace").replace("\x00", "") if excerpt else None
    conn.execute(
        sa.insert(quarantine).values(
            source_name=source_name, url=url, reason=reason[:2000], excerpt=text
        )
    )


def backed_off_sources(
    conn: Connection, after: int, base_s: float, max_s: float, now: datetime | None = None
) -> dict[str, datetime]:
    """Recompute `sources.next_fetch_after` and return name -> that time for each source that
    must not be fetched yet. A source with `after` or more consecutive failures waits
    `base_s` after its last attempt, doubling with each further failure, at most `max_s`:
    a dead feed is not hammered every run, and is still retried."""
    now = now or _now()
    conn.execute(
        sa.update(sources)
        .where(sources.c.consecutive_failures < after, sources.c.next_fetch_after.is_not(None))
        .values(next_fetch_after=None)
    )
    rows = conn.execute(
        sa.select(
            sources.c.id, sources.c.name, sources.c.consecutive_failures, sources.c.last_fetch_at
        ).where(sources.c.consecutive_failures >= after, sources.c.last_fetch_at.is_not(None))
    ).all()
    held: dict[str, datetime] = {}
    for id_, name, failures, last in rows:
        last = last if last.tzinfo else last.replace(tzinfo=UTC)
        delay = min(max_s, base_s * 2.0 ** min(int(failures) - after, 40))
        until = last + timedelta(seconds=delay)
        conn.execute(sa.update(sources).where(sources.c.id == id_).values(next_fetch_after=until))
        if until > now:
            held[str(name)] = until
    return held
