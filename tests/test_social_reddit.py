"""Reddit connector against a local server replaying Listing/t3 JSON: the anonymous
endpoints (`/r/<sub>/new.json`) and, for app-only OAuth, the token endpoint plus the OAuth
host's paths (`/r/<sub>/new`, bearer token required)."""

from __future__ import annotations

import base64
import json
import time
from datetime import UTC, datetime
from urllib.parse import parse_qsl

import sqlalchemy as sa

from pipeline.config import Settings
from pipeline.ingest.social.runner import collect
from pipeline.items import Source
from pipeline.run import RunSummary, ingest
from tests import test_social_mastodon
from tests.social_replay import Replay, Reply, Request, fixture, json_reply, replay

CLIENT_ID = "p-jcoLKBynTLew"
CLIENT_SECRET = "gko_LXELoV07ZBNUXrvWZfzE3aI"
TOKEN_PATH = "/api/v1/access_token"
LISTINGS = {"/r/venezuela/new", "/r/brasil/search"}
UNAUTHORIZED = b'{"message": "Unauthorized", "error": 401}'


def _token_endpoint(req: Request, rec: Replay) -> Reply:
    basic = base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
    if req.method != "POST":
        return 405, {}, b'{"message": "Method Not Allowed", "error": 405}'
    if req.headers.get("authorization") != f"Basic {basic}":
        return 401, {"Content-Type": "application/json"}, UNAUTHORIZED
    if dict(parse_qsl(req.body.decode())) != {"grant_type": "client_credentials"}:
        # What Reddit answers to a missing or wrong grant: 200 with an error.
        return json_reply(b'{"error": "unsupported_grant_type"}')
    issued: list[str] = rec.state.setdefault("issued", [])
    issued.append(f"app-token-{len(issued) + 1}")
    doc = {"access_token": issued[-1], "token_type": "bearer", "expires_in": 86400, "scope": "*"}
    return json_reply(json.dumps(doc).encode())


def _bearer_refused(req: Request, rec: Replay) -> bool:
    """Only the newest token is valid, until the test state expires or revokes it."""
    issued: list[str] = rec.state.get("issued", [])
    revoked: set[str] = rec.state.setdefault("revoked", set())
    current = issued[-1] if issued else None
    if current is None or current in revoked:
        return True
    if req.headers.get("authorization") != f"bearer {current}":
        return True
    served = sum(r.path in LISTINGS for r in rec.requests)
    if rec.state.get("revoke_on_use") or served == rec.state.get("expire_at_request"):
        revoked.add(current)
        return True
    return False


def route(req: Request, rec: Replay) -> Reply:
    if req.path == TOKEN_PATH:
        return _token_endpoint(req, rec)
    oauth = req.path in LISTINGS
    stem = req.path.removesuffix(".json")
    if stem not in LISTINGS:
        return 404, {}, b'{"message": "Not Found", "error": 404}'
    headers: dict[str, str] = {}
    if oauth:
        if _bearer_refused(req, rec):
            return 401, {"Content-Type": "application/json"}, UNAUTHORIZED
        remaining, reset = rec.state.get("budget", ("598.0", "540"))
        used = sum(r.path in LISTINGS for r in rec.requests)
        headers = {
            "x-ratelimit-used": str(used),
            "x-ratelimit-remaining": remaining,
            "x-ratelimit-reset": reset,
        }
    q = req.query
    if stem == "/r/brasil/search":
        return json_reply(fixture("reddit/search_brasil.json"), headers)
    if rec.state.get("broken"):
        return json_reply(b'{"kind": "Listing", "data": {"children": "oops"}}')
    after = q.get("after")
    if after == "t3_1j0aaa1":
        if rec.state.get("throttle"):
            headers = {"x-ratelimit-remaining": "0", "x-ratelimit-reset": "540"}
            return 429, headers, b'{"message": "Too Many Requests", "error": 429}'
        return json_reply(fixture("reddit/new_page2.json"), headers)
    if after == "t3_1izyy88":
        return json_reply(fixture("reddit/new_page3.json"), headers)
    if rec.state.get("newer"):
        return json_reply(fixture("reddit/new_newer.json"), headers)
    return json_reply(fixture("reddit/new_page1.json"), headers)


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


# --- app-only OAuth -------------------------------------------------------------------------


def _oauth_settings(base: Settings | None = None, secret: str = CLIENT_SECRET) -> Settings:
    return (base or _settings()).with_(reddit_client_id=CLIENT_ID, reddit_client_secret=secret)


