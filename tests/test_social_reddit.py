"""Reddit connector against a local server replaying Listing/t3 JSON."""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa

from pipeline.config import Settings
from pipeline.ingest.social.runner import collect
from pipeline.items import Source
from pipeline.run import RunSummary, ingest
from tests.social_replay import Replay, Reply, Request, fixture, json_reply, replay


def route(req: Request, rec: Replay) -> Reply:
    q = req.query
    if req.path == "/r/brasil/search.json":
        return json_reply(fixture("reddit/search_brasil.json"))
    if req.path != "/r/venezuela/new.json":
        return 404, {}, b'{"message": "Not Found", "error": 404}'
    if rec.state.get("broken"):
        return json_reply(b'{"kind": "Listing", "data": {"children": "oops"}}')
    after = q.get("after")
    if after == "t3_1j0aaa1":
        if rec.state.get("throttle"):
            headers = {"x-ratelimit-remaining": "0", "x-ratelimit-reset": "540"}
            return 429, headers, b'{"message": "Too Many Requests", "error": 429}'
        return json_reply(fixture("reddit/new_page2.json"))
    if after == "t3_1izyy88":
        return json_reply(fixture("reddit/new_page3.json"))
    if rec.state.get("newer"):
        return json_reply(fixture("reddit/new_newer.json"))
    return json_reply(fixture("reddit/new_page1.json"))


def _src(base: str, **options: str) -> Source:
    return Source(
        name="r-venezuela",
        kind="reddit",
        url=base,
        lang="es",
        options={"subreddit": "venezuela", "max_pages": "2", **options},
        allow_private=True,
    )


def _settings() -> Settings:
    return Settings.from_env({}).with_(fetch_timeout_s=5.0, social_max_wait_s=3.0)


def test_listing_pages_with_after_up_to_the_cap() -> None:
    with replay(route) as rec:
        (out,) = collect([_src(rec.url)], {}, _settings())
    assert out.result is not None
    res = out.result
    assert [r.query.get("after") for r in rec.requests] == [None, "t3_1j0aaa1"]
    assert rec.requests[0].query == {"limit": "100", "raw_json": "1"}
    assert len(res.items) == 5
    first, link_post = res.items[0], res.items[1]
    assert first.url == (
        "https://www.reddit.com/r/venezuela/comments/1j0ccc3/requisa_en_tocorón_encuentran_armas_y_u/"
    )
    assert first.title == "Requisa en Tocorón: encuentran armas y un túnel"
    assert first.text == "Según fuentes de la GNB, la requisa duró 12 horas & hubo traslados."
    assert first.lang == "es" and first.guid == "t3_1j0ccc3" and first.author == "caraqueno_88"
    assert first.published_at == datetime.fromtimestamp(1772464800, tz=UTC)
    assert link_post.text == "" and link_post.title.startswith("Tren de Aragua: capturan")
    assert res.cursor == "t3_1j0ccc3@1772464800.0"


def test_search_within_a_subreddit() -> None:
    with replay(route) as rec:
        src = Source(
            name="r-brasil",
            kind="reddit",
            url=rec.url,
            lang="pt",
            options={"subreddit": "r/brasil", "query": "presídio facção"},
            allow_private=True,
        )
        (out,) = collect([src], {}, _settings())
    assert out.result is not None
    (item,) = out.result.items
    assert item.lang == "pt" and "Alcaçuz" in item.title
    assert rec.requests[0].query == {
        "limit": "100",
        "raw_json": "1",
        "q": "presídio facção",
        "restrict_sr": "1",
        "sort": "new",
        "t": "all",
    }


def _cursor(engine: sa.Engine) -> str | None:
    with engine.connect() as conn:
        return conn.execute(
            sa.text("SELECT cursor FROM sources WHERE name = 'r-venezuela'")
        ).scalar()


def test_next_run_stops_at_the_stored_post(engine, settings: Settings) -> None:
    with replay(route) as rec:
        src = _src(rec.url)
        first = RunSummary()
        ingest(engine, settings, [src], first)
        assert first.reports["r-venezuela"].new == 5
        rec.requests.clear()
        rec.state["newer"] = True
        second = RunSummary()
        ingest(engine, settings, [src], second)
    # The first page holds the new post, then the stored one: no second page is needed.
    assert len(rec.requests) == 1
    assert second.reports["r-venezuela"].fetched == 1 and second.reports["r-venezuela"].new == 1
    assert _cursor(engine) == "t3_1j0ddd4@1772470000.0"


def test_long_rate_limit_keeps_page_one_and_the_old_cursor(engine, settings: Settings) -> None:
    with replay(route) as rec:
        rec.state["throttle"] = True
        summary = RunSummary()
        ingest(engine, settings.with_(social_max_wait_s=5.0), [_src(rec.url)], summary)
    rep = summary.reports["r-venezuela"]
    assert rep.new == 3 and "540s" in rep.errors[0]
    # Newest first: the unread posts are older than page one, so the cursor must not move.
    assert _cursor(engine) is None


def test_malformed_listing_is_a_clear_error() -> None:
    with replay(route) as rec:
        rec.state["broken"] = True
        (out,) = collect([_src(rec.url)], {}, _settings())
    assert not out.ok and "children is str" in (out.error or "")
