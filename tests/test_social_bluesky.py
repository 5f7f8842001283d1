"""Bluesky connector against a local server replaying XRPC payloads."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime

import sqlalchemy as sa

from pipeline.config import Settings
from pipeline.ingest.social.runner import collect
from pipeline.items import Source
from pipeline.run import RunSummary, format_summary, ingest
from tests.social_replay import Replay, Reply, Request, fixture, json_reply, replay

SESSION = json.loads(fixture("bluesky/create_session.json"))
TOKEN = SESSION["accessJwt"]


def route(req: Request, rec: Replay) -> Reply:
    q = req.query
    if req.path == "/xrpc/com.atproto.server.createSession" and req.method == "POST":
        body = json.loads(req.body)
        if body != {"identifier": "sentinela.example.com", "password": "abcd-efgh-ijkl-mnop"}:
            return (
                401,
                {},
                b'{"error":"AuthenticationRequired","message":"Invalid identifier or password"}',
            )
        return json_reply(fixture("bluesky/create_session.json"))
    if req.path == "/xrpc/app.bsky.feed.searchPosts":
        if req.headers.get("authorization") != f"Bearer {TOKEN}":
            return 403, {}, b'{"error":"Forbidden"}'
        if rec.state.get("throttle") and "since" in q:
            reset = str(int(time.time()) + 900)
            return (
                429,
                {"ratelimit-reset": reset, "ratelimit-remaining": "0"},
                b'{"error":"RateLimitExceeded"}',
            )
        if "since" in q:
            return json_reply(fixture("bluesky/search_newer.json"))
        if q.get("cursor") == "100":
            return json_reply(fixture("bluesky/search_page2.json"))
        if q.get("cursor"):
            return json_reply(b'{"cursor":"300","posts":[]}')
        return json_reply(fixture("bluesky/search_page1.json"))
    if req.path == "/xrpc/app.bsky.feed.getAuthorFeed":
        if q.get("cursor"):
            return json_reply(b'{"feed":[]}')
        return json_reply(fixture("bluesky/author_feed.json"))
    return 404, {}, b'{"error":"MethodNotImplemented"}'


def _settings(base: str, login: bool = True, password: str = "abcd-efgh-ijkl-mnop") -> Settings:
    s = Settings.from_env({}).with_(
        fetch_timeout_s=5.0, social_max_wait_s=3.0, bluesky_pds_url=base, allow_private_hosts=True
    )
    if login:
        s = s.with_(bluesky_handle="sentinela.example.com", bluesky_app_password=password)
    return s


def _search(base: str, name: str = "bsky-search") -> Source:
    return Source(
        name=name,
        kind="bluesky",
        url=base,
        options={"query": "Tren de Aragua", "max_pages": "2"},
    )


def test_search_without_login_is_skipped_not_failed() -> None:
    with replay(route) as rec:
        (out,) = collect([_search(rec.url)], {}, _settings(rec.url, login=False))
        assert out.ok and out.result is not None and out.result.skipped
        assert "SENTINELA_BLUESKY_APP_PASSWORD" in out.result.skipped
        assert rec.requests == []


def test_search_logs_in_once_sends_token_and_pages_up_to_the_cap() -> None:
    with replay(route) as rec:
        outs = collect([_search(rec.url, "a"), _search(rec.url, "b")], {}, _settings(rec.url))
    logins = [r for r in rec.requests if r.path.endswith("createSession")]
    assert len(logins) == 1  # one session per run, shared by both sources
    searches = [r for r in rec.requests if r.path.endswith("searchPosts")]
    assert all(r.headers["authorization"] == f"Bearer {TOKEN}" for r in searches)
    assert sorted(r.query.get("cursor", "") for r in searches) == ["", "", "100", "100"]
    assert searches[0].query["sort"] == "latest" and searches[0].query["limit"] == "100"
    res = outs[0].result
    assert res is not None and res.pages == 2
    first, second, third = res.items
    assert first.url == (
        "https://bsky.app/profile/did:plc:ewvi7nxzyoun6zhxrhs64oiz/post/3lkq2xyzabc2s"
    )
    assert (
        first.title.startswith("Operativo en la cárcel de Tocorón") and "retoma" not in first.title
    )
    assert "\n" not in first.text and "Nuevo operativo en Tocorón" in first.text
    assert first.lang == "es" and first.author == "periodista-ve.bsky.social"
    assert first.published_at == datetime(2026, 3, 2, 15, 20, tzinfo=UTC)
    assert first.guid == "at://did:plc:ewvi7nxzyoun6zhxrhs64oiz/app.bsky.feed.post/3lkq2xyzabc2s"
    assert second.lang == "pt" and second.url.endswith(
        "/did:plc:b7qz4yd3f2lmu6xjk2cqxw5t/post/3lkpzzzq6vk2e"
    )
    assert third.lang == "en"  # no langs in the record: detected
    assert res.cursor == "2026-03-02T15:20:00Z"


def test_author_feed_needs_no_login_and_leaves_out_reposts() -> None:
    with replay(route) as rec:
        src = Source(
            name="insight",
            kind="bluesky",
            url=rec.url,
            options={"actor": "insightcrime.example.com"},
        )
        (out,) = collect([src], {}, _settings(rec.url, login=False))
    assert out.result is not None
    (item,) = out.result.items
    assert "Litoral" in item.text and item.lang == "en"
    assert rec.requests[0].query == {
        "actor": "insightcrime.example.com",
        "limit": "100",
        "filter": "posts_no_replies",
    }
    assert "authorization" not in rec.requests[0].headers


def test_bad_app_password_is_a_clear_permanent_error() -> None:
    with replay(route) as rec:
        (out,) = collect([_search(rec.url)], {}, _settings(rec.url, password="wrong"))
    assert not out.ok and out.error_kind == "permanent"
    assert "SENTINELA_BLUESKY_APP_PASSWORD" in (out.error or "") and "401" in (out.error or "")


def _cursor(engine: sa.Engine) -> str | None:
    with engine.connect() as conn:
        return conn.execute(
            sa.text("SELECT cursor FROM sources WHERE name = 'bsky-search'")
        ).scalar()


def test_cursor_becomes_since_and_rate_limit_keeps_it(engine) -> None:
    with replay(route) as rec:
        settings = _settings(rec.url)
        src = _search(rec.url)
        first = RunSummary()
        ingest(engine, settings, [src], first)
        assert first.reports["bsky-search"].new == 3
        assert _cursor(engine) == "2026-03-02T15:20:00Z"
        second = RunSummary()
        ingest(engine, settings, [src], second)
        last = rec.requests[-1]
        assert last.query["since"] == "2026-03-02T15:20:00Z" and "cursor" not in last.query
        # `since` is inclusive: the boundary post comes back and is not stored twice.
        assert second.reports["bsky-search"].fetched == 2
        assert second.reports["bsky-search"].new == 1
        assert _cursor(engine) == "2026-03-02T18:45:00Z"
        rec.state["throttle"] = True
        third = RunSummary()
        ingest(engine, settings, [src], third)
    rep = third.reports["bsky-search"]
    assert rep.new == 0 and "rate limited" in rep.errors[0] and "cursor kept" in rep.errors[0]
    assert _cursor(engine) == "2026-03-02T18:45:00Z"
    assert "rate limited" in format_summary(third)
