"""What all connectors share: the registry, sources.yaml validation for social kinds, the
rate-limit header rules, the SSRF guard and body cap, and one end-to-end ingest run that
mixes a feed with social sources."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from pipeline.config import Settings
from pipeline.ingest.social.base import registry
from pipeline.ingest.social.http import retry_after_s
from pipeline.ingest.social.runner import collect
from pipeline.items import Source
from pipeline.run import RunSummary, format_summary, ingest
from pipeline.sources import SOCIAL_KINDS, SourcesError, load_sources
from tests import test_social_mastodon, test_social_reddit, test_social_telegram
from tests.social_replay import json_reply, replay

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


def test_every_social_kind_has_a_connector() -> None:
    assert (
        set(registry()) == set(SOCIAL_KINDS) == {"mastodon", "bluesky", "reddit", "telegram", "x"}
    )


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"Retry-After": "7"}, 7.0),
        ({"Retry-After": "Mon, 02 Mar 2026 12:05:00 GMT"}, 300.0),
        ({"x-rate-limit-reset": str(int(NOW.timestamp()) + 900)}, 900.0),  # X: epoch
        ({"ratelimit-reset": str(int(NOW.timestamp()) + 60)}, 60.0),  # Bluesky: epoch
        ({"x-ratelimit-reset": "540"}, 540.0),  # Reddit: seconds from now
        ({"X-RateLimit-Reset": "2026-03-02T12:10:00.000Z"}, 600.0),  # Mastodon: ISO time
        ({"Retry-After": "soon"}, None),
        ({}, None),
    ],
)
def test_retry_after_conventions(headers: dict[str, str], expected: float | None) -> None:
    assert retry_after_s(httpx.Headers(headers), NOW) == expected


def _write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "sources.yaml"
    p.write_text(text)
    return p


def test_social_sources_default_url_and_options(tmp_path: Path) -> None:
    srcs = load_sources(
        _write(
            tmp_path,
            """
sources:
  - {name: m, kind: mastodon, options: {hashtag: TrenDeAragua}}
  - {name: b, kind: bluesky, options: {query: "Tren de Aragua", lang: es, max_pages: 3}}
  - {name: r, kind: reddit, url: "http://127.0.0.1:8080", options: {subreddit: brasil, query: presídio}}
  - {name: t, kind: telegram, options: {channel: somechannel}}
  - {name: x, kind: x, options: {query: "Tren de Aragua"}}
""",
        )
    )
    assert [s.url for s in srcs] == [
        "https://mastodon.social",
        "https://public.api.bsky.app",
        "http://127.0.0.1:8080",
        "https://t.me",
        "https://api.x.com",
    ]
    assert srcs[1].options == {"query": "Tren de Aragua", "lang": "es", "max_pages": "3"}


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ("{name: a, kind: mastodon}", "needs exactly one of options hashtag, account_id, account"),
        (
            "{name: a, kind: mastodon, options: {hashtag: x, account: y}}",
            r"exactly one .*\(got hashtag, account\)",
        ),
        ("{name: a, kind: reddit, options: {sub: x}}", "unknown option.*sub"),
        ("{name: a, kind: x, options: {query: q, max_pages: 0}}", "max_pages"),
        ("{name: a, kind: rss}", "missing required key"),
    ],
)
def test_bad_social_entries_get_clear_errors(tmp_path: Path, entry: str, message: str) -> None:
    with pytest.raises(SourcesError, match=message):
        load_sources(_write(tmp_path, f"sources:\n  - {entry}\n"))


def test_ssrf_guard_and_body_cap_apply_to_connectors() -> None:
    settings = Settings.from_env({}).with_(fetch_timeout_s=5.0, max_body_bytes=2000)
    with replay(test_social_mastodon.route) as rec:
        guarded = Source(
            name="masto", kind="mastodon", url=rec.url, options={"hashtag": "TrenDeAragua"}
        )
        (blocked,) = collect([guarded], {}, settings)
        assert rec.requests == []  # refused before any connection
        allowed = Source(
            name="masto",
            kind="mastodon",
            url=rec.url,
            options={"hashtag": "TrenDeAragua"},
            allow_private=True,
        )
        (capped,) = collect([allowed], {}, settings)
    assert blocked.error_kind == "permanent" and "non-public" in (blocked.error or "")
    assert capped.error_kind == "permanent" and "cap" in (capped.error or "")


def _count(engine: sa.Engine, sql: str) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.text(sql)).scalar() or 0)


def test_one_run_mixes_feeds_and_social_sources(
    engine, settings: Settings, fixture_feeds: str
) -> None:
    with (
        replay(test_social_mastodon.route) as masto,
        replay(test_social_reddit.route) as reddit,
        replay(test_social_telegram.route) as tg,
        replay(lambda req, rec: json_reply(b"<html>oops</html>")) as junk,
    ):
        srcs = [
            Source(name="feed", kind="rss", url=fixture_feeds + "rss2_basic.xml"),
            Source(
                name="masto",
                kind="mastodon",
                url=masto.url,
                options={"hashtag": "TrenDeAragua", "max_pages": "2"},
            ),
            Source(
                name="r-venezuela",
                kind="reddit",
                url=reddit.url,
                lang="es",
                options={"subreddit": "venezuela", "max_pages": "2"},
            ),
            Source(name="tg-broken", kind="telegram", url=tg.url, options={"channel": "weird"}),
            Source(name="bsky-junk", kind="bluesky", url=junk.url, options={"actor": "a.b"}),
            Source(name="x", kind="x", url="http://127.0.0.1:9", options={"query": "q"}),
        ]
        summary = RunSummary()
        new_ids = ingest(engine, settings, srcs, summary)
    r = summary.reports
    assert r["feed"].new == 5 and not r["feed"].errors
    assert r["masto"].new == 4 and r["r-venezuela"].new == 5
    assert len(new_ids) == 14 == _count(engine, "SELECT COUNT(*) FROM items")
    assert "not a Telegram channel preview" in r["tg-broken"].errors[0]
    assert "not JSON" in r["bsky-junk"].errors[0]
    assert r["x"].skipped and not r["x"].errors
    # Both bad payloads are kept for inspection; their sources count a failure.
    assert _count(engine, "SELECT COUNT(*) FROM quarantine") == 2
    assert _count(engine, "SELECT COUNT(*) FROM sources WHERE consecutive_failures = 1") == 2
    with engine.connect() as conn:
        cursors = dict(conn.execute(sa.text("SELECT name, cursor FROM sources")).all())
    assert cursors["masto"] == "113500000000000300"
    assert cursors["r-venezuela"] == "t3_1j0ccc3@1772464800.0"
    assert cursors["feed"] is None and cursors["tg-broken"] is None
    table = format_summary(summary)
    assert "masto" in table and "(skipped:" in table


def test_default_sources_file_has_social_sources() -> None:
    root = Path(__file__).resolve().parents[1]
    kinds = {s.kind for s in load_sources(root / "sources.yaml")}
    assert kinds >= {"rss", "mastodon", "bluesky", "reddit", "x"}
