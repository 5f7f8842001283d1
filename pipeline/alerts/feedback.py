"""Analysts' "Relevant" / "Not relevant" clicks: received over Slack Socket Mode, stored in
`feedback` (one verdict per analyst per item; a later click replaces an earlier one), and
exported as training data in the classifier's JSONL format.

Socket Mode needs no public URL: `apps.connections.open` (app-level token, SLACK_APP_TOKEN)
hands out a WebSocket URL; Slack sends each click as an `interactive` envelope carrying a
`block_actions` payload, and the envelope must be acknowledged (echo its envelope_id) within
three seconds. A click is acknowledged only once it is stored, so a failed write shows the
analyst an error instead of being lost silently.
"""

from __future__ import annotations

import json
import logging
import threading
from collections import Counter, defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TextIO

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from pipeline.alerts.compose import FEEDBACK_ACTION_PREFIX
from pipeline.config import Settings
from pipeline.storage.repo import _insert, latest_classification_id
from pipeline.storage.schema import alerts, classifications, feedback, items, sources

log = logging.getLogger(__name__)
VERDICTS = ("relevant", "not_relevant")


@dataclass(frozen=True)
class Verdict:
    alert_id: int
    item_id: int | None  # from the button's value; the alert row is the authority
    verdict: str
    user_id: str


def parse_block_actions(payload: Mapping[str, Any]) -> list[Verdict]:
    """The Sentinela verdicts in one block_actions payload (other buttons are ignored)."""
    if payload.get("type") != "block_actions":
        return []
    user = str((payload.get("user") or {}).get("id") or "")
    if not user:
        return []
    out: list[Verdict] = []
    for action in payload.get("actions") or []:
        action_id = str(action.get("action_id") or "")
        if not action_id.startswith(FEEDBACK_ACTION_PREFIX):
            continue
        verdict, _, alert = action_id[len(FEEDBACK_ACTION_PREFIX) :].rpartition(":")
        if verdict not in VERDICTS or not alert.isdigit():
            continue
        item_id: int | None = None
        try:
            value = json.loads(action.get("value") or "{}")
            item_id = int(value["item_id"]) if "item_id" in value else None
        except (ValueError, TypeError, KeyError):
            item_id = None
        out.append(Verdict(int(alert), item_id, verdict, user))
    return out


def record(engine: Engine, v: Verdict) -> bool:
    """Store one verdict; False when neither the alert nor the item is known."""
    with engine.begin() as conn:
        row = conn.execute(sa.select(alerts.c.item_id).where(alerts.c.id == v.alert_id)).first()
        item_id: int | None
        if row is not None:
            alert_id: int | None = v.alert_id
            item_id = int(row[0])
        else:
            alert_id, item_id = None, v.item_id
            known = (
                item_id is not None
                and conn.execute(sa.select(items.c.id).where(items.c.id == item_id)).first()
            )
            if item_id is None or not known:
                log.warning("feedback for unknown alert %s ignored", v.alert_id)
                return False
        stmt = _insert(conn, feedback).values(
            alert_id=alert_id,
            item_id=item_id,
            label_verdict=v.verdict,
            user_id=v.user_id,
            created_at=datetime.now(UTC),
        )
        stmt = stmt.on_conflict_do_update(
            index_elements=[feedback.c.item_id, feedback.c.user_id],
            set_={
                "label_verdict": stmt.excluded.label_verdict,
                "alert_id": stmt.excluded.alert_id,
                "created_at": stmt.excluded.created_at,
            },
        )
        conn.execute(stmt)
    return True


def make_client(settings: Settings) -> Any:
    """A Socket Mode client (the SDK's builtin transport: no extra dependency)."""
    from slack_sdk import WebClient
    from slack_sdk.socket_mode.builtin.client import SocketModeClient

    if not settings.slack_app_token:
        raise ValueError("SLACK_APP_TOKEN (an app-level xapp- token) is needed to listen")
    web = WebClient(token=settings.slack_bot_token, base_url=settings.slack_api_url)
    return SocketModeClient(app_token=settings.slack_app_token, web_client=web)


def attach(client: Any, engine: Engine) -> None:
    """Store verdicts from interactive envelopes and acknowledge every envelope."""
    from slack_sdk.socket_mode.request import SocketModeRequest
    from slack_sdk.socket_mode.response import SocketModeResponse

    def on_request(client: Any, req: SocketModeRequest) -> None:
        if req.type == "interactive":
            try:
                for v in parse_block_actions(req.payload or {}):
                    record(engine, v)
            except Exception:
                log.exception("could not store feedback; not acknowledging the envelope")
                return
        client.send_socket_mode_response(SocketModeResponse(envelope_id=req.envelope_id))

    client.socket_mode_request_listeners.append(on_request)


def listen(engine: Engine, settings: Settings, stop: threading.Event | None = None) -> int:
    """Run until `stop` is set (or forever: the CLI's `sentinela feedback listen`)."""
    client = make_client(settings)
    attach(client, engine)
    client.connect()
    print("listening for Sentinela feedback over Socket Mode (Ctrl-C to stop)", flush=True)
    try:
        (stop or threading.Event()).wait()
    except KeyboardInterrupt:
        pass
    finally:
        client.close()
    return 0


def export_rows(engine: Engine) -> list[dict[str, Any]]:
    """One training example per judged item, in the classifier's data format: relevant →
    the labels the model gave; not relevant → [] (a hard negative). Items analysts disagree
    on (a tie) are left out."""
    latest = latest_classification_id()
    q = (
        sa.select(
            items.c.id,
            items.c.lang,
            items.c.title,
            items.c.text,
            items.c.url,
            sources.c.name,
            classifications.c.labels,
            classifications.c.model_version,
            feedback.c.label_verdict,
            feedback.c.user_id,
        )
        .select_from(
            feedback.join(items, items.c.id == feedback.c.item_id)
            .join(sources, sources.c.id == items.c.source_id)
            .outerjoin(
                classifications,
                sa.and_(classifications.c.item_id == items.c.id, classifications.c.id == latest),
            )
        )
        .order_by(items.c.id, feedback.c.user_id)
    )
    verdicts: dict[int, Counter[str]] = defaultdict(Counter)
    info: dict[int, tuple[Any, ...]] = {}
    with engine.connect() as conn:
        for r in conn.execute(q):
            verdicts[r[0]][r[8]] += 1
            info[r[0]] = tuple(r[:8])
    out: list[dict[str, Any]] = []
    for item_id, counts in verdicts.items():
        if counts["relevant"] == counts["not_relevant"]:
            continue
        relevant = counts["relevant"] > counts["not_relevant"]
        _, lang, title, text, url, source, labels, model_version = info[item_id]
        n = counts["relevant"] + counts["not_relevant"]
        out.append(
            {
                "id": f"feedback-{item_id}",
                "lang": lang or "",
                "title": title,
                "text": text,
                "labels": list(labels or []) if relevant else [],
                "category": "pos:analyst_feedback" if relevant else "neg:analyst_feedback",
                "hard_negative": not relevant,
                "provenance": (
                    f"analyst feedback: {counts['relevant']} relevant / "
                    f"{counts['not_relevant']} not relevant of {n} verdict(s) on an alert by "
                    f"model {model_version or 'unknown'}; {source} {url}"
                ),
            }
        )
    return out


def export_jsonl(engine: Engine, out: TextIO) -> int:
    rows = export_rows(engine)
    for row in rows:
        out.write(json.dumps(row, ensure_ascii=False) + "\n")
    return len(rows)
