"""X (Twitter) API v2 recent search, with an app bearer token.

    options: {query: '"Tren de Aragua" -is:retweet'}
    GET {url}/2/tweets/search/recent?query=…&since_id=<cursor>&next_token=…

Active only when SENTINELA_X_BEARER_TOKEN is set; otherwise the source is reported as
skipped, not failed. Results run newest first; `since_id` keeps each run to posts newer
than the last one stored and `meta.next_token` pages back within that window, up to
max_pages (the API's recent search covers the last seven days).
Cursor: the newest post id stored.
"""

from __future__ import annotations

from typing import Any

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

WEB = "https://x.com"
FIELDS = {
    "max_results": "100",
    "tweet.fields": "created_at,lang,author_id,note_tweet",
    "expansions": "author_id",
    "user.fields": "username",
}


def _id_key(post_id: str) -> tuple[int, str]:
    return (len(post_id), post_id)


def tweet_item(source: Source, tweet: Any, users: dict[str, str], where: str, body: bytes) -> Item:
    require(tweet, dict, "a post", where, body)
    post_id = require(tweet.get("id"), str, "post.id", where, body)
    raw = str(require(tweet.get("text"), str, "post.text", where, body))
    # Posts longer than 280 characters come whole only in note_tweet.
    note = tweet.get("note_tweet")
    if isinstance(note, dict) and isinstance(note.get("text"), str) and note["text"]:
        raw = note["text"]
    username = users.get(str(tweet.get("author_id") or ""))
    url = f"{WEB}/{username}/status/{post_id}" if username else f"{WEB}/i/web/status/{post_id}"
    return make_item(
        source,
        url=url,
        text=html_to_text(raw),
        title=html_to_text(first_line(raw)),
        lang=tweet.get("lang"),
        published_at=parse_time(tweet.get("created_at")),
        guid=post_id,
        author=username,
    )


class XConnector:
    kind = "x"

    async def fetch(
        self, http: SocialHttp, ctx: ConnectorContext, source: Source, cursor: str | None
    ) -> ConnectorResult:
        token = ctx.settings.x_bearer_token
        if not token:
            return ConnectorResult(
                cursor=cursor, skipped="X needs an API bearer token: set SENTINELA_X_BEARER_TOKEN"
            )
        endpoint = f"{source.url.rstrip('/')}/2/tweets/search/recent"
        params = {"query": source.options["query"], **FIELDS}
        if cursor:
            params["since_id"] = cursor
        headers = {"Authorization": f"Bearer {token}"}
        out = ConnectorResult(cursor=cursor)
        newest = cursor
        try:
            while out.pages < max_pages(source, ctx.settings):
                try:
                    data, resp = await http.get_json(endpoint, params, headers)
                except PermanentError as exc:
                    if "HTTP 401" in str(exc) or "HTTP 403" in str(exc):
                        raise PermanentError(
                            f"{exc}: X refused the bearer token (SENTINELA_X_BEARER_TOKEN) or "
                            "the app's access level does not include recent search"
                        ) from exc
                    raise
                out.pages += 1
                require(data, dict, "the response", resp.url, resp.body)
                meta = require(data.get("meta"), dict, "meta", resp.url, resp.body)
                tweets = data.get("data") or []
                require(tweets, list, "data", resp.url, resp.body)
                includes = data.get("includes") if isinstance(data.get("includes"), dict) else {}
                users = {
                    str(u.get("id")): str(u.get("username"))
                    for u in includes.get("users") or []
                    if isinstance(u, dict) and u.get("id") and u.get("username")
                }
                if not tweets and data.get("errors") and not meta.get("result_count") == 0:
                    raise PayloadError(
                        f"X answered with errors only: {data['errors']!r:.300}", resp.url, resp.body
                    )
                for tweet in tweets:
                    item = tweet_item(source, tweet, users, resp.url, resp.body)
                    out.items.append(item)
                    if newest is None or _id_key(str(item.guid)) > _id_key(newest):
                        newest = item.guid
                next_token = meta.get("next_token")
                if not tweets or not isinstance(next_token, str) or not next_token:
                    break
                params = {**params, "next_token": next_token}
            else:
                out.notes.append(f"page cap ({out.pages}) reached; older posts not read")
        except RateLimitedError as exc:
            out.interrupted = f"{exc}; stopped after {out.pages} page(s), cursor kept"
            return out
        out.cursor = newest
        return out


register(XConnector())
