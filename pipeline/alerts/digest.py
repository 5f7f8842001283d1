"""The daily digest per channel: counts by label and country, the top stories, and a chart of
matches per day over the last 14 days (PNG, uploaded with files_upload_v2).

A digest is recorded in `digests` (unique on channel and day) and posted once: pending →
sending → sent, and a digest left in 'sending' by a crash is looked up in the channel's
history (metadata event_type "sentinela_digest") before it is posted again.
"""

from __future__ import annotations

import io
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from pipeline.alerts.compose import LABEL_NAMES, MAX_HEADER_TEXT, MAX_SECTION_TEXT
from pipeline.alerts.entities import country_name, extract
from pipeline.alerts.slack_hook import SlackHook
from pipeline.storage.repo import _insert, latest_classification_id
from pipeline.storage.schema import alerts, classifications, digests, items, sources

CHART_DAYS = 14
TOP_STORIES = 5
DIGEST_EVENT = "sentinela_digest"


@dataclass(frozen=True)
class TopStory:
    title: str
    url: str
    source: str
    score: float
    labels: tuple[str, ...]


@dataclass
class DigestData:
    channel: str
    day: date
    total: int = 0
    by_label: dict[str, int] = field(default_factory=dict)
    by_country: dict[str, int] = field(default_factory=dict)
    top: list[TopStory] = field(default_factory=list)
    per_day: list[tuple[date, int]] = field(default_factory=list)


def _day_bounds(day: date) -> tuple[datetime, datetime]:
    start = datetime.combine(day, time(0), tzinfo=UTC)
    return start, start + timedelta(days=1)


def _as_date(value: datetime) -> date:
    if value.tzinfo is not None:
        value = value.astimezone(UTC)
    return value.date()


def collect(conn: Connection, channel: str, day: date) -> DigestData:
    """What the channel was alerted about on `day` (UTC), by when the match was recorded."""
    start, end = _day_bounds(day)
    latest = latest_classification_id()
    rows = conn.execute(
        sa.select(
            items.c.title,
            items.c.url,
            items.c.text,
            items.c.cluster_id,
            items.c.id,
            sources.c.name,
            sources.c.country,
            classifications.c.labels,
            classifications.c.scores,
        )
        .select_from(
            alerts.join(items, items.c.id == alerts.c.item_id)
            .join(sources, sources.c.id == items.c.source_id)
            .join(classifications, classifications.c.item_id == items.c.id)
        )
        .where(alerts.c.channel == channel, alerts.c.status != "failed")
        .where(alerts.c.created_at >= start, alerts.c.created_at < end)
        .where(classifications.c.id == latest)
        .order_by(alerts.c.id)
    ).all()
    data = DigestData(channel, day, total=len(rows))
    labels: Counter[str] = Counter()
    countries: Counter[str] = Counter()
    stories: dict[object, TopStory] = {}
    for title, url, text, cluster_id, item_id, source, src_country, lbls, scores in rows:
        lbls = list(lbls or [])
        labels.update(lbls)
        found = extract(f"{title}\n{text}", src_country).country or src_country or "unknown"
        countries[found] += 1
        score = max((float((scores or {}).get(lbl, 0.0)) for lbl in lbls), default=0.0)
        story = TopStory(title, url, source, score, tuple(lbls))
        key = ("cluster", cluster_id) if cluster_id is not None else ("item", item_id)
        if key not in stories or score > stories[key].score:
            stories[key] = story  # one line per story, not per outlet
    data.by_label = dict(labels.most_common())
    data.by_country = dict(countries.most_common())
    data.top = sorted(stories.values(), key=lambda s: -s.score)[:TOP_STORIES]
    first = day - timedelta(days=CHART_DAYS - 1)
    created = conn.execute(
        sa.select(alerts.c.created_at).where(
            alerts.c.channel == channel,
            alerts.c.status != "failed",
            alerts.c.created_at >= _day_bounds(first)[0],
            alerts.c.created_at < end,
        )
    ).scalars()
    per_day = Counter(_as_date(c) for c in created)
    data.per_day = [
        (first + timedelta(days=n), per_day.get(first + timedelta(days=n), 0))
        for n in range(CHART_DAYS)
    ]
    return data


