"""Where alerts go: the console when no Slack token is set, Slack otherwise."""

from __future__ import annotations

import sys
from typing import Protocol, TextIO

from pipeline.alerts.compose import console_text, fallback_text, slack_blocks
from pipeline.alerts.slack_hook import SlackHook
from pipeline.config import Settings
from pipeline.storage.repo import PendingAlert


class AlertSink(Protocol):
    destination: str

    def send(self, alert: PendingAlert) -> str | None:
        """Deliver one alert; return the platform's message id when there is one."""


class ConsoleSink:
    destination = "console"

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stdout

    def send(self, alert: PendingAlert) -> str | None:
        print(console_text(alert), file=self.stream, flush=True)
        print(file=self.stream)
        return None


class SlackSink:
    def __init__(self, hook: SlackHook, channel: str) -> None:
        self.hook = hook
        self.destination = channel

    def send(self, alert: PendingAlert) -> str | None:
        return self.hook.post_message(
            channel=self.destination,
            text=fallback_text(alert),
            blocks=slack_blocks(alert),
            metadata={
                "event_type": "sentinela_alert",
                "event_payload": {"alert_id": alert.alert_id, "item_id": alert.item_id},
            },
        )


def make_sink(settings: Settings) -> AlertSink:
    if settings.slack_bot_token:
        hook = SlackHook(
            settings.slack_bot_token, settings.slack_api_url, settings.slack_min_interval_s
        )
        return SlackSink(hook, settings.slack_channel)
    return ConsoleSink()
