"""The daily digest: counts, top stories, a real PNG chart uploaded through files_upload_v2
to the fake Slack, posted once per channel and day."""

from __future__ import annotations

import struct
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from pipeline.alerts.digest import collect, send_digest
from pipeline.alerts.routing import Destination
from pipeline.errors import TransientError
from pipeline.storage import repo
from pipeline.storage.schema import alerts, digests, items
from tests.fakes.slack import FakeSlack
from tests.test_alert_delivery import GANG, OPS, Story, hook_for, seed

DAY = date(2024, 5, 1)
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _seed_day(engine: sa.Engine) -> list[int]:
    stories = [
        Story("Toma de Tocorón por 11.000 efectivos", cluster=3),
        Story("Venezuela retoma Tocorón", cluster=3, source="efecto-cocuyo"),
        Story("Motín en la Penitenciaría del Litoral", country=None, source="wire"),
        Story("Facção do PCC domina presídio", lang="pt", country="BR", source="g1"),
        Story("Old story", source="wire"),
    ]
    ids = seed(engine, stories)
    scores = [0.95, 0.8, 0.7, 0.6, 0.9]
    labels = [[GANG, OPS], [GANG], [OPS], [GANG], [GANG]]
    rows = [
        repo.ClassificationRow(i, "stub-1", lbl, {k: s for k in lbl}, {})
        for i, s, lbl in zip(ids, scores, labels, strict=True)
    ]
    with engine.begin() as conn:
        repo.store_classifications(conn, rows, {i: [Destination("#sentinela-alerts")] for i in ids})
        # Matched on the digest's day, except the last (three days before) and one more
        # alert ten days before, for the chart.
        at = datetime(2024, 5, 1, 9, 0, tzinfo=UTC)
        conn.execute(sa.update(alerts).values(created_at=at))
        conn.execute(
            sa.update(alerts)
            .where(alerts.c.item_id == ids[4])
            .values(created_at=at - timedelta(days=3))
        )
    return ids


def test_collect_counts_and_top_stories(engine: sa.Engine) -> None:
    _seed_day(engine)
    with engine.connect() as conn:
        data = collect(conn, "#sentinela-alerts", DAY)
    assert data.total == 4
    assert data.by_label == {GANG: 3, OPS: 2}
    # Tocorón → Venezuela (x2), Litoral → Ecuador (no source country), g1 → Brazil.
    assert data.by_country == {"VE": 2, "EC": 1, "BR": 1}
    # One line per story: the Tocorón cluster appears once, with its best score.
    assert [(s.title, s.score) for s in data.top] == [
        ("Toma de Tocorón por 11.000 efectivos", 0.95),
        ("Motín en la Penitenciaría del Litoral", 0.7),
        ("Facção do PCC domina presídio", 0.6),
    ]
    assert len(data.per_day) == 14 and data.per_day[-1] == (DAY, 4)
    assert dict(data.per_day)[DAY - timedelta(days=3)] == 1
    assert sum(c for _, c in data.per_day) == 5


def test_digest_is_posted_with_a_png_chart_once(engine: sa.Engine) -> None:
    _seed_day(engine)
    with engine.connect() as conn:
        urls = dict(conn.execute(sa.select(items.c.title, items.c.url)).all())
    with FakeSlack(min_interval=0.0) as slack:
        hook = hook_for(slack)
        result = send_digest(engine, hook, "#sentinela-alerts", DAY)
        assert result.status == "posted" and result.total == 4
        (msg,) = slack.state.messages
        (upload,) = slack.state.files.values()
        again = send_digest(engine, hook, "#sentinela-alerts", DAY)
        assert again.status == "already_sent" and len(slack.state.messages) == 1
        calls = list(slack.state.calls)
    assert calls[:4] == [
        "chat.postMessage",
        "files.getUploadURLExternal",
        upload.file_id,  # the POST of the bytes to the upload URL
        "files.completeUploadExternal",
    ]
    assert msg.channel == "C0ALERTS" and result.ts == msg.ts
    assert msg.metadata == {
        "event_type": "sentinela_digest",
        "event_payload": {"channel": "#sentinela-alerts", "day": "2024-05-01", "matches": 4},
    }
    assert msg.blocks == [
        {
            "type": "header",
            "text": {"type": "plain_text", "text": "Sentinela daily digest · 2024-05-01"},
        },
        {"type": "section", "text": {"type": "mrkdwn", "text": "*4* matches in #sentinela-alerts"}},
        {
            "type": "section",
            "text": {
                "type": "mrkdwn",
                "text": "*By label:* Gang control of prison: 3 · Security operation: 2",
            },
        },
        {
            "type": "section",
            "text": {
                "type": "mrkdwn",
                "text": "*By country:* Venezuela: 2 · Ecuador: 1 · Brazil: 1",
            },
        },
        {
            "type": "section",
            "text": {
                "type": "mrkdwn",
                "text": "*Top stories:*\n"
                f"1. <{urls['Toma de Tocorón por 11.000 efectivos']}|Toma de Tocorón por 11.000 efectivos> — elpitazo (0.95)\n"
                f"2. <{urls['Motín en la Penitenciaría del Litoral']}|Motín en la Penitenciaría del Litoral> — wire (0.70)\n"
                f"3. <{urls['Facção do PCC domina presídio']}|Facção do PCC domina presídio> — g1 (0.60)",
            },
        },
        {
            "type": "context",
            "elements": [{"type": "mrkdwn", "text": "Chart: matches per day, last 14 days."}],
        },
    ]
    # The chart reached Slack as a valid PNG, completed into the channel by id.
    assert upload.completed and upload.channel == "C0ALERTS"
    assert upload.filename == "sentinela-2024-05-01.png"
    assert upload.title == "Matches per day, 14 days to 2024-05-01"
    data = upload.data or b""
    assert data.startswith(PNG_MAGIC) and data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    assert (width, height) == (800, 300)
    assert result.file_id == upload.file_id


