"""Reddit subreddit listings, public JSON API.

    options: {subreddit: venezuela}                   GET {url}/r/venezuela/new.json
    options: {subreddit: brasil, query: presídio}     GET {url}/r/brasil/search.json
                                                          ?q=…&restrict_sr=1&sort=new

Listings run newest first and page back with `after=<fullname>`. Each run walks back
until it meets the newest post stored last time (by fullname, or by creation time when
that post has been deleted; `before=<fullname>` would return nothing in that case), up to
max_pages. Cursor: "<fullname>@<created_utc>" of the newest post stored.

With SENTINELA_REDDIT_CLIENT_ID and SENTINELA_REDDIT_CLIENT_SECRET set, the same listings
are read through app-only OAuth from `options.oauth_url` (default https://oauth.reddit.com,
paths without `.json`), the token coming from `options.token_url` (reddit_auth.py).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import quote

from pipeline.ingest.normalize import html_to_text
from pipeline.ingest.social.base import (
    ConnectorContext,
    ConnectorResult,
    RateLimitedError,
    make_item,
    max_pages,
    parse_time,
    register,
    require,
)
from pipeline.ingest.social.http import Response, SocialHttp
from pipeline.ingest.social.reddit_auth import (
    OAUTH_URL,
    TOKEN_URL,
    AppSession,
    half_configured,
    has_app_credentials,
    respect_budget,
)
from pipeline.items import Item, Source

PAGE_SIZE = "100"
WEB = "https://www.reddit.com"


def _parse_cursor(cursor: str | None) -> tuple[str | None, float | None]:
    if not cursor:
        return None, None
    name, _, created = cursor.partition("@")
    try:
        return name or None, float(created) if created else None
    except ValueError:
        return name or None, None


def post_item(source: Source, post: dict[str, Any], where: str, body: bytes) -> Item:
    permalink = require(post.get("permalink"), str, "post.permalink", where, body)
    title = html_to_text(str(require(post.get("title"), str, "post.title", where, body)))
    return make_item(
        source,
        url=WEB + permalink if permalink.startswith("/") else permalink,
        title=title,
        text=html_to_text(str(post.get("selftext") or "")),
        published_at=parse_time(post.get("created_utc")),
        guid=str(post.get("name") or "") or None,
        author=str(post["author"]) if post.get("author") else None,
    )


class RedditConnector:
    kind = "reddit"

    async def fetch(
        self, http: SocialHttp, ctx: ConnectorContext, source: Source, cursor: str | None
    ) -> ConnectorResult:
        opts = source.options
        sub = quote(opts["subreddit"].removeprefix("r/").strip("/"), safe="")
        get: Callable[[str, dict[str, str]], Awaitable[tuple[Any, Response]]]
        oauth = has_app_credentials(ctx.settings)
        if oauth:
            get = AppSession(http, ctx, opts.get("token_url") or TOKEN_URL).get_json
            base, suffix = (opts.get("oauth_url") or OAUTH_URL).rstrip("/"), ""
        else:
            get = http.get_json
            base, suffix = source.url.rstrip("/"), ".json"
        # raw_json=1: text fields come unescaped (no &amp;), as the web shows them.
        params = {"limit": PAGE_SIZE, "raw_json": "1"}
        if opts.get("query"):
            endpoint = f"{base}/r/{sub}/search{suffix}"
            params.update(q=opts["query"], restrict_sr="1", sort="new", t="all")
        else:
            endpoint = f"{base}/r/{sub}/new{suffix}"
        known_name, known_created = _parse_cursor(cursor)
        out = ConnectorResult(cursor=cursor)
        if note := half_configured(ctx.settings):
            out.notes.append(note)
        newest: tuple[str, float] | None = None
        reached = False
        resp: Response | None = None
        try:
            while out.pages < max_pages(source, ctx.settings):
                if oauth and resp is not None:
                    await respect_budget(http, resp)
                data, resp = await get(endpoint, params)
                out.pages += 1
                listing = require(data, dict, "the response", resp.url, resp.body)
                inner = require(listing.get("data"), dict, "Listing.data", resp.url, resp.body)
                children = require(inner.get("children"), list, "children", resp.url, resp.body)
                for child in children:
                    require(child, dict, "a child", resp.url, resp.body)
                    if child.get("kind") != "t3":
                        continue
                    post = require(child.get("data"), dict, "t3.data", resp.url, resp.body)
                    name = str(post.get("name") or "")
                    created = post.get("created_utc")
                    created_f = float(created) if isinstance(created, int | float) else None
                    if (known_name and name == known_name) or (
                        known_created is not None
                        and created_f is not None
                        and created_f < known_created
                    ):
                        reached = True
                        break
                    out.items.append(post_item(source, post, resp.url, resp.body))
                    if created_f is not None and (newest is None or created_f > newest[1]):
                        newest = (name, created_f)
                after = inner.get("after")
                if reached or not children or not isinstance(after, str) or not after:
                    break
                params = {**params, "after": after}
            else:
                out.notes.append(f"page cap ({out.pages}) reached; older posts not read")
        except RateLimitedError as exc:
            # Newest first: the unread posts lie between the cursor and what was read.
            out.interrupted = f"{exc}; stopped after {out.pages} page(s), cursor kept"
            return out
        if newest is not None:
            out.cursor = f"{newest[0]}@{newest[1]!r}"
        return out


register(RedditConnector())
