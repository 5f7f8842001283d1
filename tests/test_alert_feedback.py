"""Feedback buttons over Slack Socket Mode, against a local WebSocket server speaking the
Socket Mode protocol (hello, then an `interactive` envelope with a block_actions payload;
the client must acknowledge with the envelope id), and the training-data export."""

from __future__ import annotations

import contextlib
import io
import json
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import sqlalchemy as sa
from websockets.sync.server import ServerConnection, serve

from pipeline.alerts.compose import slack_blocks
from pipeline.alerts.feedback import export_jsonl, listen, parse_block_actions
from pipeline.alerts.routing import Destination
from pipeline.config import Settings
from pipeline.storage import repo
from pipeline.storage.schema import feedback
from tests.fakes.slack import FakeSlack
from tests.test_alert_delivery import GANG, OPS, Story, seed


def _button(alert: repo.PendingAlert, verdict: str) -> dict[str, Any]:
    actions = next(b for b in slack_blocks(alert) if b["type"] == "actions")
    el = next(e for e in actions["elements"] if e["action_id"].split(":")[0].endswith(verdict))
    return {**el, "block_id": "fb", "action_ts": "1714550001.000200"}


def _envelope(alert: repo.PendingAlert, verdict: str, user: str) -> dict[str, Any]:
    """An `interactive` envelope as Slack sends it for a button click."""
    return {
        "envelope_id": str(uuid.uuid4()),
        "type": "interactive",
        "accepts_response_payload": False,
        "payload": {
            "type": "block_actions",
            "user": {"id": user, "username": "ana", "name": "ana", "team_id": "T0TEST"},
            "api_app_id": "A0TEST",
            "token": "legacy-verification-token",
            "container": {
                "type": "message",
                "message_ts": "1714550000.000100",
                "channel_id": "C0ALERTS",
                "is_ephemeral": False,
            },
            "trigger_id": "123.456.abc",
            "team": {"id": "T0TEST", "domain": "sentinela-test"},
            "enterprise": None,
            "is_enterprise_install": False,
            "channel": {"id": "C0ALERTS", "name": "sentinela-alerts"},
            "message": {"type": "message", "ts": "1714550000.000100", "text": "alert"},
            "state": {"values": {}},
            "response_url": "https://hooks.slack.com/actions/T0TEST/1/abc",
            "actions": [_button(alert, verdict)],
        },
    }


class SocketModeServer:
    """Says hello, sends the queued envelopes one by one and collects the acks."""

    def __init__(self, envelopes: list[dict[str, Any]]) -> None:
        self.envelopes = envelopes
        self.acks: list[dict[str, Any]] = []
        self.done = threading.Event()
        self.paths: list[str] = []

    def handler(self, ws: ServerConnection) -> None:
        self.paths.append(ws.request.path if ws.request else "")
        ws.send(
            json.dumps(
                {
                    "type": "hello",
                    "num_connections": 1,
                    "debug_info": {"host": "local", "approximate_connection_time": 3600},
                    "connection_info": {"app_id": "A0TEST"},
                }
            )
        )
        for env in self.envelopes:
            ws.send(json.dumps(env))
            self.acks.append(json.loads(ws.recv(timeout=10)))
        self.done.set()
        with contextlib.suppress(Exception):
            ws.recv(timeout=10)  # hold the connection until the client closes it

    @contextmanager
    def running(self) -> Iterator[str]:
        with serve(self.handler, "127.0.0.1", 0) as server:
            thread = threading.Thread(target=server.serve_forever, daemon=True)
            thread.start()
            port = server.socket.getsockname()[1]
            try:
                yield f"ws://127.0.0.1:{port}/link/?ticket=t-{uuid.uuid4().hex[:8]}&app_id=A0TEST"
            finally:
                server.shutdown()


def _pending(engine: sa.Engine) -> list[repo.PendingAlert]:
    stories = [
        Story("Toma de Tocorón", labels=(GANG, OPS)),
        Story("Requisa en Yare", text="Requisa en el penal de Yare."),
    ]
    ids = seed(engine, stories)
    rows = [
        repo.ClassificationRow(ids[0], "stub-1", [GANG, OPS], {GANG: 0.9, OPS: 0.8}, {}),
        repo.ClassificationRow(ids[1], "stub-1", [OPS], {GANG: 0.1, OPS: 0.7}, {}),
    ]
    with engine.begin() as conn:
        repo.store_classifications(conn, rows, {i: [Destination("#sentinela-alerts")] for i in ids})
        return repo.pending_alerts(conn, "#sentinela-alerts")


