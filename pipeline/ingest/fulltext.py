"""Full text for teaser-only feeds: fetch the article page and extract its main text.

Opt-in per source (`fulltext: true` in sources.yaml). Only items that are new to the archive
and whose feed text is a teaser (under MIN_TEXT_CHARS) are fetched, so a run costs one page
per new story, never one per feed entry. Pages go through the same fetcher as feeds: the
SSRF guard on every redirect, the body cap, the deadline and the per-host limit (which
matters here: every page of a source lives on the same host).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import replace

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from pipeline.config import Settings
from pipeline.ingest.fetch import FetchResult, fetch_all
from pipeline.ingest.normalize import detect_lang
from pipeline.items import Item, Source
from pipeline.storage.schema import items

log = logging.getLogger(__name__)
MIN_TEXT_CHARS = 200
MAX_TEXT_CHARS = 20_000
MAX_PAGES_PER_RUN = 50  # per source: a feed that suddenly lists 500 entries is not crawled
_HTML_TYPES = ("text/html", "application/xhtml+xml")


def wants_fulltext(src: Source) -> bool:
    return src.options.get("fulltext", "").strip().lower() in ("true", "1", "yes")


def extract_main_text(body: bytes, url: str | None = None) -> str | None:
    """The article's main text (boilerplate, navigation and comments removed), or None."""
    import trafilatura  # heavy import: only sources that opt in pay for it

    text = trafilatura.extract(
        body,
        url=url,
        include_comments=False,
        include_tables=False,
        favor_precision=True,
        deduplicate=True,
    )
    if not text:
        return None
    return " ".join(text.split())[:MAX_TEXT_CHARS] or None


def _is_html(result: FetchResult) -> bool:
    ctype = (result.content_type or "").split(";")[0].strip().lower()
    return not ctype or ctype in _HTML_TYPES


def enrich(engine: Engine, settings: Settings, src: Source, batch: Sequence[Item]) -> list[Item]:
    """Return `batch` with teaser texts replaced by the article's text where the page could
    be fetched and yielded more. A page that fails keeps the teaser: nothing is lost."""
    out = list(batch)
    if not wants_fulltext(src):
        return out
    short = [i for i, it in enumerate(out) if len(it.text) < MIN_TEXT_CHARS]
    if not short:
        return out
    with engine.connect() as conn:
        urls = [out[i].canonical_url for i in short]
        known = set(
            conn.execute(
                sa.select(items.c.canonical_url).where(items.c.canonical_url.in_(urls))
            ).scalars()
        )
    todo = [i for i in short if out[i].canonical_url not in known][:MAX_PAGES_PER_RUN]
    if not todo:
        return out
    pages = [
        Source(
            name=f"{src.name}#page{n}",
            kind="page",
            url=out[i].url,
            allow_private=src.allow_private,
        )
        for n, i in enumerate(todo)
    ]
    results = fetch_all(pages, {}, settings)
    for i, result in zip(todo, results, strict=True):
        it = out[i]
        if not result.ok or result.body is None or not _is_html(result):
            log.info("%s: no full text for %s: %s", src.name, it.url, result.error or "not HTML")
            continue
        try:
            text = extract_main_text(result.body, result.url)
        except Exception as exc:  # a hostile page must not cost the item
            log.warning("%s: extraction failed for %s: %s", src.name, it.url, exc)
            continue
        if text and len(text) > len(it.text):
            lang = detect_lang(f"{it.title}. {text}", hint=src.lang) or it.lang
            out[i] = replace(it, text=text, lang=lang)
    return out