def test_failed_chart_is_added_by_the_next_run_without_reposting(engine: sa.Engine) -> None:
    _seed_day(engine)
    with FakeSlack(min_interval=0.0) as slack:
        # The message goes out; the upload's first step then fails (no retries).
        hook = hook_for(slack, max_retries=0)
        orig = hook.upload_file

        def failing_upload(*a: object, **k: object) -> str:
            slack.state.faults.append("503")
            return orig(*a, **k)  # type: ignore[arg-type]

        hook.upload_file = failing_upload  # type: ignore[method-assign]
        try:
            send_digest(engine, hook, "#sentinela-alerts", DAY)
            raise AssertionError("the upload should have failed")
        except TransientError:
            pass
        assert len(slack.state.messages) == 1 and not any(
            f.completed for f in slack.state.files.values()
        )
        result = send_digest(engine, hook_for(slack), "#sentinela-alerts", DAY)
        assert result.status == "chart_added"
        assert len(slack.state.messages) == 1
        assert [f.completed for f in slack.state.files.values()] == [True]


def test_digest_left_sending_is_found_not_reposted(engine: sa.Engine) -> None:
    _seed_day(engine)
    with FakeSlack(min_interval=0.0) as slack:
        hook = hook_for(slack)
        # A run posted the digest and died before recording it.
        with engine.begin() as conn:
            conn.execute(
                sa.insert(digests).values(channel="#sentinela-alerts", day=DAY, status="sending")
            )
        hook.post_message(
            "#sentinela-alerts",
            "digest",
            metadata={"event_type": "sentinela_digest", "event_payload": {"day": "2024-05-01"}},
        )
        result = send_digest(engine, hook, "#sentinela-alerts", DAY)
        assert result.status == "found_posted" and result.ts == slack.state.messages[0].ts
        assert len(slack.state.messages) == 1
        assert send_digest(engine, hook, "#sentinela-alerts", DAY).status == "already_sent"


def test_cli_digest_posts_to_every_routed_channel(
    engine: sa.Engine,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from pipeline.cli import main

    _seed_day(engine)
    routing = tmp_path / "routing.yaml"
    routing.write_text('routes:\n  - channel: "#ops"\n    countries: [BR]\n')
    with FakeSlack(min_interval=0.0) as slack:
        monkeypatch.setenv("SLACK_BOT_TOKEN", slack.state.token)
        monkeypatch.setenv("SENTINELA_SLACK_API_URL", slack.url)
        monkeypatch.setenv("SENTINELA_SLACK_MIN_INTERVAL", "0")
        monkeypatch.setenv("SENTINELA_ROUTING", str(routing))
        db = engine.url.render_as_string(hide_password=False)
        assert main(["digest", "--day", "2024-05-01", "--db", db]) == 0
        assert main(["digest", "--day", "2024-05-01", "--db", db]) == 0
        headers = [(m.channel, m.blocks[1]["text"]["text"]) for m in slack.state.messages]
        uploads = sorted(f.channel or "" for f in slack.state.files.values() if f.completed)
    assert headers == [
        ("C0ALERTS", "*4* matches in #sentinela-alerts"),
        ("C0OPS", "*0* matches in #ops"),
    ]
    assert uploads == ["C0ALERTS", "C0OPS"]
    out = capsys.readouterr().out
    assert "#sentinela-alerts 2024-05-01: 4 match(es), posted" in out
    assert "#sentinela-alerts 2024-05-01: 4 match(es), already sent" in out
    assert main(["digest", "--day", "May 1", "--db", db]) == 2
