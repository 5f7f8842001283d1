"""Mastodon (any instance): a hashtag timeline or one account's statuses, public REST API.

    GET {url}/api/v1/timelines/tag/{hashtag}          options: {hashtag: TrenDeAragua}
    GET {url}/api/v1/accounts/{id}/statuses           options: {account_id: "1091..."}
                                                      or {account: user} (looked up once a run)

Paging follows the Link header. The first run reads the newest page and walks back (rel
"next") up to max_pages. Later runs ask for `min_id=<cursor>`, which returns the statuses
just after the cursor, and walk forward (rel "prev"): the pages read are contiguous, so
stopping at the page cap or on a rate limit loses nothing; the next run continues there.
Cursor: the highest status id stored.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import httpx

from pipeline.ingest.normalize import html_to_text
from pipeline.ingest.social.base import (
    ConnectorContext,
    ConnectorResult,
    PayloadError,
    RateLimitedError,
    html_first_line,
    make_item,
    max_pages,
    parse_time,
    register,
    require,
)
from pipeline.ingest.social.http import Response, SocialHttp
from pipeline.items import Item, Source

PAGE_SIZE = "40"


def _id_key(status_id: str) -> tuple[int, str]:
    # Snowflake ids are decimal strings; comparing by length then text orders them
    # numerically without assuming they fit any integer type.
    return (len(status_id), status_id)


def _link(resp: Response, rel: str) -> str | None:
    for link in httpx.Response(200, headers=resp.headers).links.values():
        if link.get("rel") == rel and link.get("url"):
            return str(link["url"])
    return None


def status_item(source: Source, status: dict[str, Any], where: str, body: bytes) -> Item | None:
    reblog = status.get("reblog")
    shown: dict[str, Any] = reblog if isinstance(reblog, dict) else status
    content = str(require(shown.get("content", ""), str, "status.content", where, body))
    spoiler = str(shown.get("spoiler_text") or "")
    text = html_to_text(content)
    if spoiler:
        text = f"{spoiler}. {text}" if text else spoiler
    if not text:
        return None
    url = shown.get("url") or shown.get("uri")
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        raise PayloadError(f"unexpected payload from {where}: status without url", where, body)
    account = shown.get("account")
    account = account if isinstance(account, dict) else {}
    return make_item(
        source,
        url=url,
        text=text,
        title=spoiler or html_first_line(content),
        lang=shown.get("language"),
        published_at=parse_time(shown.get("created_at")),
        guid=str(shown.get("uri") or url),
        author=str(account.get("acct")) if account.get("acct") else None,
    )


class MastodonConnector:
    kind = "mastodon"

    async def _endpoint(self, http: SocialHttp, source: Source) -> tuple[str, dict[str, str]]:
        base = source.url.rstrip("/")
        opts = source.options
        if opts.get("hashtag"):
            tag = quote(opts["hashtag"].lstrip("#"), safe="")
            return f"{base}/api/v1/timelines/tag/{tag}", {"limit": PAGE_SIZE}
        account_id = opts.get("account_id")
        if not account_id:
            acct = opts.get("account", "").lstrip("@")
            data, resp = await http.get_json(f"{base}/api/v1/accounts/lookup", {"acct": acct})
            if not isinstance(data, dict) or not isinstance(data.get("id"), str):
                raise PayloadError(
                    f"unexpected payload from {resp.url}: no account id", resp.url, resp.body
                )
            account_id = data["id"]
        return f"{base}/api/v1/accounts/{quote(account_id, safe='')}/statuses", {
            "limit": PAGE_SIZE,
            "exclude_replies": "true",
        }

    async def fetch(
        self, http: SocialHttp, ctx: ConnectorContext, source: Source, cursor: str | None
    ) -> ConnectorResult:
        out = ConnectorResult(cursor=cursor)
        endpoint, params = await self._endpoint(http, source)
        forward = cursor is not None
        if cursor is not None:
            params["min_id"] = cursor
        url: str | None = endpoint
        newest = cursor
        skipped = 0
        try:
            while url is not None and out.pages < max_pages(source, ctx.settings):
                data, resp = await http.get_json(url, params if url == endpoint else None)
                out.pages += 1
                statuses = require(data, list, "the response", resp.url, resp.body)
                if not statuses:
                    break
                for status in statuses:
                    require(status, dict, "a status", resp.url, resp.body)
                    sid = require(status.get("id"), str, "status.id", resp.url, resp.body)
                    if cursor is not None and _id_key(sid) <= _id_key(cursor):
                        continue
                    item = status_item(source, status, resp.url, resp.body)
                    if item is None:
                        skipped += 1
                    else:
                        out.items.append(item)
                    if newest is None or _id_key(sid) > _id_key(newest):
                        newest = sid
                url = _link(resp, "prev" if forward else "next")
        except RateLimitedError as exc:
            out.interrupted = f"{exc}; stopped after {out.pages} page(s), cursor kept"
        if skipped:
            out.notes.append(f"{skipped} statuses without text (media only)")
        out.cursor = newest
        return out


register(MastodonConnector())
