"""Mastodon connector against a local server replaying Mastodon REST payloads."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from pipeline.config import Settings
from pipeline.ingest.social.runner import collect
from pipeline.items import Source
from pipeline.run import RunSummary, ingest
from tests.social_replay import Replay, Reply, Request, fixture, json_reply, replay

TAG = "/api/v1/timelines/tag/TrenDeAragua"
NEWEST = "113500000000000300"


def _links(base: str, older: str, newer: str) -> dict[str, str]:
    return {
        "Link": f'<{base}{TAG}?max_id={older}>; rel="next", <{base}{TAG}?min_id={newer}>; rel="prev"'
    }


def route(req: Request, rec: Replay) -> Reply:
    q = req.query
    if req.path == "/api/v1/accounts/lookup" and q.get("acct") == "crimewatch":
        return json_reply(fixture("mastodon/account_lookup.json"))
    if req.path == "/api/v1/accounts/109300000000000500/statuses":
        return json_reply(fixture("mastodon/account_statuses.json"))
    if req.path != TAG:
        return 404, {}, b'{"error":"Record not found"}'
    if rec.state.get("broken"):
        return json_reply(b'{"error":"This action is not allowed"}')
    if rec.state.get("throttle_first") and len(rec.requests) == 1:
        return 429, {"Retry-After": "1"}, b'{"error":"Too many requests"}'
    if q.get("min_id") == NEWEST:
        return json_reply(
            fixture("mastodon/tag_newer.json"),
            _links(rec.url, "113500000000000410", "113500000000000410"),
        )
    if "min_id" in q:
        if rec.state.get("throttle_newer"):
            reset = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
            return 429, {"X-RateLimit-Reset": reset}, b'{"error":"Too many requests"}'
        return json_reply(b"[]")
    if q.get("max_id") == "113500000000000280":
        return json_reply(
            fixture("mastodon/tag_page2.json"),
            _links(rec.url, "113498000000000050", "113499000000000100"),
        )
    if q.get("max_id") == "113498000000000050":
        return json_reply(b"[]")
    return json_reply(
        fixture("mastodon/tag_page1.json"), _links(rec.url, "113500000000000280", NEWEST)
    )


def _src(base: str, **options: str) -> Source:
    opts = {"hashtag": "TrenDeAragua", "max_pages": "2", **options}
    if "account" in options:
        opts.pop("hashtag")
    return Source(name="masto", kind="mastodon", url=base, options=opts, allow_private=True)


def _settings() -> Settings:
    return Settings.from_env({}).with_(fetch_timeout_s=5.0, social_max_wait_s=3.0)


def test_first_run_parses_statuses_and_stops_at_page_cap() -> None:
    with replay(route) as rec:
        (out,) = collect([_src(rec.url)], {}, _settings())
    assert out.ok and out.result is not None
    res = out.result
    # Page 1 and page 2 (rel="next"); the page cap of 2 stops before the third.
    assert [r.query.get("max_id") for r in rec.requests] == [None, "113500000000000280"]
    assert rec.requests[0].query["limit"] == "40"
    assert res.pages == 2 and res.cursor == NEWEST
    assert [i.url for i in res.items] == [
        "https://mastodon.social/@cronista_ve/113500000000000300",
        "https://masto.example.br/@reporter/112000000000000777",
        "https://mastodon.social/@crimewatch/113499000000000100",
        "https://mastodon.social/@cronista_ve/113498000000000050",
    ]
    first, spoiler, english, _ = res.items
    assert first.text.startswith("Requisa en la cárcel de Tocuyito")
    assert (
        "<" not in first.text and "&amp;" not in first.text and "Detalles & fuentes" in first.text
    )
    assert first.title.startswith("Requisa en la cárcel") and "Detalles" not in first.title
    assert first.lang == "es" and first.author == "cronista_ve"
    assert first.published_at == datetime(2026, 3, 2, 14, 5, 12, tzinfo=UTC)
    assert first.canonical_url == "https://mastodon.social/@cronista_ve/113500000000000300"
    assert spoiler.title == "Violência em Roraima" and spoiler.lang == "pt"
    assert spoiler.text.startswith("Violência em Roraima. Polícia Federal")
    assert english.lang == "en" and "Chile's prosecutors" in english.text
    assert any("media only" in n for n in res.notes)


def test_account_lookup_and_reblogs() -> None:
    with replay(route) as rec:
        (out,) = collect([_src(rec.url, account="@crimewatch")], {}, _settings())
    assert out.result is not None
    (item,) = out.result.items
    assert item.url == "https://mastodon.social/@cronista_ve/113500000000000300"
    assert item.lang == "es" and item.author == "cronista_ve"
    assert rec.requests[1].query["exclude_replies"] == "true"


def _cursor(engine: sa.Engine) -> str | None:
    with engine.connect() as conn:
        return conn.execute(sa.text("SELECT cursor FROM sources WHERE name = 'masto'")).scalar()


def test_cursor_is_stored_and_next_run_reads_only_newer(engine, settings: Settings) -> None:
    with replay(route) as rec:
        src = _src(rec.url)
        first = RunSummary()
        ingest(engine, settings, [src], first)
        assert first.reports["masto"].new == 4 and _cursor(engine) == NEWEST
        rec.requests.clear()
        second = RunSummary()
        ingest(engine, settings, [src], second)
        # min_id walks forward from the cursor; rel="prev" is followed until a page is empty.
        assert [r.query.get("min_id") for r in rec.requests] == [NEWEST, "113500000000000410"]
        assert second.reports["masto"].new == 1 and not second.reports["masto"].errors
        assert _cursor(engine) == "113500000000000410"
        third = RunSummary()
        ingest(engine, settings, [src], third)
        assert third.reports["masto"].new == 0 and _cursor(engine) == "113500000000000410"


def test_retry_after_short_wait_is_honoured() -> None:
    with replay(route) as rec:
        rec.state["throttle_first"] = True
        (out,) = collect([_src(rec.url, max_pages="1")], {}, _settings())
    assert out.ok and out.result is not None and len(out.result.items) == 2
    assert len(rec.requests) == 2


def test_long_rate_limit_stops_source_and_keeps_what_was_read(engine, settings: Settings) -> None:
    with replay(route) as rec:
        rec.state["throttle_newer"] = True
        src = _src(rec.url)
        with engine.begin() as conn:
            from pipeline.storage import repo

            ids = repo.sync_sources(conn, [src])
            repo.record_cursor(conn, ids["masto"], NEWEST)
        summary = RunSummary()
        ingest(engine, settings.with_(social_max_wait_s=5.0), [src], summary)
    rep = summary.reports["masto"]
    # The first forward page was stored; the second got a one-hour 429. Pages read forward
    # from the cursor are contiguous, so the cursor moves to what was read, no further.
    assert rep.new == 1 and rep.errors and "rate limited" in rep.errors[0]
    assert _cursor(engine) == "113500000000000410"


def test_payload_that_is_not_a_timeline_is_a_clear_error() -> None:
    with replay(route) as rec:
        rec.state["broken"] = True
        (out,) = collect([_src(rec.url)], {}, _settings())
    assert not out.ok and out.error_kind == "permanent"
    assert "masto" in (out.error or "") and "the response is dict" in (out.error or "")
    assert out.bad_excerpt and b"not allowed" in out.bad_excerpt