def chart_png(data: DigestData) -> bytes:
    """Bar chart of matches per day (the Agg backend: no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    fig = Figure(figsize=(8, 3), dpi=100)
    ax = fig.add_subplot()
    days = [d for d, _ in data.per_day]
    counts = [c for _, c in data.per_day]
    ax.bar([d.strftime("%m-%d") for d in days], counts, color="#c0392b")
    ax.set_title(f"Sentinela matches per day in {data.channel} (last {len(days)} days)")
    ax.set_ylabel("matches")
    ax.tick_params(axis="x", labelrotation=45, labelsize=8)
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))  # no "2.5 matches"
    fig.tight_layout()
    out = io.BytesIO()
    fig.savefig(out, format="png")
    return out.getvalue()


def _cut(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _esc(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def digest_text(data: DigestData) -> str:
    return (
        f"Sentinela daily digest for {data.channel}, {data.day.isoformat()}: {data.total} matches"
    )


def digest_blocks(data: DigestData) -> list[dict[str, Any]]:
    def section(text: str) -> dict[str, Any]:
        # Truncate only: the list of top stories keeps its line breaks.
        if len(text) > MAX_SECTION_TEXT:
            text = text[: MAX_SECTION_TEXT - 1] + "…"
        return {"type": "section", "text": {"type": "mrkdwn", "text": text}}

    header = f"Sentinela daily digest · {data.day.isoformat()}"
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": _cut(header, MAX_HEADER_TEXT)}},
        section(f"*{data.total}* match{'es' if data.total != 1 else ''} in {_esc(data.channel)}"),
    ]
    if data.by_label:
        parts = [f"{LABEL_NAMES.get(k, k)}: {v}" for k, v in data.by_label.items()]
        blocks.append(section("*By label:* " + " · ".join(parts)))
    if data.by_country:
        parts = [
            f"{_esc(country_name(k) if k != 'unknown' else 'unknown')}: {v}"
            for k, v in data.by_country.items()
        ]
        blocks.append(section("*By country:* " + " · ".join(parts)))
    if data.top:
        lines = [
            f"{n}. <{_esc(s.url).replace('|', '%7C')}|{_esc(_cut(s.title, 200)).replace('|', '¦')}>"
            f" — {_esc(s.source)} ({s.score:.2f})"
            for n, s in enumerate(data.top, start=1)
        ]
        blocks.append(section("*Top stories:*\n" + "\n".join(lines)))
    blocks.append(
        {
            "type": "context",
            "elements": [
                {"type": "mrkdwn", "text": f"Chart: matches per day, last {CHART_DAYS} days."}
            ],
        }
    )
    return blocks


@dataclass(frozen=True)
class DigestResult:
    channel: str
    day: date
    status: str  # posted | already_sent | found_posted | chart_added
    ts: str | None
    file_id: str | None
    total: int


def _digest_row(conn: Connection, channel: str, day: date) -> Any:
    conn.execute(
        _insert(conn, digests)
        .values(channel=channel, day=day, status="pending")
        .on_conflict_do_nothing(index_elements=["channel", "day"])
    )
    return conn.execute(
        sa.select(digests).where(digests.c.channel == channel, digests.c.day == day)
    ).one()


def _find_posted(hook: SlackHook, channel: str, day: date, since: datetime) -> str | None:
    for m in hook.history(channel, since.timestamp() - 300):
        meta = m.metadata or {}
        payload = meta.get("event_payload") or {}
        if meta.get("event_type") == DIGEST_EVENT and payload.get("day") == day.isoformat():
            return m.ts
    return None


def _chart(engine: Engine, hook: SlackHook, row_id: int, channel_id: str, data: DigestData) -> str:
    file_id = hook.upload_file(
        channel_id,
        chart_png(data),
        filename=f"sentinela-{data.day.isoformat()}.png",
        title=f"Matches per day, {CHART_DAYS} days to {data.day.isoformat()}",
    )
    with engine.begin() as conn:
        conn.execute(sa.update(digests).where(digests.c.id == row_id).values(file_id=file_id))
    return file_id


def send_digest(
    engine: Engine, hook: SlackHook, channel: str, day: date, force: bool = False
) -> DigestResult:
    """Post the digest message, then upload its chart into the channel. A rerun finishes
    what a failed run left: a digest posted without its chart gets the chart only."""
    with engine.begin() as conn:
        row = _digest_row(conn, channel, day)
        data = collect(conn, channel, day)
    if row.status == "sent" and not force:
        if row.file_id is None and row.channel_id:
            file_id = _chart(engine, hook, row.id, row.channel_id, data)
            return DigestResult(channel, day, "chart_added", row.slack_ts, file_id, data.total)
        return DigestResult(channel, day, "already_sent", row.slack_ts, row.file_id, data.total)
    if row.status == "sending" and not force:
        created = row.created_at if row.created_at.tzinfo else row.created_at.replace(tzinfo=UTC)
        ts = _find_posted(hook, channel, day, created)
        if ts is not None:
            # Posted by a run that died before recording it (its chart was never sent).
            with engine.begin() as conn:
                conn.execute(
                    sa.update(digests)
                    .where(digests.c.id == row.id)
                    .values(status="sent", slack_ts=ts, sent_at=datetime.now(UTC))
                )
            return DigestResult(channel, day, "found_posted", ts, None, data.total)
    with engine.begin() as conn:
        conn.execute(
            sa.update(digests)
            .where(digests.c.id == row.id)
            .values(status="sending", matches=data.total)
        )
    posted = hook.post_message_full(
        channel,
        digest_text(data),
        digest_blocks(data),
        metadata={
            "event_type": DIGEST_EVENT,
            "event_payload": {"channel": channel, "day": day.isoformat(), "matches": data.total},
        },
    )
    with engine.begin() as conn:
        conn.execute(
            sa.update(digests)
            .where(digests.c.id == row.id)
            .values(
                status="sent",
                slack_ts=posted.ts,
                channel_id=posted.channel_id,
                file_id=None,
                sent_at=datetime.now(UTC),
            )
        )
    file_id = _chart(engine, hook, row.id, posted.channel_id, data)
    return DigestResult(channel, day, "posted", posted.ts, file_id, data.total)


def console_digest(data: DigestData) -> str:
    lines = [digest_text(data)]
    if data.by_label:
        lines.append(
            "  by label: "
            + ", ".join(f"{LABEL_NAMES.get(k, k)} {v}" for k, v in data.by_label.items())
        )
    if data.by_country:
        lines.append("  by country: " + ", ".join(f"{k} {v}" for k, v in data.by_country.items()))
    for n, s in enumerate(data.top, start=1):
        lines.append(f"  {n}. {s.title} — {s.source} ({s.score:.2f}) {s.url}")
    lines.append("  per day: " + " ".join(str(c) for _, c in data.per_day))
    return "\n".join(lines)
