"""`sentinela archive import`: backfill the archive from a JSONL export.

Each line is one item: `url`, `title`, `text` and optionally `lang`, `published_at` (ISO
8601; UTC when it has no offset) and `source` (a source name; `--source` is the default).
Items get the canonical URL, content hash and language that ingest would give them, so a
story already archived (or imported before) is skipped, and the same story fetched later is
not stored twice. Sources not yet in the archive are created with kind 'import' (not a
kind sources.yaml accepts, so nothing ever fetches them).

Imported items are stored unclassified and unclustered (each a cluster of its own): the
next classify stage (`sentinela run --once`, or the DAG's classify task) scores every
unclassified item, and only then do matches among them show in the archive's queries.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, BinaryIO

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from pipeline.ingest.canonical import canonical_url
from pipeline.ingest.normalize import detect_lang, html_to_text
from pipeline.ingest.parse import MAX_TEXT_CHARS
from pipeline.ingest.social.base import platform_lang
from pipeline.items import Item, Source
from pipeline.sources import IMPORT_KIND
from pipeline.storage import repo
from pipeline.storage.bulk import DEFAULT_CHUNK, BulkReport, ItemRow, bulk_upsert_items
from pipeline.storage.schema import sources

# Dates outside these bounds are placeholders or broken clocks (1970-01-01, a year 2099);
# feed ingest drops them too (pipeline/ingest/parse.py).
_EARLIEST = datetime(1995, 1, 1, tzinfo=UTC)


class BadLine(ValueError):
    pass


@dataclass
class ImportReport:
    load: BulkReport
    lines: int = 0
    bad: int = 0
    repeated: int = 0  # same content as an earlier line of the file
    new_sources: list[str] = field(default_factory=list)

    @property
    def skipped(self) -> int:
        return self.load.skipped + self.repeated


def _published(value: Any) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise BadLine("'published_at' must be an ISO 8601 string or null")
    try:
        when = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise BadLine(f"'published_at' is not an ISO 8601 date: {value!r}") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    when = when.astimezone(UTC)
    if when < _EARLIEST:
        raise BadLine(f"'published_at' {value!r} is before 1995 (use null when unknown)")
    if when > datetime.now(UTC) + timedelta(days=1):
        raise BadLine(f"'published_at' {value!r} is in the future")
    return when


def _item(obj: Any, default_source: str | None) -> tuple[Item, str | None]:
    """A line's object -> the Item ingest would build, and the `lang` the line gave."""
    if not isinstance(obj, dict):
        raise BadLine(f"expected a JSON object, got {type(obj).__name__}")
    missing = [k for k in ("url", "title", "text") if k not in obj]
    if missing:
        raise BadLine(f"missing required key(s): {', '.join(missing)}")
    url, title_raw, text_raw = obj["url"], obj["title"], obj["text"]
    if not isinstance(url, str) or not url.strip().lower().startswith(("http://", "https://")):
        raise BadLine("'url' must be an http(s) URL")
    if not isinstance(title_raw, str) or not isinstance(text_raw, str):
        raise BadLine("'title' and 'text' must be strings")
    lang = obj.get("lang")
    if lang is not None and not isinstance(lang, str):
        raise BadLine("'lang' must be a string or null")
    source = obj.get("source")
    if source is None:  # absent or null
        source = default_source
    if source is None:
        raise BadLine("no 'source' and no --source given")
    if not isinstance(source, str) or not source.strip() or len(source.strip()) > 200:
        raise BadLine("'source' must be a non-empty name of at most 200 characters")
    # As feed parsing does: markup reduced to plain text, the body capped.
    title = html_to_text(title_raw)
    text = html_to_text(text_raw)[:MAX_TEXT_CHARS]
    if not title and not text:
        raise BadLine("no title or text")
    item = Item(
        source=source.strip(),
        url=url.strip(),
        canonical_url=canonical_url(url),
        title=title,
        text=text,
        published_at=_published(obj.get("published_at")),
    )
    return item, lang