def _oauth(src: Source, base: str) -> Source:
    """The same source with its token endpoint and OAuth host on the replay."""
    opts = {**src.options, "token_url": base + TOKEN_PATH, "oauth_url": base}
    return Source(
        name=src.name, kind=src.kind, url=src.url, lang=src.lang, options=opts, allow_private=True
    )


def _search_src(base: str) -> Source:
    return Source(
        name="r-brasil",
        kind="reddit",
        url=base,
        lang="pt",
        options={"subreddit": "brasil", "query": "presídio facção"},
        allow_private=True,
    )


def _token_posts(rec: Replay) -> list[Request]:
    return [r for r in rec.requests if r.path == TOKEN_PATH]


def _listing_calls(rec: Replay) -> list[tuple[str, str | None, str | None]]:
    return [
        (r.path, r.query.get("after"), r.headers.get("authorization"))
        for r in rec.requests
        if r.path != TOKEN_PATH
    ]


def test_oauth_reads_listing_and_search_with_one_token_for_the_run() -> None:
    with replay(route) as rec:
        outs = collect(
            [_oauth(_src(rec.url), rec.url), _oauth(_search_src(rec.url), rec.url)],
            {},
            _oauth_settings(),
        )
    (post,) = _token_posts(rec)  # one token, shared by both sources
    assert post.headers["content-type"] == "application/x-www-form-urlencoded"
    assert post.body == b"grant_type=client_credentials"
    assert sorted(_listing_calls(rec), key=str) == sorted(
        [
            ("/r/venezuela/new", None, "bearer app-token-1"),
            ("/r/venezuela/new", "t3_1j0aaa1", "bearer app-token-1"),
            ("/r/brasil/search", None, "bearer app-token-1"),
        ],
        key=str,
    )
    search_req = next(r for r in rec.requests if r.path == "/r/brasil/search")
    assert search_req.query["q"] == "presídio facção" and search_req.query["restrict_sr"] == "1"
    listing, search = (o.result for o in outs)
    assert listing is not None and search is not None
    assert len(listing.items) == 5 and listing.cursor == "t3_1j0ccc3@1772464800.0"
    assert listing.items[0].url.startswith("https://www.reddit.com/r/venezuela/comments/1j0ccc3/")
    (item,) = search.items
    assert "Alcaçuz" in item.title


def test_oauth_next_run_goes_on_from_the_cursor(engine, settings: Settings) -> None:
    s = _oauth_settings(settings)
    with replay(route) as rec:
        src = _oauth(_src(rec.url), rec.url)
        first = RunSummary()
        ingest(engine, s, [src], first)
        assert first.reports["r-venezuela"].new == 5
        assert _cursor(engine) == "t3_1j0ccc3@1772464800.0"
        rec.requests.clear()
        rec.state["newer"] = True
        second = RunSummary()
        ingest(engine, s, [src], second)
    # A new run asks for a new token, then one page reaches the stored post.
    assert [r.path for r in rec.requests] == [TOKEN_PATH, "/r/venezuela/new"]
    assert rec.requests[1].headers["authorization"] == "bearer app-token-2"
    assert second.reports["r-venezuela"].new == 1 and not second.reports["r-venezuela"].errors
    assert _cursor(engine) == "t3_1j0ddd4@1772470000.0"


def test_expired_token_is_replaced_once_and_the_page_retried() -> None:
    with replay(route) as rec:
        rec.state["expire_at_request"] = 2  # the token dies between page one and page two
        (out,) = collect([_oauth(_src(rec.url), rec.url)], {}, _oauth_settings())
    assert out.ok and out.result is not None
    assert [r.path for r in rec.requests] == [TOKEN_PATH, *["/r/venezuela/new"] * 2] + [
        TOKEN_PATH,
        "/r/venezuela/new",
    ]
    assert _listing_calls(rec) == [
        ("/r/venezuela/new", None, "bearer app-token-1"),
        ("/r/venezuela/new", "t3_1j0aaa1", "bearer app-token-1"),
        ("/r/venezuela/new", "t3_1j0aaa1", "bearer app-token-2"),
    ]
    assert len(out.result.items) == 5 and out.result.pages == 2


def test_token_refused_even_when_fresh_fails_after_one_refresh() -> None:
    with replay(route) as rec:
        rec.state["revoke_on_use"] = True
        (out,) = collect([_oauth(_src(rec.url), rec.url)], {}, _oauth_settings())
    assert len(_token_posts(rec)) == 2
    assert not out.ok and out.error_kind == "permanent"
    assert "HTTP 401" in (out.error or "") and "SENTINELA_REDDIT_CLIENT_SECRET" in (out.error or "")


