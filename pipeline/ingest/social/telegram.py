"""Public Telegram channels through their web preview, https://t.me/s/<channel>.

    options: {channel: durov}     GET {url}/s/durov[?before=<post id>]

No API key is needed: the page is HTML with one widget per message
(`div.tgme_widget_message[data-post="channel/123"]`, the text in
`.tgme_widget_message_text`, the time in `time[datetime]`), oldest at the top. Older pages
come from `?before=<smallest id on the page>`. Each run walks back until it reaches the
newest post stored last time, up to max_pages. Channels whose owners disabled the preview
redirect to https://t.me/<channel>; that is a permanent error for the source.
Cursor: the highest post id stored.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from urllib.parse import quote, urlsplit

import lxml.etree
import lxml.html

from pipeline.errors import PermanentError
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
)
from pipeline.ingest.social.http import SocialHttp
from pipeline.items import Item, Source

WEB = "https://t.me"


@dataclass(frozen=True)
class Message:
    post: str  # "channel/123"
    number: int
    html: str
    extra: str  # link-preview title and description
    published_at: datetime | None
    author: str | None


def _has_class(el: lxml.html.HtmlElement, name: str) -> bool:
    return name in (el.get("class") or "").split()


def _within(el: lxml.html.HtmlElement, name: str) -> bool:
    return any(_has_class(a, name) for a in el.iterancestors())


def parse_page(body: bytes, where: str) -> tuple[list[Message], int | None]:
    """Messages on one t.me/s page and the `before` value for the next older page."""
    try:
        doc = lxml.html.fromstring(body.decode("utf-8", "replace"))
    except (ValueError, lxml.etree.ParserError) as exc:
        raise PayloadError(f"{where} is not an HTML page: {exc}", where, body[:2000]) from exc
    widgets = doc.xpath('//div[contains(@class, "tgme_widget_message") and @data-post]')
    if not widgets and not doc.xpath('//*[contains(@class, "tgme_channel_info")]'):
        raise PayloadError(
            f"{where} is not a Telegram channel preview page (no message widgets)",
            where,
            body[:2000],
        )
    out: list[Message] = []
    for w in widgets:
        post = str(w.get("data-post") or "")
        _, _, number = post.rpartition("/")
        if not number.isdigit() or _has_class(w, "service_message"):
            continue
        texts = [
            t
            for t in w.xpath('.//div[contains(@class, "tgme_widget_message_text")]')
            if not _within(t, "tgme_widget_message_reply")
        ]
        markup = lxml.html.tostring(texts[0], encoding=str) if texts else ""
        extra = " ".join(
            " ".join(e.text_content().split())
            for e in w.xpath(
                './/*[contains(@class, "link_preview_title") or '
                'contains(@class, "link_preview_description")]'
            )
        )
        times = w.xpath('.//a[contains(@class, "tgme_widget_message_date")]//time/@datetime')
        owners = w.xpath('.//*[contains(@class, "tgme_widget_message_owner_name")]')
        out.append(
            Message(
                post=post,
                number=int(number),
                html=markup,
                extra=extra,
                published_at=parse_time(str(times[0])) if times else None,
                author=" ".join(owners[0].text_content().split()) if owners else None,
            )
        )
    more = doc.xpath('//a[contains(@class, "tme_messages_more")]/@data-before')
    before = int(more[0]) if more and str(more[0]).isdigit() else None
    if before is None and out:
        before = min(m.number for m in out)
    return out, before


def message_item(source: Source, msg: Message) -> Item | None:
    text = " ".join(p for p in (html_to_text(msg.html), msg.extra) if p)
    if not text:
        return None
    return make_item(
        source,
        url=f"{WEB}/{msg.post}",
        text=text,
        title=html_first_line(msg.html),
        published_at=msg.published_at,
        guid=msg.post,
        author=msg.author,
    )


class TelegramConnector:
    kind = "telegram"

    async def fetch(
        self, http: SocialHttp, ctx: ConnectorContext, source: Source, cursor: str | None
    ) -> ConnectorResult:
        channel = source.options["channel"].lstrip("@").strip("/")
        endpoint = f"{source.url.rstrip('/')}/s/{quote(channel, safe='')}"
        known = int(cursor) if cursor and cursor.isdigit() else None
        out = ConnectorResult(cursor=cursor)
        newest = known
        params: dict[str, str] | None = None
        skipped = 0
        try:
            while out.pages < max_pages(source, ctx.settings):
                resp = await http.get(endpoint, params, {"Accept": "text/html"})
                out.pages += 1
                if not urlsplit(resp.url).path.startswith("/s/"):
                    raise PermanentError(
                        f"t.me/{channel} has no public web preview (redirected to {resp.url})"
                    )
                messages, before = parse_page(resp.body, resp.url)
                for msg in messages:
                    if known is not None and msg.number <= known:
                        continue
                    item = message_item(source, msg)
                    if item is None:
                        skipped += 1
                    else:
                        out.items.append(item)
                    newest = msg.number if newest is None else max(newest, msg.number)
                if (
                    not messages
                    or before is None
                    or before <= 1
                    or (known is not None and before <= known + 1)
                ):
                    break
                params = {"before": str(before)}
            else:
                out.notes.append(f"page cap ({out.pages}) reached; older posts not read")
        except RateLimitedError as exc:
            out.interrupted = f"{exc}; stopped after {out.pages} page(s), cursor kept"
            return out
        if skipped:
            out.notes.append(f"{skipped} posts without text (media only)")
        out.cursor = str(newest) if newest is not None else cursor
        return out


register(TelegramConnector())
