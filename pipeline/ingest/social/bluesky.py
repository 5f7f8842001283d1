"""Bluesky over the AT Protocol XRPC HTTP API.

    options: {actor: handle-or-did}      app.bsky.feed.getAuthorFeed (public, no login)
    options: {query: "Tren de Aragua"}   app.bsky.feed.searchPosts, sort=latest; optional
                                         `lang: es` filter

Bluesky disabled unauthenticated post search on its public AppView in 2025, so a `query`
source needs SENTINELA_BLUESKY_HANDLE + SENTINELA_BLUESKY_APP_PASSWORD (an app password,
not the account password); without them it is reported as skipped. With them, one
com.atproto.server.createSession per run is made on the PDS (SENTINELA_BLUESKY_PDS_URL,
default https://bsky.social, or `options.pds_url`) and every request of the run goes to that
PDS with the session's access token; otherwise requests go to the source `url` (default
https://public.api.bsky.app).

Cursor: the newest post time stored (the AppView's sort time: the earlier of createdAt and
indexedAt). Search passes it as `since`; author feeds walk back until they reach it. The
API's own `cursor` is only used to page within one run, up to max_pages.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pipeline.config import Settings
from pipeline.errors import PermanentError
from pipeline.ingest.normalize import html_to_text
from pipeline.ingest.social.base import (
    ConnectorContext,
    ConnectorResult,
    PayloadError,
    RateLimitedError,
    first_line,
    make_item,
    max_pages,
    parse_time,
    register,
    require,
)
from pipeline.ingest.social.http import SocialHttp
from pipeline.items import Item, Source

PAGE_SIZE = "100"
WEB = "https://bsky.app"


def has_login(settings: Settings) -> bool:
    return bool(settings.bluesky_handle and settings.bluesky_app_password)


def _sort_at(post: dict[str, Any], record: dict[str, Any]) -> datetime | None:
    times = [
        t for t in (parse_time(record.get("createdAt")), parse_time(post.get("indexedAt"))) if t
    ]
    return min(times) if times else None


def post_item(
    source: Source, post: Any, where: str, body: bytes
) -> tuple[Item | None, datetime | None]:
    require(post, dict, "a post", where, body)
    uri = require(post.get("uri"), str, "post.uri", where, body)
    record = require(post.get("record"), dict, "post.record", where, body)
    author = post.get("author")
    author = author if isinstance(author, dict) else {}
    if not uri.startswith("at://") or uri.count("/") < 4:
        raise PayloadError(f"unexpected payload from {where}: post.uri {uri!r}", where, body)
    did, _, rkey = uri[len("at://") :].split("/", 2)
    rkey = rkey.rsplit("/", 1)[-1]
    raw = str(record.get("text") or "")
    parts = [html_to_text(raw)]
    # A shared link card carries the headline of the story the post is about.
    embed = record.get("embed")
    external = embed.get("external") if isinstance(embed, dict) else None
    external = external if isinstance(external, dict) else {}
    for key in ("title", "description"):
        if external.get(key):
            parts.append(html_to_text(str(external[key])))
    text = " ".join(p for p in parts if p)
    sort_at = _sort_at(post, record)
    if not text:
        return None, sort_at
    langs = record.get("langs")
    item = make_item(
        source,
        url=f"{WEB}/profile/{did}/post/{rkey}",
        text=text,
        title=first_line(raw) or first_line(text),
        lang=langs[0] if isinstance(langs, list) and langs else None,
        published_at=parse_time(record.get("createdAt")) or parse_time(post.get("indexedAt")),
        guid=uri,
        author=str(author.get("handle")) if author.get("handle") else None,
    )
    return item, sort_at


class BlueskyConnector:
    kind = "bluesky"

    async def _session(self, http: SocialHttp, ctx: ConnectorContext, pds: str) -> str:
        """An access token for this run; one login per PDS per run, shared by its sources."""
        key = f"bluesky-session:{pds}"
        async with ctx.lock(key):
            token = ctx.shared.get(key)
            if isinstance(token, str):
                return token
            try:
                resp = await http.request(
                    "POST",
                    f"{pds}/xrpc/com.atproto.server.createSession",
                    headers={"Accept": "application/json"},
                    json_body={
                        "identifier": ctx.settings.bluesky_handle,
                        "password": ctx.settings.bluesky_app_password,
                    },
                )
            except PermanentError as exc:
                raise PermanentError(
                    f"Bluesky login as {ctx.settings.bluesky_handle} failed ({exc}); check "
                    "SENTINELA_BLUESKY_HANDLE and SENTINELA_BLUESKY_APP_PASSWORD"
                ) from exc
            data = resp.json()
            if not isinstance(data, dict) or not isinstance(data.get("accessJwt"), str):
                raise PayloadError(
                    f"unexpected payload from {resp.url}: no accessJwt", resp.url, resp.body[:2000]
                )
            ctx.shared[key] = data["accessJwt"]
            return str(data["accessJwt"])

    async def fetch(
        self, http: SocialHttp, ctx: ConnectorContext, source: Source, cursor: str | None
    ) -> ConnectorResult:
        opts = source.options
        settings = ctx.settings
        search = bool(opts.get("query"))
        if search and not has_login(settings):
            return ConnectorResult(
                cursor=cursor,
                skipped="Bluesky post search needs a login: set SENTINELA_BLUESKY_HANDLE and "
                "SENTINELA_BLUESKY_APP_PASSWORD",
            )
        headers: dict[str, str] = {}
        base = source.url.rstrip("/")
        if has_login(settings):
            base = (opts.get("pds_url") or settings.bluesky_pds_url).rstrip("/")
            headers["Authorization"] = f"Bearer {await self._session(http, ctx, base)}"
        if search:
            endpoint = f"{base}/xrpc/app.bsky.feed.searchPosts"
            params = {"q": opts["query"], "sort": "latest", "limit": PAGE_SIZE}
            if opts.get("lang"):
                params["lang"] = opts["lang"]
            if cursor:
                params["since"] = cursor
        else:
            endpoint = f"{base}/xrpc/app.bsky.feed.getAuthorFeed"
            params = {"actor": opts["actor"], "limit": PAGE_SIZE, "filter": "posts_no_replies"}
        since = parse_time(cursor) if cursor else None
        out = ConnectorResult(cursor=cursor)
        newest = since
        reached = False
        skipped = 0
        try:
            while out.pages < max_pages(source, settings):
                data, resp = await http.get_json(endpoint, params, headers)
                out.pages += 1
                require(data, dict, "the response", resp.url, resp.body)
                if search:
                    posts = require(data.get("posts"), list, "posts", resp.url, resp.body)
                    page_len = len(posts)
                else:
                    feed = require(data.get("feed"), list, "feed", resp.url, resp.body)
                    page_len = len(feed)
                    # Reposts (entries with a `reason`) are other people's posts, sorted by
                    # repost time: leave them out so post times stay in feed order.
                    posts = [
                        entry.get("post")
                        for entry in feed
                        if not require(entry, dict, "a feed entry", resp.url, resp.body).get(
                            "reason"
                        )
                    ]
                for post in posts:
                    item, sort_at = post_item(source, post, resp.url, resp.body)
                    if since is not None and sort_at is not None and sort_at < since:
                        # Author feeds have no `since`: older than the cursor means done.
                        reached = True
                        continue
                    if item is None:
                        skipped += 1
                    else:
                        out.items.append(item)
                    if sort_at is not None and (newest is None or sort_at > newest):
                        newest = sort_at
                next_cursor = data.get("cursor")
                if reached or not page_len or not isinstance(next_cursor, str) or not next_cursor:
                    break
                params = {**params, "cursor": next_cursor}
            else:
                out.notes.append(f"page cap ({out.pages}) reached; older posts not read")
        except RateLimitedError as exc:
            # Pages run newest first: what is missing lies between the cursor and the
            # oldest post read, so the cursor must not move.
            out.interrupted = f"{exc}; stopped after {out.pages} page(s), cursor kept"
            return out
        if skipped:
            out.notes.append(f"{skipped} posts without text")
        out.cursor = newest.isoformat().replace("+00:00", "Z") if newest else cursor
        return out


register(BlueskyConnector())
