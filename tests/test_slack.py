"""The Slack hook and notifier against the local fake Slack Web API."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest

from pipeline.alerts.compose import fallback_text, slack_blocks
from pipeline.alerts.sinks import SlackSink
from pipeline.alerts.slack_hook import SlackConfigError, SlackHook
from pipeline.errors import TransientError
from pipeline.storage.repo import PendingAlert
from tests.fakes.slack import FakeSlack


def _alert(**kw: object) -> PendingAlert:
    base: dict[str, object] = dict(
        alert_id=7,
        item_id=42,
        channel="#sentinela-alerts",
        source="elpitazo",
        country="VE",
        url="https://example.com/tocoron",
        title="Fuerzas venezolanas toman Tocorón",
        text="Unos 11.000 efectivos tomaron el penal de Tocorón, controlado por el Tren de Aragua.",
        lang="es",
        published_at=datetime(2023, 9, 20, 12, 0, tzinfo=UTC),
        labels=["gang_prison_control", "security_operation"],
        scores={"gang_prison_control": 0.91, "security_operation": 0.97},
        evidence={
            "gang_prison_control": "penal controlado por el Tren de Aragua",
            "security_operation": "Unos 11.000 efectivos tomaron el penal",
        },
        model_version="abc123",
    )
    base.update(kw)
    return PendingAlert(**base)  # type: ignore[arg-type]


def test_exact_payload(fake_slack: FakeSlack) -> None:
    hook = SlackHook(fake_slack.state.token, fake_slack.url, min_interval_s=0)
    ts = SlackSink(hook, "#sentinela-alerts").send(_alert(severity="high"))
    (msg,) = fake_slack.state.messages
    assert msg.ts == ts and msg.channel == "C0ALERTS" and msg.thread_ts is None
    assert msg.text == (
        "[Sentinela HIGH] Fuerzas venezolanas toman Tocorón — Gang control of prison (0.91), "
        "Security operation (0.97) — https://example.com/tocoron"
    )
    assert msg.metadata == {
        "event_type": "sentinela_alert",
        "event_payload": {"alert_id": 7, "item_id": 42},
    }
    feedback_value = '{"alert_id": 7, "item_id": 42}'
    assert msg.blocks == [
        {
            "type": "header",
            "text": {
                "type": "plain_text",
                "text": "🚨 HIGH · Fuerzas venezolanas toman Tocorón",
                "emoji": True,
            },
        },
        {
            "type": "context",
            "elements": [
                {
                    "type": "mrkdwn",
                    "text": "*elpitazo* · Spanish · published 2023-09-20 12:00 UTC · *high severity*",
                }
            ],
        },
        {
            "type": "section",
            "text": {
                "type": "mrkdwn",
                "text": "*Country:* Venezuela · *Facility:* Tocorón · *Gang:* Tren de Aragua",
            },
        },
        {
            "type": "section",
            "text": {
                "type": "mrkdwn",
                "text": "*Labels:* Gang control of prison (0.91), Security operation (0.97)",
            },
        },
        {
            "type": "section",
            "text": {
                "type": "mrkdwn",
                "text": "Unos 11.000 efectivos tomaron el penal de Tocorón, controlado por el Tren de Aragua.",
            },
        },
        {
            "type": "section",
            "text": {
                "type": "mrkdwn",
                "text": "*Why Gang control of prison (0.91):* _penal controlado por el Tren de Aragua_",
            },
        },
        {
            "type": "section",
            "text": {
                "type": "mrkdwn",
                "text": "*Why Security operation (0.97):* _Unos 11.000 efectivos tomaron el penal_",
            },
        },
        {
            "type": "actions",
            "elements": [
                {
                    "type": "button",
                    "text": {"type": "plain_text", "text": "Open story"},
                    "url": "https://example.com/tocoron",
                    "action_id": "open_story",
                },
                {
                    "type": "button",
                    "text": {"type": "plain_text", "text": "Relevant"},
                    "action_id": "sentinela_fb_relevant:7",
                    "value": feedback_value,
                    "style": "primary",
                },
                {
                    "type": "button",
                    "text": {"type": "plain_text", "text": "Not relevant"},
                    "action_id": "sentinela_fb_not_relevant:7",
                    "value": feedback_value,
                    "style": "danger",
                },
            ],
        },
        {"type": "context", "elements": [{"type": "mrkdwn", "text": "alert 7 · model abc123"}]},
    ]


def test_normal_severity_and_unknown_places(fake_slack: FakeSlack) -> None:
    """No prefix below the high tier; no country/facility/gang line when nothing is known."""
    alert = _alert(
        severity="normal",
        country=None,
        title="Requisa en un penal",
        text="Las autoridades hicieron una requisa.",
        evidence={},
    )
    blocks = slack_blocks(alert)
    assert blocks[0]["text"]["text"] == "Requisa en un penal"
    assert (
        blocks[1]["elements"][0]["text"] == "*elpitazo* · Spanish · published 2023-09-20 12:00 UTC"
    )
    assert blocks[2]["text"]["text"].startswith("*Labels:*")
    assert fallback_text(alert).startswith("[Sentinela] Requisa en un penal — ")
    hook = SlackHook(fake_slack.state.token, fake_slack.url, min_interval_s=0)
    SlackSink(hook, "#sentinela-alerts").send(alert)
    assert fake_slack.state.messages[0].blocks == blocks


def test_reply_payload(fake_slack: FakeSlack) -> None:
    hook = SlackHook(fake_slack.state.token, fake_slack.url, min_interval_s=0)
    parent = hook.post_message("#sentinela-alerts", "parent")
    alert = _alert(source="efecto-cocuyo", kind="reply", thread_ts=parent, url="https://x.org/a|b")
    ts = SlackSink(hook, "#sentinela-alerts").send(alert)
    reply = fake_slack.state.messages[-1]
    assert reply.ts == ts and reply.thread_ts == parent
    assert reply.text == (
        "also reported by efecto-cocuyo: Fuerzas venezolanas toman Tocorón https://x.org/a|b"
    )
    assert reply.blocks == [
        {
            "type": "section",
            "text": {
                "type": "mrkdwn",
                "text": "Also reported by *efecto-cocuyo*: <https://x.org/a%7Cb|Fuerzas venezolanas toman Tocorón>",
            },
        },
        {
            "type": "context",
            "elements": [
                {
                    "type": "mrkdwn",
                    "text": "Gang control of prison (0.91), Security operation (0.97) · alert 7",
                }
            ],
        },
    ]
    assert reply.metadata == {
        "event_type": "sentinela_alert",
        "event_payload": {"alert_id": 7, "item_id": 42},
    }


def test_long_and_hostile_content_stays_within_block_kit_limits(fake_slack: FakeSlack) -> None:
    alert = _alert(
        title="T" * 500,
        text="<b>&</b> " * 2000,
        source="s<script>",
        evidence={"gang_prison_control": "e" * 5000},
    )
    blocks = slack_blocks(alert)
    assert len(blocks) <= 50
    assert len(blocks[0]["text"]["text"]) <= 150
    assert all(len(b["text"]["text"]) <= 3000 for b in blocks if b["type"] == "section")
    assert "<script>" not in str(blocks)
    assert len(fallback_text(alert)) <= 4000
    hook = SlackHook(fake_slack.state.token, fake_slack.url, min_interval_s=0)
    SlackSink(hook, "#sentinela-alerts").send(alert)
    assert len(fake_slack.state.messages) == 1 and not fake_slack.state.rejected


def test_pacing_avoids_rate_limits(fake_slack: FakeSlack) -> None:
    hook = SlackHook(fake_slack.state.token, fake_slack.url, min_interval_s=1.0)
    t0 = time.monotonic()
    for i in range(3):
        hook.post_message("#sentinela-alerts", f"m{i}")
    assert time.monotonic() - t0 >= 2.0
    assert fake_slack.state.rate_limited == 0
    assert [m.text for m in fake_slack.state.messages] == ["m0", "m1", "m2"]


def test_429_is_retried_after_retry_after(fake_slack: FakeSlack) -> None:
    # No pacing on our side: the fake answers 429 + Retry-After and the hook must wait.
    hook = SlackHook(fake_slack.state.token, fake_slack.url, min_interval_s=0.0)
    for i in range(3):
        hook.post_message("#sentinela-alerts", f"m{i}")
    assert fake_slack.state.rate_limited >= 1
    assert [m.text for m in fake_slack.state.messages] == ["m0", "m1", "m2"]


def test_transient_5xx_is_retried(fake_slack: FakeSlack) -> None:
    fake_slack.state.faults.extend(["500", "503"])
    hook = SlackHook(fake_slack.state.token, fake_slack.url, min_interval_s=0.0)
    hook.post_message("#sentinela-alerts", "after outage")
    assert [m.text for m in fake_slack.state.messages] == ["after outage"]


def test_long_outage_raises_transient(fake_slack: FakeSlack) -> None:
    fake_slack.state.faults.extend(["503"] * 10)
    hook = SlackHook(fake_slack.state.token, fake_slack.url, min_interval_s=0.0, max_retries=2)
    with pytest.raises(TransientError):
        hook.post_message("#sentinela-alerts", "x")
    assert fake_slack.state.messages == []


def test_bad_token_and_unknown_channel_are_config_errors(fake_slack: FakeSlack) -> None:
    with pytest.raises(SlackConfigError, match="invalid_auth"):
        SlackHook("xoxb-wrong", fake_slack.url, min_interval_s=0).post_message(
            "#sentinela-alerts", "x"
        )
    with pytest.raises(SlackConfigError, match="channel_not_found"):
        SlackHook(fake_slack.state.token, fake_slack.url, min_interval_s=0).post_message(
            "#nope", "x"
        )
    assert fake_slack.state.messages == []
