"""Source health: when each source last worked, how often it fails, how much it publishes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from pipeline.items import Source
from pipeline.storage.schema import items, sources


@dataclass(frozen=True)
class SourceHealth:
    name: str
    kind: str
    last_success_at: datetime | None
    consecutive_failures: int
    items_last_7d: int
    last_error: str | None

    @property
    def items_per_day(self) -> float:
        return self.items_last_7d / 7.0

    @property
    def status(self) -> str:
        if self.last_success_at is None and self.consecutive_failures == 0:
            return "never fetched"
        if self.consecutive_failures >= 3:
            return "failing"
        if self.consecutive_failures:
            return "error"
        return "ok"


def source_health(engine: Engine, configured: Sequence[Source]) -> list[SourceHealth]:
    since = datetime.now(UTC) - timedelta(days=7)
    recent = (
        sa.select(items.c.source_id, sa.func.count().label("n"))
        .where(items.c.fetched_at >= since)
        .group_by(items.c.source_id)
        .subquery()
    )
    q = sa.select(
        sources.c.name,
        sources.c.kind,
        sources.c.last_success_at,
        sources.c.consecutive_failures,
        sa.func.coalesce(recent.c.n, 0),
        sources.c.last_error,
    ).outerjoin(recent, recent.c.source_id == sources.c.id)
    with engine.connect() as conn:
        rows = {r[0]: r for r in conn.execute(q)}
    out = []
    for s in configured:
        r = rows.get(s.name)
        if r is None:
            out.append(SourceHealth(s.name, s.kind, None, 0, 0, None))
        else:
            last = r[2]
            if last is not None and last.tzinfo is None:
                last = last.replace(tzinfo=UTC)
            out.append(SourceHealth(r[0], r[1], last, int(r[3] or 0), int(r[4]), r[5]))
    return out


def format_health(rows: Sequence[SourceHealth]) -> str:
    headers = ("source", "kind", "status", "last success", "failures", "items/day", "last error")
    body = [
        (
            h.name,
            h.kind,
            h.status,
            h.last_success_at.strftime("%Y-%m-%d %H:%M") if h.last_success_at else "-",
            str(h.consecutive_failures),
            f"{h.items_per_day:.1f}",
            (h.last_error or "")[:70],
        )
        for h in rows
    ]
    widths = [
        max(len(headers[i]), *(len(b[i]) for b in body)) if body else len(headers[i])
        for i in range(len(headers))
    ]
    lines = ["  ".join(c.ljust(w) for c, w in zip(headers, widths, strict=True))]
    lines.append("-" * (sum(widths) + 2 * (len(widths) - 1)))
    lines += ["  ".join(c.ljust(w) for c, w in zip(b, widths, strict=True)) for b in body]
    return "\n".join(lines)
