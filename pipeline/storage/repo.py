"""Idempotent reads and writes. Every insert is `INSERT … ON CONFLICT` on a unique key, so a
run repeated over the same feeds stores nothing twice and alerts nothing twice."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

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
    stmt = (
        _insert(conn, items)
        .values(rows)
        .on_conflict_do_nothing(index_elements=[items.c.canonical_url])
        .returning(items.c.id, items.c.canonical_url)
    )
    inserted = conn.execute(stmt).all()
    by_url = {it.canonical_url: it for it in candidates}
    return [(id_, by_url[url]) for id_, url in inserted]


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
    conn: Connection, rows: Sequence[ClassificationRow], channel: str
) -> list[int]:
    """Store scores and, in the same transaction, a pending alert for every match.
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
    if matched:
        alert_rows = [{"item_id": i, "channel": channel, "status": "pending"} for i in matched]
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


def pending_alerts(conn: Connection, channel: str, limit: int = 500) -> list[PendingAlert]:
    c2 = classifications.alias("c2")
    latest = (
        sa.select(sa.func.max(c2.c.id))
        .where(c2.c.item_id == items.c.id)
        .correlate(items)
        .scalar_subquery()
    )
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
        )
        .select_from(
            alerts.join(items, items.c.id == alerts.c.item_id)
            .join(sources, sources.c.id == items.c.source_id)
            .join(classifications, classifications.c.item_id == items.c.id)
        )
        .where(alerts.c.status == "pending", alerts.c.channel == channel)
        .where(classifications.c.id == latest)
        .order_by(alerts.c.id)
        .limit(limit)
    )
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
            published_at=r[9],
            labels=list(r[10] or []),
            scores=dict(r[11] or {}),
            evidence=dict(r[12] or {}),
            model_version=r[13],
        )
        for r in conn.execute(q)
    ]


def mark_alert_sent(conn: Connection, alert_id: int, ts: str | None) -> None:
    conn.execute(
        sa.update(alerts)
        .where(alerts.c.id == alert_id)
        .values(
            status="sent",
            slack_ts=ts,
            sent_at=_now(),
            attempts=alerts.c.attempts + 1,
            last_error=None,
        )
    )


def mark_alert_failed(conn: Connection, alert_id: int, error: str, permanent: bool) -> None:
    conn.execute(
        sa.update(alerts)
        .where(alerts.c.id == alert_id)
        .values(
            status="failed" if permanent else "pending",
            last_error=error[:2000],
            attempts=alerts.c.attempts + 1,
        )
    )


def quarantine_payload(
    conn: Connection, source_name: str, url: str | None, reason: str, excerpt: bytes | None
) -> None:
    text = excerpt[:2000].decode("utf-8", "replace").replace("\x00", "") if excerpt else None
    conn.execute(
        sa.insert(quarantine).values(
            source_name=source_name, url=url, reason=reason[:2000], excerpt=text
        )
    )
