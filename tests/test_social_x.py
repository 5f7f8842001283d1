"""X API v2 recent-search connector against a local server replaying v2 payloads."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import sqlalchemy as sa

from pipeline.config import Settings
from pipeline.ingest.social.runner import collect
from pipeline.items import Source
from pipeline.run import RunSummary, format_summary, ingest
from tests.social_replay import Replay, Reply, Request, fixture, json_reply, replay

TOKEN = "AAAAAAAAAAAAAAAAAAAAAtest%2Fbearer"
PATH = "/2/tweets/search/recent"


def route(req: Request, rec: Replay) -> Reply:
    if req.path != PATH:
        return 404, {}, b'{"title":"Not Found Error","status":404}'
    if req.headers.get("authorization") != f"Bearer {TOKEN}":
        body = b'{"title":"Unauthorized","type":"about:blank","status":401,"detail":"Unauthorized"}'
        return 401, {"Content-Type": "application/problem+json"}, body
    q = req.query
    if q.get("next_token", "").endswith("jb1"):
        if rec.state.get("throttle"):
            reset = str(int(time.time()) + 900)
            headers = {
                "x-rate-limit-limit": "60",
                "x-rate-limit-remaining": "0",
                "x-rate-limit-reset": reset,
            }
            return (
                429,
                headers,
                b'{"title":"Too Many Requests","detail":"Too Many Requests","type":"about:blank","status":429}',
            )
        return json_reply(fixture("x/search_page2.json"))
    if q.get("next_token"):
        return json_reply(fixture("x/search_empty.json"))
    if q.get("since_id") == "1896300000000000300":
        return json_reply(fixture("x/search_newer.json"))
    if q.get("since_id"):
        return json_reply(fixture("x/search_empty.json"))
    return json_reply(fixture("x/search_page1.json"))


def _src(base: str) -> Source:
    return Source(
        name="x-tda",
        kind="x",
        url=base,
        options={"query": '"Tren de Aragua" -is:retweet', "max_pages": "2"},
        allow_private=True,
    )


def _settings(token: str | None = TOKEN) -> Settings:
    return Settings.from_env({}).with_(
        fetch_timeout_s=5.0, social_max_wait_s=3.0, x_bearer_token=token
    )


def test_without_token_the_source_is_skipped_and_makes_no_request() -> None:
    with replay(route) as rec:
        (out,) = collect([_src(rec.url)], {}, _settings(None))
        assert rec.requests == []
    assert out.ok and out.result is not None
    assert out.result.skipped and "SENTINELA_X_BEARER_TOKEN" in out.result.skipped


def test_search_sends_bearer_and_follows_next_token_up_to_the_cap() -> None:
    with replay(route) as rec:
        (out,) = collect([_src(rec.url)], {}, _settings())
    assert out.result is not None
    res = out.result
    assert [r.query.get("next_token", "")[-3:] for r in rec.requests] == ["", "jb1"]
    assert all(r.headers["authorization"] == f"Bearer {TOKEN}" for r in rec.requests)
    first = rec.requests[0].query
    assert first["query"] == '"Tren de Aragua" -is:retweet' and first["max_results"] == "100"
    assert "created_at" in first["tweet.fields"] and first["expansions"] == "author_id"
    a, b, c = res.items
    assert a.url == "https://x.com/sucesos_ve/status/1896300000000000300"
    assert a.title.startswith("ÚLTIMA HORA") and "Más información" not in a.title
    assert "&amp;" not in a.text and "Tocorón & detenciones" in a.text and "\n" not in a.text
    assert a.lang == "es" and a.author == "sucesos_ve"
    assert a.published_at == datetime(2026, 3, 2, 17, 0, tzinfo=UTC)
    assert b.lang == "pt" and b.text.endswith("apontados como lideranças.")  # note_tweet
    assert c.lang == "en"  # "und" from X: detected
    assert res.cursor == "1896300000000000300"


def _cursor(engine: sa.Engine) -> str | None:
    with engine.connect() as conn:
        return conn.execute(sa.text("SELECT cursor FROM sources WHERE name = 'x-tda'")).scalar()


def test_since_id_on_the_next_run(engine, settings: Settings) -> None:
    with replay(route) as rec:
        s = settings.with_(x_bearer_token=TOKEN)
        first = RunSummary()
        ingest(engine, s, [_src(rec.url)], first)
        assert first.reports["x-tda"].new == 3
        rec.requests.clear()
        second = RunSummary()
        ingest(engine, s, [_src(rec.url)], second)
    assert rec.requests[0].query["since_id"] == "1896300000000000300"
    assert second.reports["x-tda"].new == 1 and _cursor(engine) == "1896400000000000400"


def test_skipped_is_reported_as_skipped_not_failed(engine, settings: Settings) -> None:
    summary = RunSummary()
    ingest(engine, settings, [_src("http://127.0.0.1:9")], summary)
    rep = summary.reports["x-tda"]
    assert rep.skipped and not rep.errors and summary.totals.errors == []
    assert "(skipped: X needs an API bearer token" in format_summary(summary)
    with engine.connect() as conn:
        row = conn.execute(sa.text("SELECT consecutive_failures FROM sources")).scalar()
    assert row == 0


def test_rate_limit_reset_too_far_keeps_first_page_and_cursor() -> None:
    with replay(route) as rec:
        rec.state["throttle"] = True
        (out,) = collect([_src(rec.url)], {}, _settings())
    res = out.result
    assert res is not None and len(res.items) == 2 and res.cursor is None
    assert res.interrupted and "rate limited" in res.interrupted


def test_bad_token_is_a_permanent_error_naming_the_setting() -> None:
    with replay(route) as rec:
        (out,) = collect([_src(rec.url)], {}, _settings("wrong"))
    assert out.error_kind == "permanent"
    assert "401" in (out.error or "") and "SENTINELA_X_BEARER_TOKEN" in (out.error or "")
