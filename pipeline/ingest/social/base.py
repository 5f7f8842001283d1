"""What every social-platform connector shares: the protocol, its result, the errors it
may raise, helpers that turn a post into an `Item`, and the registry by `kind`.

A connector reads one source from its platform, page by page, and returns the posts as
`Item`s plus the cursor to store for the next run. It never touches the database: the
caller stores items and cursor in one transaction, so a crash between the two cannot skip
posts. Cursors are opaque strings owned by each connector (a post id, a timestamp).
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

import lxml.html

from pipeline.config import Settings
from pipeline.errors import PermanentError, TransientError
from pipeline.ingest.canonical import canonical_url
from pipeline.ingest.normalize import detect_lang, html_to_text
from pipeline.items import Item, Source

if TYPE_CHECKING:
    from pipeline.ingest.social.http import SocialHttp

MAX_TEXT_CHARS = 20_000
TITLE_CHARS = 110
_EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
_LINE_BREAKS = re.compile(r"<br\s*/?>|</p>|</div>|</li>", re.IGNORECASE)


class PayloadError(PermanentError):
    """The platform answered, but not with the structure its API documents. `excerpt`
    keeps the start of the body for the quarantine table."""

    def __init__(self, message: str, url: str | None = None, excerpt: bytes | None = None):
        super().__init__(message)
        self.url = url
        self.excerpt = excerpt


class RateLimitedError(TransientError):
    """The platform said 429 and asked for a wait longer than one run should spend."""

    def __init__(self, url: str, wait_s: float | None):
        when = f"{wait_s:.0f}s" if wait_s is not None else "an unspecified time"
        super().__init__(f"rate limited by {url}; asked to wait {when}")
        self.wait_s = wait_s


@dataclass
class ConnectorResult:
    items: list[Item] = field(default_factory=list)
    # What to store in sources.cursor; None keeps whatever is stored.
    cursor: str | None = None
    pages: int = 0
    # Not failures; logged (unusable posts, the page cap reached).
    notes: list[str] = field(default_factory=list)
    # Why the source stopped early (a long rate-limit wait): shown in the run summary. The
    # items read so far are kept and the cursor covers only what was read.
    interrupted: str | None = None
    # Set when the source cannot run in this configuration (e.g. no API token): it is
    # reported as skipped, not as failed.
    skipped: str | None = None


@dataclass
class ConnectorContext:
    """Shared by every source of one run: settings and per-run caches (a login session)."""

    settings: Settings
    shared: dict[str, Any] = field(default_factory=dict)
    locks: dict[str, asyncio.Lock] = field(default_factory=dict)

    def lock(self, key: str) -> asyncio.Lock:
        return self.locks.setdefault(key, asyncio.Lock())


class Connector(Protocol):
    kind: str

    async def fetch(
        self, http: SocialHttp, ctx: ConnectorContext, source: Source, cursor: str | None
    ) -> ConnectorResult: ...


_REGISTRY: dict[str, Connector] = {}


def register(connector: Connector) -> Connector:
    _REGISTRY[connector.kind] = connector
    return connector


def registry() -> dict[str, Connector]:
    """kind -> connector. The platform modules register themselves when imported; the import
    is here, not at module top, because they import this module."""
    from pipeline.ingest.social import bluesky, mastodon, reddit, telegram, x  # noqa: F401

    return dict(_REGISTRY)


def max_pages(source: Source, settings: Settings) -> int:
    raw = source.options.get("max_pages")
    return max(1, int(raw)) if raw else max(1, settings.social_max_pages)


def parse_time(value: object) -> datetime | None:
    """ISO 8601 (with `Z` or an offset) or a Unix timestamp -> aware UTC datetime; None when
    absent, unparseable or impossible (before 2000, more than a day ahead)."""
    when: datetime | None = None
    if isinstance(value, int | float) and not isinstance(value, bool):
        try:
            when = datetime.fromtimestamp(float(value), tz=UTC)
        except (OverflowError, OSError, ValueError):
            return None
    elif isinstance(value, str) and value.strip():
        try:
            when = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        when = when.astimezone(UTC)
    if when is None or not _EARLIEST <= when <= datetime.now(UTC) + timedelta(days=1):
        return None
    return when


def html_first_line(markup: str) -> str:
    """The first non-empty line of an HTML fragment, where <br> and block ends are lines."""
    if not markup.strip():
        return ""
    try:
        doc = lxml.html.fromstring(f"<div>{_LINE_BREAKS.sub(chr(10), markup)}</div>")
        text = doc.text_content()
    except (ValueError, lxml.etree.ParserError):
        text = html_to_text(markup)
    return first_line(text)


def first_line(text: str) -> str:
    for line in text.splitlines():
        line = " ".join(line.split())
        if line:
            return shorten(line)
    return ""


def shorten(line: str, limit: int = TITLE_CHARS) -> str:
    if len(line) <= limit:
        return line
    cut = line[:limit].rsplit(" ", 1)[0] or line[:limit]
    return cut.rstrip(" ,;:-") + "…"


def platform_lang(value: object) -> str | None:
    """A platform language tag ("pt-BR", "es") -> ISO 639-1, or None when it is a
    placeholder ("und", X's "qme"/"zxx") or absent."""
    if not isinstance(value, str) or not value.strip():
        return None
    code = value.strip().lower().replace("_", "-").split("-")[0]
    return code if len(code) == 2 and code.isalpha() else None


def make_item(
    source: Source,
    *,
    url: str,
    text: str,
    title: str = "",
    lang: object = None,
    published_at: datetime | None,
    guid: str | None,
    author: str | None,
) -> Item:
    text = text[:MAX_TEXT_CHARS]
    detected = platform_lang(lang) or detect_lang(f"{title}. {text}", hint=source.lang)
    return Item(
        source=source.name,
        url=url,
        canonical_url=canonical_url(url),
        title=title or first_line(text),
        text=text,
        lang=detected,
        published_at=published_at,
        guid=guid,
        author=author,
    )


def require(value: Any, kind: type | tuple[type, ...], what: str, url: str, body: bytes) -> Any:
    """Check one field of a payload; a wrong shape is a PayloadError naming the field."""
    if not isinstance(value, kind):
        got = type(value).__name__
        raise PayloadError(f"unexpected payload from {url}: {what} is {got}", url, body[:2000])
    return value