def _open(path: str) -> BinaryIO:
    return sys.stdin.buffer if path == "-" else open(path, "rb")


class _Sources:
    """name -> (id, declared language); sources not yet archived are created on first use."""

    def __init__(self, engine: Engine, origin: str) -> None:
        self.engine = engine
        self.origin = origin
        self.created: list[str] = []
        with engine.connect() as conn:
            rows = conn.execute(sa.select(sources.c.name, sources.c.id, sources.c.lang)).all()
        self.known: dict[str, tuple[int, str | None]] = {r[0]: (r[1], r[2]) for r in rows}

    def get(self, name: str) -> tuple[int, str | None]:
        if name not in self.known:
            # Committed before any of its items is queued: the loaders' foreign-key checks
            # run on other connections.
            with self.engine.begin() as conn:
                ids = repo.sync_sources(conn, [Source(name, IMPORT_KIND, self.origin)])
            self.known[name] = (ids[name], None)
            self.created.append(name)
        return self.known[name]


def import_jsonl(
    engine: Engine,
    path: str,
    *,
    default_source: str | None = None,
    chunk: int = DEFAULT_CHUNK,
    loaders: int = 2,
    on_bad_line: Callable[[str], None] = lambda _msg: None,
) -> ImportReport:
    """Import the items of a JSONL file ('-': stdin). A bad line is passed to `on_bad_line`
    as `FILE:LINE: reason` and skipped; the good lines are imported. Raises OSError when the
    file cannot be read, BulkLoadError when the archive refuses a chunk (what was committed
    before it stays)."""
    srcs = _Sources(engine, f"import:{path}")
    fetched_at = datetime.now(UTC)
    # 16 bytes of each line's content hash: a story repeated in the export is imported once
    # (ingest keeps the first copy too) in ~100 MB per million lines.
    seen: set[bytes] = set()
    counts = {"lines": 0, "bad": 0, "repeated": 0}

    def rows(handle: BinaryIO) -> Iterator[ItemRow]:
        for n, raw in enumerate(handle, start=1):
            if not raw.strip():
                continue
            counts["lines"] += 1
            try:
                try:
                    obj = json.loads(raw.decode("utf-8"))
                except UnicodeDecodeError:
                    raise BadLine("not valid UTF-8") from None
                except json.JSONDecodeError as exc:
                    raise BadLine(f"not valid JSON ({exc.msg} at column {exc.colno})") from None
                item, lang = _item(obj, default_source)
            except BadLine as exc:
                counts["bad"] += 1
                on_bad_line(f"{path}:{n}: {exc}")
                continue
            content_hash = item.content_hash  # a property that hashes on every read
            digest = bytes.fromhex(content_hash)[:16]
            if digest in seen:
                counts["repeated"] += 1
                continue
            seen.add(digest)
            source_id, source_lang = srcs.get(item.source)
            # As ingest does: the item's own language tag, else detected with the source's
            # declared language as the hint.
            detected = platform_lang(lang) or detect_lang(
                f"{item.title}. {item.text}", hint=source_lang
            )
            yield ItemRow(
                source_id=source_id,
                url=item.url,
                canonical_url=item.canonical_url,
                guid=None,
                title=item.title,
                text=item.text,
                lang=detected,
                published_at=item.published_at,
                fetched_at=fetched_at,
                content_hash=content_hash,
                cluster_id=None,
            )

    handle = _open(path)
    try:
        load = bulk_upsert_items(
            engine.url.render_as_string(hide_password=False),
            rows(handle),
            chunk=chunk,
            loaders=loaders,
        )
    finally:
        if handle is not sys.stdin.buffer:
            handle.close()
    return ImportReport(
        load=load,
        lines=counts["lines"],
        bad=counts["bad"],
        repeated=counts["repeated"],
        new_sources=srcs.created,
    )
