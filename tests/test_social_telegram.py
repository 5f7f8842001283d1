"""Telegram connector against a local server replaying t.me/s channel preview pages."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import sqlalchemy as sa

from pipeline.config import Settings
from pipeline.ingest.social.runner import collect
from pipeline.items import Source
from pipeline.run import RunSummary, ingest
from tests.social_replay import Replay, Reply, Request, fixture, replay

HTML = {"Content-Type": "text/html; charset=utf-8"}


def route(req: Request, rec: Replay) -> Reply:
    before = req.query.get("before")
    if req.path == "/s/privatechan":
        return 302, {"Location": "/privatechan"}, b""
    if req.path == "/privatechan":
        return 200, HTML, fixture("telegram/not_a_channel.html")
    if req.path == "/s/weird":
        return 200, HTML, fixture("telegram/not_a_channel.html")
    if req.path != "/s/monitorpenal":
        return 404, HTML, b"<html></html>"
    if before == "1201":
        if rec.state.get("throttle"):
            when = format_datetime(datetime.now(UTC) + timedelta(minutes=30), usegmt=True)
            return 429, {"Retry-After": when}, b"Too Many Requests"
        return 200, HTML, fixture("telegram/channel_before_1201.html")
    if before:
        return 200, HTML, fixture("telegram/channel_before_1201.html").replace(b"119", b"118")
    if rec.state.get("newer"):
        return 200, HTML, fixture("telegram/channel_newer.html")
    return 200, HTML, fixture("telegram/channel_latest.html")


def _src(base: str, channel: str = "monitorpenal") -> Source:
    return Source(
        name="tg",
        kind="telegram",
        url=base,
        lang="es",
        options={"channel": channel, "max_pages": "2"},
        allow_private=True,
    )


def _settings() -> Settings:
    return Settings.from_env({}).with_(fetch_timeout_s=5.0, social_max_wait_s=3.0)


def test_first_run_parses_message_widgets_and_pages_back() -> None:
    with replay(route) as rec:
        (out,) = collect([_src(rec.url)], {}, _settings())
    assert out.result is not None
    res = out.result
    assert [r.query.get("before") for r in rec.requests] == [None, "1201"]
    # 1201 is a service message and 1204 a photo without caption: neither is an item.
    assert [i.guid for i in res.items] == [
        "monitorpenal/1202",
        "monitorpenal/1203",
        "monitorpenal/1205",
        "monitorpenal/1196",
        "monitorpenal/1197",
    ]
    first, reply, linked = res.items[:3]
    assert first.url == "https://t.me/monitorpenal/1202"
    assert first.title == "🚨 Requisa en Tocorón"
    assert first.text == (
        "🚨 Requisa en Tocorón La GNB reporta el hallazgo de armas y un túnel en el pabellón 3. "
        "Vía El Pitazo & fuentes locales."
    )
    assert first.published_at == datetime(2026, 3, 2, 10, 15, tzinfo=UTC)
    assert first.lang == "es" and first.author == "Monitor Penitenciario"
    assert "citado" not in reply.text and reply.text.startswith("Actualización")
    assert linked.published_at == datetime(2026, 3, 2, 18, 45, tzinfo=UTC)
    assert "Militares toman el pabellón 8" in linked.text
    assert res.cursor == "1205"
    assert any("without text" in n for n in res.notes)


def _cursor(engine: sa.Engine) -> str | None:
    with engine.connect() as conn:
        return conn.execute(sa.text("SELECT cursor FROM sources WHERE name = 'tg'")).scalar()


def test_next_run_reads_only_posts_after_the_cursor(engine, settings: Settings) -> None:
    with replay(route) as rec:
        src = _src(rec.url)
        first = RunSummary()
        ingest(engine, settings, [src], first)
        assert first.reports["tg"].new == 5 and _cursor(engine) == "1205"
        rec.requests.clear()
        rec.state["newer"] = True
        second = RunSummary()
        ingest(engine, settings, [src], second)
    # The page reaches back to the cursor, so no `before=` page is needed.
    assert len(rec.requests) == 1
    assert second.reports["tg"].fetched == 2 and second.reports["tg"].new == 2
    assert _cursor(engine) == "1207"


def test_channel_without_preview_is_a_permanent_error() -> None:
    with replay(route) as rec:
        (out,) = collect([_src(rec.url, "privatechan")], {}, _settings())
    assert out.error_kind == "permanent" and "no public web preview" in (out.error or "")


def test_page_that_is_not_a_channel_preview_is_a_clear_error() -> None:
    with replay(route) as rec:
        (out,) = collect([_src(rec.url, "weird")], {}, _settings())
    assert out.error_kind == "permanent" and "not a Telegram channel preview" in (out.error or "")


def test_retry_after_http_date_too_far_stops_the_source() -> None:
    with replay(route) as rec:
        rec.state["throttle"] = True
        (out,) = collect([_src(rec.url)], {"tg": "1100"}, _settings())
    res = out.result
    assert res is not None and res.interrupted and "rate limited" in res.interrupted
    assert len(res.items) == 3 and res.cursor == "1100"