def test_button_clicks_over_socket_mode_are_stored_and_acked(engine: sa.Engine) -> None:
    a1, a2 = _pending(engine)
    envelopes = [
        _envelope(a1, "relevant", "U0ANA"),
        _envelope(a2, "not_relevant", "U0ANA"),
        _envelope(a1, "relevant", "U0BEA"),
        _envelope(a1, "not_relevant", "U0ANA"),  # Ana changes her mind: replaces hers
    ]
    server = SocketModeServer(envelopes)
    with server.running() as ws_url, FakeSlack(socket_url=ws_url) as slack:
        settings = Settings.from_env({}).with_(
            slack_bot_token=slack.state.token,
            slack_app_token=slack.state.app_token,
            slack_api_url=slack.url,
        )
        stop = threading.Event()
        listener = threading.Thread(target=listen, args=(engine, settings, stop), daemon=True)
        listener.start()
        assert server.done.wait(20), f"acks so far: {server.acks}"
        stop.set()
        listener.join(10)
        assert "apps.connections.open" in slack.state.calls
    assert server.acks == [{"envelope_id": e["envelope_id"]} for e in envelopes]
    assert server.paths[0].startswith("/link/?ticket=")
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(
                feedback.c.alert_id,
                feedback.c.item_id,
                feedback.c.user_id,
                feedback.c.label_verdict,
            ).order_by(feedback.c.item_id, feedback.c.user_id)
        ).all()
    assert [tuple(r) for r in rows] == [
        (a1.alert_id, a1.item_id, "U0ANA", "not_relevant"),
        (a1.alert_id, a1.item_id, "U0BEA", "relevant"),
        (a2.alert_id, a2.item_id, "U0ANA", "not_relevant"),
    ]

    # Export: a1 is a tie (left out); a2 is a hard negative.
    out = io.StringIO()
    assert export_jsonl(engine, out) == 1
    (row,) = [json.loads(line) for line in out.getvalue().splitlines()]
    assert row["id"] == f"feedback-{a2.item_id}" and row["labels"] == []
    assert row["lang"] == "es" and row["title"] == "Requisa en Yare"
    assert row["text"] == "Requisa en el penal de Yare."
    assert row["provenance"].startswith("analyst feedback: 0 relevant / 1 not relevant")
    assert row["hard_negative"] is True


def test_export_relevant_keeps_the_model_labels(engine: sa.Engine, tmp_path: Any) -> None:
    from pipeline.alerts.feedback import Verdict, record
    from pipeline.cli import main

    a1, _ = _pending(engine)
    assert record(engine, Verdict(a1.alert_id, a1.item_id, "relevant", "U1"))
    assert record(engine, Verdict(a1.alert_id, a1.item_id, "relevant", "U2"))
    assert not record(engine, Verdict(999, None, "relevant", "U1"))  # unknown: ignored
    out = tmp_path / "fb.jsonl"
    assert main(["feedback", "export", "--output", str(out), "--db", str(engine.url)]) == 0
    (row,) = [json.loads(line) for line in out.read_text().splitlines()]
    assert row["labels"] == [GANG, OPS]
    for key in ("id", "lang", "title", "text", "labels", "provenance"):
        assert key in row  # what models/train.py requires


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        ({"type": "view_submission", "user": {"id": "U"}}, []),
        (
            {
                "type": "block_actions",
                "user": {"id": "U"},
                "actions": [{"action_id": "open_story"}],
            },
            [],
        ),
        (
            {
                "type": "block_actions",
                "user": {"id": "U"},
                "actions": [
                    {"action_id": "sentinela_fb_maybe:3"},
                    {"action_id": "sentinela_fb_relevant:x"},
                ],
            },
            [],
        ),
    ],
)
def test_other_interactions_are_ignored(payload: dict[str, Any], expected: list[Any]) -> None:
    assert parse_block_actions(payload) == expected
