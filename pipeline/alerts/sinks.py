"""Where alerts go: the console when no Slack token is set, Slack otherwise."""

from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import Protocol, TextIO

from pipeline.alerts.compose import (
    METADATA_EVENT,
    alert_metadata,
    console_text,
    fallback_text,
    reply_blocks,
    reply_text,
    slack_blocks,
)
from pipeline.alerts.slack_hook import SlackHook, SlackMessage
from pipeline.config import Settings
from pipeline.storage.repo import PendingAlert

CONSOLE = "console"


class AlertSink(Protocol):
    destination: str  # the default channel ("console" for the console)
    # Seconds a maybe-posted alert is left alone before its channel's history is trusted to
    # show it (a request that timed out may still land).
    settle_s: float

    def handles(self, channel: str) -> bool:
        """Whether this sink delivers alerts recorded for `channel`."""

    def send(self, alert: PendingAlert) -> str | None:
        """Deliver one alert (a reply when `alert.thread_ts` is set); return the platform's
        message id when there is one."""

    def posted(
        self, channel: str, oldest: float, threads: Iterable[str]
    ) -> dict[int, tuple[int, str]] | None:
        """alert id -> (item id, ts) of Sentinela messages already in `channel` since
        `oldest` (epoch seconds) and in the given threads; None when the sink cannot tell."""


class ConsoleSink:
    destination = CONSOLE
    settle_s = 0.0

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stdout

    def handles(self, channel: str) -> bool:
        return channel == CONSOLE

    def send(self, alert: PendingAlert) -> str | None:
        print(console_text(alert), file=self.stream, flush=True)
        print(file=self.stream)
        return None

    def posted(
        self, channel: str, oldest: float, threads: Iterable[str]
    ) -> dict[int, tuple[int, str]] | None:
        return None  # a terminal has no history: a crash mid-print may print an alert twice


class SlackSink:
    def __init__(self, hook: SlackHook, channel: str) -> None:
        self.hook = hook
        self.destination = channel
        self.settle_s = 2 * float(hook.timeout_s)

    def handles(self, channel: str) -> bool:
        return channel != CONSOLE

    def send(self, alert: PendingAlert) -> str | None:
        if alert.thread_ts:
            return self.hook.post_message(
                channel=alert.channel,
                text=reply_text(alert),
                blocks=reply_blocks(alert),
                metadata=alert_metadata(alert),
                thread_ts=alert.thread_ts,
            )
        return self.hook.post_message(
            channel=alert.channel,
            text=fallback_text(alert),
            blocks=slack_blocks(alert),
            metadata=alert_metadata(alert),
        )

    def posted(
        self, channel: str, oldest: float, threads: Iterable[str]
    ) -> dict[int, tuple[int, str]] | None:
        messages = self.hook.history(channel, oldest)
        for ts in sorted(set(threads)):
            messages += self.hook.replies(channel, ts)
        return _sentinela_messages(messages)


def _sentinela_messages(messages: Iterable[SlackMessage]) -> dict[int, tuple[int, str]]:
    found: dict[int, tuple[int, str]] = {}
    for m in messages:
        meta = m.metadata or {}
        if meta.get("event_type") != METADATA_EVENT:
            continue
        payload = meta.get("event_payload") or {}
        try:
            alert_id = int(payload["alert_id"])
            item_id = int(payload["item_id"])
        except (KeyError, TypeError, ValueError):
            continue
        # Keep the first: if a message was ever duplicated, the thread hangs off the oldest.
        if alert_id not in found or float(m.ts) < float(found[alert_id][1]):
            found[alert_id] = (item_id, m.ts)
    return found


def make_hook(settings: Settings) -> SlackHook:
    if not settings.slack_bot_token:
        raise ValueError("SLACK_BOT_TOKEN is not set")
    return SlackHook(
        settings.slack_bot_token, settings.slack_api_url, settings.slack_min_interval_s
    )


def make_sink(settings: Settings) -> AlertSink:
    if settings.slack_bot_token:
        return SlackSink(make_hook(settings), settings.slack_channel)
    return ConsoleSink()
