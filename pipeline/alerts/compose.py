"""Compose alerts: Block Kit for Slack, plain text for the console. No I/O here."""

from __future__ import annotations

from typing import Any

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


def fallback_text(alert: PendingAlert) -> str:
    return _cut(f"[Sentinela] {alert.title} — {label_line(alert)} — {alert.url}", MAX_FALLBACK_TEXT)


def slack_blocks(alert: PendingAlert) -> list[dict[str, Any]]:
    """Block Kit message: title, source, language, labels with scores, lede, evidence, link."""
    lang = LANG_NAMES.get(alert.lang or "", alert.lang or "unknown")
    published = alert.published_at.strftime("%Y-%m-%d %H:%M UTC") if alert.published_at else "n/a"
    context = f"*{_mrkdwn_escape(alert.source)}* · {lang}"
    if alert.country:
        context += f" · {_mrkdwn_escape(alert.country)}"
    context += f" · published {published}"
    blocks: list[dict[str, Any]] = [
        {
            "type": "header",
            "text": {
                "type": "plain_text",
                "text": _cut(alert.title or alert.url, MAX_HEADER_TEXT),
                "emoji": False,
            },
        },
        {
            "type": "context",
            "elements": [{"type": "mrkdwn", "text": _cut(context, MAX_SECTION_TEXT)}],
        },
        {
            "type": "section",
            "text": {
                "type": "mrkdwn",
                "text": _cut(f"*Labels:* {label_line(alert)}", MAX_SECTION_TEXT),
            },
        },
    ]
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
            text = f"*Why {LABEL_NAMES.get(label, label)}:* _{_mrkdwn_escape(_cut(sentence, 500))}_"
            blocks.append(
                {
                    "type": "section",
                    "text": {"type": "mrkdwn", "text": _cut(text, MAX_SECTION_TEXT)},
                }
            )
    blocks.append(
        {
            "type": "actions",
            "elements": [
                {
                    "type": "button",
                    "text": {"type": "plain_text", "text": "Open story"},
                    "url": alert.url[:3000],
                    "action_id": "open_story",
                }
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
    return blocks[:MAX_BLOCKS]


def console_text(alert: PendingAlert) -> str:
    lang = LANG_NAMES.get(alert.lang or "", alert.lang or "unknown")
    lines = [
        f"🚨 {alert.title}",
        f"   {alert.source} · {lang}" + (f" · {alert.country}" if alert.country else ""),
        f"   labels: {label_line(alert)}",
    ]
    if alert.text:
        lines.append(f"   {_cut(alert.text, 300)}")
    for label in alert.labels:
        if alert.evidence.get(label):
            lines.append(f"   why {label}: {_cut(alert.evidence[label], 240)}")
    lines.append(f"   {alert.url}")
    return "\n".join(lines)
