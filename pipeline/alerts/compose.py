"""Compose alerts: Block Kit for Slack, plain text for the console. No I/O here."""

from __future__ import annotations

import json
from typing import Any

from pipeline.alerts.entities import Entities, country_name, extract
from pipeline.storage.repo import PendingAlert

LABEL_NAMES = {
    "gang_prison_control": "Gang control of prison",
    "security_operation": "Security operation",
}
LANG_NAMES = {"en": "English", "es": "Spanish", "pt": "Portuguese"}
# Slack's documented limits.
MAX_BLOCKS = 50
MAX_SECTION_TEXT = 3000
MAX_HEADER_TEXT = 150
MAX_FALLBACK_TEXT = 4000
LEDE_CHARS = 600
HIGH_PREFIX = "🚨 HIGH · "
METADATA_EVENT = "sentinela_alert"
# Button action ids: "sentinela_fb_relevant:<alert id>", "sentinela_fb_not_relevant:<alert id>"
FEEDBACK_ACTION_PREFIX = "sentinela_fb_"


def _cut(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _mrkdwn_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def label_line(alert: PendingAlert) -> str:
    parts = [
        f"{LABEL_NAMES.get(lbl, lbl)} ({alert.scores.get(lbl, 0.0):.2f})" for lbl in alert.labels
    ]
    return ", ".join(parts)


def is_high(alert: PendingAlert) -> bool:
    return alert.severity == "high"


def fallback_text(alert: PendingAlert) -> str:
    tag = "[Sentinela HIGH]" if is_high(alert) else "[Sentinela]"
    return _cut(f"{tag} {alert.title} — {label_line(alert)} — {alert.url}", MAX_FALLBACK_TEXT)


def alert_metadata(alert: PendingAlert) -> dict[str, Any]:
    """Carried by every message: how a later run recognises it in the channel's history."""
    return {
        "event_type": METADATA_EVENT,
        "event_payload": {"alert_id": alert.alert_id, "item_id": alert.item_id},
    }


def alert_entities(alert: PendingAlert) -> Entities:
    return extract(f"{alert.title}\n{alert.text}", alert.country)


def entity_line(alert: PendingAlert, found: Entities | None = None) -> str:
    found = found or alert_entities(alert)
    parts = []
    if found.countries:
        parts.append("*Country:* " + ", ".join(country_name(c) for c in found.countries[:3]))
    elif alert.country:
        parts.append(f"*Country:* {_mrkdwn_escape(alert.country)}")
    if found.facilities:
        parts.append("*Facility:* " + ", ".join(found.facilities[:3]))
    if found.gangs:
        parts.append("*Gang:* " + ", ".join(found.gangs[:4]))
    return " · ".join(parts)


def _feedback_button(alert: PendingAlert, verdict: str, text: str, style: str) -> dict[str, Any]:
    return {
        "type": "button",
        "text": {"type": "plain_text", "text": text},
        "action_id": f"{FEEDBACK_ACTION_PREFIX}{verdict}:{alert.alert_id}",
        "value": json.dumps({"alert_id": alert.alert_id, "item_id": alert.item_id}),
        "style": style,
    }


def slack_blocks(alert: PendingAlert) -> list[dict[str, Any]]:
    """Block Kit message: headline (severity prefix), source, language, published time,
    country / facility / gang, labels with scores, lede, evidence per label, a link and
    the feedback buttons."""
    lang = LANG_NAMES.get(alert.lang or "", alert.lang or "unknown")
    published = alert.published_at.strftime("%Y-%m-%d %H:%M UTC") if alert.published_at else "n/a"
    context = f"*{_mrkdwn_escape(alert.source)}* · {lang} · published {published}"
    if is_high(alert):
        context += " · *high severity*"
    headline = (HIGH_PREFIX if is_high(alert) else "") + (alert.title or alert.url)
    blocks: list[dict[str, Any]] = [
        {
            "type": "header",
            "text": {"type": "plain_text", "text": _cut(headline, MAX_HEADER_TEXT), "emoji": True},
        },
        {
            "type": "context",
            "elements": [{"type": "mrkdwn", "text": _cut(context, MAX_SECTION_TEXT)}],
        },
    ]
    where = entity_line(alert)
    if where:
        blocks.append(
            {"type": "section", "text": {"type": "mrkdwn", "text": _cut(where, MAX_SECTION_TEXT)}}
        )
    blocks.append(
        {
            "type": "section",
            "text": {
                "type": "mrkdwn",
                "text": _cut(f"*Labels:* {label_line(alert)}", MAX_SECTION_TEXT),
            },
        }
    )
    if alert.text:
        blocks.append(
            {
                "type": "section",
                "text": {
                    "type": "mrkdwn",
                    "text": _cut(_mrkdwn_escape(_cut(alert.text, LEDE_CHARS)), MAX_SECTION_TEXT),
                },
            }
        )
    for label in alert.labels:
        sentence = alert.evidence.get(label)
        if sentence:
            name = LABEL_NAMES.get(label, label)
            score = alert.scores.get(label, 0.0)
            text = f"*Why {name} ({score:.2f}):* _{_mrkdwn_escape(_cut(sentence, 500))}_"
            blocks.append(
                {
                    "type": "section",
                    "text": {"type": "mrkdwn", "text": _cut(text, MAX_SECTION_TEXT)},
                }
            )
    blocks = blocks[: MAX_BLOCKS - 2]  # the buttons and the footer always fit
    blocks.append(
        {
            "type": "actions",
            "elements": [
                {
                    "type": "button",
                    "text": {"type": "plain_text", "text": "Open story"},
                    "url": alert.url[:3000],
                    "action_id": "open_story",
                },
                _feedback_button(alert, "relevant", "Relevant", "primary"),
                _feedback_button(alert, "not_relevant", "Not relevant", "danger"),
            ],
        }
    )
    blocks.append(
        {
            "type": "context",
            "elements": [
                {"type": "mrkdwn", "text": f"alert {alert.alert_id} · model {alert.model_version}"}
            ],
        }
    )
    return blocks


def _link(url: str, title: str) -> str:
    safe_title = _mrkdwn_escape(title).replace("|", "¦")
    return f"<{_mrkdwn_escape(url).replace('|', '%7C')}|{safe_title}>"


def reply_text(alert: PendingAlert) -> str:
    return _cut(f"also reported by {alert.source}: {alert.title} {alert.url}", MAX_FALLBACK_TEXT)


def reply_blocks(alert: PendingAlert) -> list[dict[str, Any]]:
    """A later report of the same story, posted in the first alert's thread."""
    line = (
        f"Also reported by *{_mrkdwn_escape(alert.source)}*: "
        f"{_link(alert.url, _cut(alert.title or alert.url, 300))}"
    )
    return [
        {"type": "section", "text": {"type": "mrkdwn", "text": _cut(line, MAX_SECTION_TEXT)}},
        {
            "type": "context",
            "elements": [
                {
                    "type": "mrkdwn",
                    "text": _cut(f"{label_line(alert)} · alert {alert.alert_id}", MAX_SECTION_TEXT),
                }
            ],
        },
    ]


def console_text(alert: PendingAlert) -> str:
    lang = LANG_NAMES.get(alert.lang or "", alert.lang or "unknown")
    if alert.kind == "reply":
        return f"   ↳ also reported by {alert.source}: {alert.title} {alert.url}"
    lines = [
        f"🚨 {'[HIGH] ' if is_high(alert) else ''}{alert.title}",
        f"   {alert.source} · {lang}" + (f" · {alert.country}" if alert.country else ""),
        f"   labels: {label_line(alert)}",
    ]
    where = entity_line(alert).replace("*", "")
    if where:
        lines.append(f"   {where}")
    if alert.text:
        lines.append(f"   {_cut(alert.text, 300)}")
    for label in alert.labels:
        if alert.evidence.get(label):
            lines.append(f"   why {label}: {_cut(alert.evidence[label], 240)}")
    lines.append(f"   {alert.url}")
    return "\n".join(lines)
