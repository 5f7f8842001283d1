"""Source health: when each source last worked, how often it fails, how much it publishes."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from pipeline.items import Source
from pipeline.storage.schema import items, sources

# A source is "silent" when its newest item is older than SILENCE_FACTOR times its usual gap
# between items (the median over the BASELINE before that item), and at least SILENCE_MIN:
# a local outlet that stops publishing can mean its reporters were threatened.
SILENCE_FACTOR = 4
SILENCE_MIN = timedelta(days=2)
BASELINE = timedelta(days=30)
MIN_BASELINE_ITEMS = 5


@dataclass(frozen=True)
class SourceHealth:
    name: str
    kind: str
    last_success_at: datetime | None
    consecutive_failures: int
    items_last_7d: int
    last_error: str | None
    next_fetch_after: datetime | None = None
    last_item_at: datetime | None = None
    usual_gap: timedelta | None = None
    checked_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    @property
    def items_per_day(self) -> float:
        return self.items_last_7d / 7.0

    @property
    def backing_off(self) -> bool:
        return self.next_fetch_after is not None and self.next_fetch_after > self.checked_at

    @property
    def silent_for(self) -> timedelta | None:
        """How long the source has been quiet, when that is unusually long for it."""
        if self.usual_gap is None or self.last_item_at is None:
            return None
        quiet = self.checked_at - self.last_item_at
        return quiet if quiet > max(self.usual_gap * SILENCE_FACTOR, SILENCE_MIN) else None

    @property
    def status(self) -> str:
        if self.last_success_at is None and self.consecutive_failures == 0:
            return "never fetched"
        if self.backing_off:
            return "backing off"
        if self.consecutive_failures >= 3:
            return "failing"
        if self.consecutive_failures:
            return "error"
        if self.silent_for is not None:
            return "silent"
        return "ok"


def _aware(when: datetime | None) -> datetime | None:
    if when is not None and when.tzinfo is None:
        return when.replace(tzinfo=UTC)
    return when


def _usual_gap(stamps: Sequence[datetime]) -> timedelta | None:
    if len(stamps) < MIN_BASELINE_ITEMS:
        return None
    ordered = sorted(stamps)
    gaps = sorted(b - a for a, b in itertools.pairwise(ordered))
    return gaps[len(gaps) // 2]


def source_health(
    engine: Engine, configured: Sequence[Source], now: datetime | None = None
) -> list[SourceHealth]:
    now = now or datetime.now(UTC)
    since = now - timedelta(days=7)
    recent = (
        sa.select(items.c.source_id, sa.func.count().label("n"))
        .where(items.c.fetched_at >= since)
        .group_by(items.c.source_id)
        .subquery()
    )
    # When a story came out; the fetch time stands in for feeds that give no dates.
    ts = sa.func.coalesce(items.c.published_at, items.c.fetched_at)
    newest = (
        sa.select(items.c.source_id, sa.func.max(ts).label("last_item"))
        .group_by(items.c.source_id)
        .subquery()
    )
    q = (
        sa.select(
            sources.c.name,
            sources.c.kind,
            sources.c.last_success_at,
            sources.c.consecutive_failures,
            sa.func.coalesce(recent.c.n, 0),
            sources.c.last_error,
            sources.c.next_fetch_after,
            newest.c.last_item,
            sources.c.id,
        )
        .outerjoin(recent, recent.c.source_id == sources.c.id)
        .outerjoin(newest, newest.c.source_id == sources.c.id)
    )
    out = []
    with engine.connect() as conn:
        rows = {r[0]: r for r in conn.execute(q)}
        for s in configured:
            r = rows.get(s.name)
            if r is None:
                out.append(SourceHealth(s.name, s.kind, None, 0, 0, None, checked_at=now))
                continue
            last_item = _aware(r[7])
            gap = None
            if last_item is not None:
                stamps = conn.execute(
                    sa.select(ts).where(items.c.source_id == r[8], ts >= last_item - BASELINE)
                ).scalars()
                gap = _usual_gap([a for a in (_aware(t) for t in stamps) if a is not None])
            out.append(
                SourceHealth(
                    r[0],
                    r[1],
                    _aware(r[2]),
                    int(r[3] or 0),
                    int(r[4]),
                    r[5],
                    next_fetch_after=_aware(r[6]),
                    last_item_at=last_item,
                    usual_gap=gap,
                    checked_at=now,
                )
            )
    return out


def _days(delta: timedelta) -> str:
    days = delta.total_seconds() / 86400
    return f"{days:.1f}d" if days < 10 else f"{days:.0f}d"


def _note(h: SourceHealth) -> str:
    if h.backing_off and h.next_fetch_after is not None:
        note = f"next try {h.next_fetch_after:%Y-%m-%d %H:%M}"
        return f"{note}; {h.last_error}" if h.last_error else note
    silent = h.silent_for
    if silent is not None and h.usual_gap is not None:
        return f"no items for {_days(silent)}, usually every {_days(h.usual_gap)}"
    return h.last_error or ""


def format_health(rows: Sequence[SourceHealth]) -> str:
    headers = (
        "source",
        "kind",
        "status",
        "last success",
        "last item",
        "failures",
        "items/day",
        "note",
    )
    body = [
        (
            h.name,
            h.kind,
            h.status,
            h.last_success_at.strftime("%Y-%m-%d %H:%M") if h.last_success_at else "-",
            h.last_item_at.strftime("%Y-%m-%d %H:%M") if h.last_item_at else "-",
            str(h.consecutive_failures),
            f"{h.items_per_day:.1f}",
            _note(h)[:80],
        )
        for h in rows
    ]
    widths = [
        max(len(headers[i]), *(len(b[i]) for b in body)) if body else len(headers[i])
        for i in range(len(headers))
    ]
    lines = ["  ".join(c.ljust(w) for c, w in zip(headers, widths, strict=True)).rstrip()]
    lines.append("-" * (sum(widths) + 2 * (len(widths) - 1)))
    lines += ["  ".join(c.ljust(w) for c, w in zip(b, widths, strict=True)).rstrip() for b in body]
    return "\n".join(lines)