def test_bad_credentials_fail_the_reddit_sources_only(engine, settings: Settings) -> None:
    with replay(route) as rec, replay(test_social_mastodon.route) as masto:
        sources = [
            _oauth(_src(rec.url), rec.url),
            _oauth(_search_src(rec.url), rec.url),
            Source(
                name="masto",
                kind="mastodon",
                url=masto.url,
                options={"hashtag": "TrenDeAragua", "max_pages": "2"},
                allow_private=True,
            ),
        ]
        summary = RunSummary()
        ingest(engine, _oauth_settings(settings, secret="wrong"), sources, summary)
    # Rejected credentials are asked about once per run; no listing is read anonymously.
    assert [r.path for r in rec.requests] == [TOKEN_PATH]
    for name in ("r-venezuela", "r-brasil"):
        rep = summary.reports[name]
        assert rep.new == 0 and len(rep.errors) == 1
        assert "HTTP 401" in rep.errors[0] and "SENTINELA_REDDIT_CLIENT_ID" in rep.errors[0]
        assert "wrong" not in rep.errors[0]  # the secret itself never reaches the summary
    assert summary.reports["masto"].new == 4 and not summary.reports["masto"].errors


def test_wrong_grant_answer_is_a_credentials_error() -> None:
    """Reddit answers some refusals with 200 and an `error` field instead of a 401."""

    def no_grant(req: Request, rec: Replay) -> Reply:
        if req.path == TOKEN_PATH:
            return json_reply(b'{"error": "invalid_grant"}')
        return route(req, rec)

    with replay(no_grant) as rec:
        (out,) = collect([_oauth(_src(rec.url), rec.url)], {}, _oauth_settings())
    assert not out.ok and out.error_kind == "permanent"
    assert "invalid_grant" in (out.error or "") and "SENTINELA_REDDIT_CLIENT_ID" in (
        out.error or ""
    )


def test_exhausted_budget_waits_for_a_short_reset() -> None:
    with replay(route) as rec:
        rec.state["budget"] = ("0.0", "1")
        started = time.monotonic()
        (out,) = collect([_oauth(_src(rec.url), rec.url)], {}, _oauth_settings())
        elapsed = time.monotonic() - started
    assert out.result is not None and out.result.interrupted is None
    assert len(out.result.items) == 5 and elapsed >= 0.9


def test_exhausted_budget_with_a_long_reset_stops_and_keeps_the_cursor(
    engine, settings: Settings
) -> None:
    with replay(route) as rec:
        rec.state["budget"] = ("0.0", "540")
        summary = RunSummary()
        ingest(
            engine,
            _oauth_settings(settings).with_(social_max_wait_s=5.0),
            [_oauth(_src(rec.url), rec.url)],
            summary,
        )
    # Page one is stored; page two is never asked for while the budget is spent.
    assert [r.query.get("after") for r in rec.requests if r.path != TOKEN_PATH] == [None]
    rep = summary.reports["r-venezuela"]
    assert rep.new == 3 and "540s" in rep.errors[0]
    assert _cursor(engine) is None


def test_oauth_429_is_handled_like_the_anonymous_one() -> None:
    with replay(route) as rec:
        rec.state["throttle"] = True
        (out,) = collect([_oauth(_src(rec.url), rec.url)], {}, _oauth_settings())
    assert out.result is not None and len(out.result.items) == 3
    assert "540s" in (out.result.interrupted or "") and out.result.cursor is None


def test_half_configured_credentials_read_anonymously_with_a_note() -> None:
    with replay(route) as rec:
        s = _settings().with_(reddit_client_id=CLIENT_ID)
        (out,) = collect([_oauth(_src(rec.url), rec.url)], {}, s)
    assert [r.path for r in rec.requests] == ["/r/venezuela/new.json"] * 2
    assert all("authorization" not in r.headers for r in rec.requests)
    assert out.result is not None and len(out.result.items) == 5
    assert any("SENTINELA_REDDIT_CLIENT_SECRET is not" in n for n in out.result.notes)


def test_credentials_come_from_the_environment_and_stay_out_of_repr() -> None:
    s = Settings.from_env(
        {"SENTINELA_REDDIT_CLIENT_ID": CLIENT_ID, "SENTINELA_REDDIT_CLIENT_SECRET": CLIENT_SECRET}
    )
    assert (s.reddit_client_id, s.reddit_client_secret) == (CLIENT_ID, CLIENT_SECRET)
    assert CLIENT_SECRET not in repr(s) and CLIENT_ID not in repr(s)
