"""Parsing saved real-format feeds, including hostile and broken ones."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.errors import FeedParseError
from pipeline.ingest.parse import parse_feed
from pipeline.items import Source

FEEDS = Path(__file__).parent / "fixtures" / "feeds"
DEMO = Path(__file__).resolve().parents[1] / "pipeline" / "demo_data"
SRC = Source(name="t", kind="rss", url="http://127.0.0.1/feed")


def parse(name: str, folder: Path = FEEDS, source: Source = SRC):  # type: ignore[no-untyped-def]
    return parse_feed((folder / name).read_bytes(), source)


@pytest.mark.parametrize(
    ("name", "count", "lang"),
    [
        ("rss2_basic.xml", 5, "en"),
        ("atom_basic.atom", 5, "pt"),
        ("rss1_rdf.xml", 4, "es"),
    ],
)
def test_three_formats(name: str, count: int, lang: str) -> None:
    feed = parse(name)
    assert len(feed.items) == count
    for it in feed.items:
        assert it.url.startswith("http") and it.title and it.text
        assert it.published_at is not None and it.published_at.tzinfo is not None
        assert it.lang == lang
        assert "<" not in it.text


def test_encodings() -> None:
    latin = parse("latin1_declared.xml")
    assert len(latin.items) == 3
    joined = " ".join(i.title + i.text for i in latin.items)
    assert any(ch in joined for ch in "áéíóúñ¿") and "Ã" not in joined
    wrong = parse("wrong_encoding.xml")
    assert len(wrong.items) == 3
    plain = parse("no_encoding_utf8.xml")
    joined = " ".join(i.title + i.text for i in plain.items)
    assert any(ch in joined for ch in "çãô") and "Ã" not in joined


def test_malformed_keeps_complete_items() -> None:
    feed = parse("malformed.xml")
    assert len(feed.items) == 2


@pytest.mark.parametrize("name", ["billion_laughs.xml", "xxe.xml", "not_a_feed.html"])
def test_hostile_or_non_feeds_are_refused(name: str) -> None:
    with pytest.raises(FeedParseError):
        parse(name)


def test_xxe_never_leaks_local_files() -> None:
    try:
        feed = parse("xxe.xml")
    except FeedParseError as exc:
        assert "root:" not in str(exc)
    else:
        assert all("root:" not in i.text for i in feed.items)


def test_invalid_dates_become_none() -> None:
    feed = parse("invalid_dates.xml")
    assert len(feed.items) == 4
    dated = [i for i in feed.items if i.published_at is not None]
    assert len(dated) == 1 and dated[0] is feed.items[-1]


def test_empty_channel() -> None:
    feed = parse("empty_channel.xml")
    assert feed.items == [] and feed.skipped == []


def test_missing_links() -> None:
    feed = parse("missing_links.xml")
    assert len(feed.items) == 2 and len(feed.skipped) == 1
    assert feed.items[0].url.startswith("http")


def test_html_is_cleaned() -> None:
    feed = parse("html_heavy.xml")
    assert len(feed.items) == 2
    for it in feed.items:
        assert "<" not in it.text and "javascript:" not in it.text
        assert "alert(" not in it.text and "color:" not in it.text
        assert "\xa0" not in it.text


def test_demo_feeds_deduplicate_the_wire_story() -> None:
    urls = [
        i.canonical_url
        for name in ("insight_en.xml", "mixed_wire.xml")
        for i in parse(name, DEMO).items
    ]
    assert len(urls) - len(set(urls)) == 1


def test_empty_body() -> None:
    with pytest.raises(FeedParseError, match="empty"):
        parse_feed(b"   ", SRC)


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=3000))
def test_arbitrary_bytes_never_crash(data: bytes) -> None:
    try:
        feed = parse_feed(data, SRC)
    except FeedParseError:
        return
    assert all(i.url for i in feed.items)


@settings(max_examples=60, deadline=None)
@given(
    title=st.text(max_size=200),
    body=st.text(max_size=500),
    link=st.sampled_from(
        ["https://example.com/a", "", "not a url", "https://x.example/é?utm_source=1"]
    ),
)
def test_generated_rss_items_parse(title: str, body: str, link: str) -> None:
    from xml.sax.saxutils import escape

    def clean(s: str) -> str:
        return "".join(
            c
            for c in s
            if c in "\t\n\r"
            or (
                ord(c) >= 0x20 and ord(c) not in (0xFFFE, 0xFFFF) and not 0xD800 <= ord(c) <= 0xDFFF
            )
        )

    xml = (
        f'<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel><title>x</title>'
        f"<item><title>{escape(clean(title))}</title><link>{escape(link)}</link>"
        f"<description>{escape(clean(body))}</description></item></channel></rss>"
    ).encode()
    feed = parse_feed(xml, SRC)
    assert len(feed.items) + len(feed.skipped) == 1
