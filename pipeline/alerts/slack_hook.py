"""The Slack hook: owns the token and the HTTP conversation with Slack's Web API.

It paces posts to one per `min_interval_s` per channel (Slack's documented limit for
chat.postMessage), retries 429 honouring Retry-After and transient 5xx/connection errors,
and maps Slack's error codes onto the project's taxonomy. Composition lives elsewhere.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
    ServerErrorRetryHandler,
)

from pipeline.errors import PermanentError, TransientError

# Errors that concern the whole configuration: sending more will fail the same way.
CONFIG_ERRORS = {
    "invalid_auth",
    "not_authed",
    "account_inactive",
    "token_revoked",
    "token_expired",
    "channel_not_found",
    "not_in_channel",
    "is_archived",
    "missing_scope",
    "no_permission",
}
# Errors that concern this one message: it will never be accepted as it is.
MESSAGE_ERRORS = {
    "invalid_blocks",
    "invalid_blocks_format",
    "msg_too_long",
    "no_text",
    "too_many_attachments",
    "invalid_metadata_format",
    "invalid_metadata_schema",
}


class SlackConfigError(PermanentError):
    """Token or channel is wrong: stop sending, keep every alert pending."""


class SlackMessageError(PermanentError):
    """Slack will never accept this message."""


class SlackHook:
    def __init__(
        self,
        token: str,
        base_url: str,
        min_interval_s: float = 1.0,
        max_retries: int = 4,
        timeout_s: int = 15,
    ) -> None:
        if not base_url.endswith("/"):
            base_url += "/"
        self.client = WebClient(
            token=token,
            base_url=base_url,
            timeout=timeout_s,
            retry_handlers=[
                RateLimitErrorRetryHandler(max_retry_count=max_retries),
                ServerErrorRetryHandler(max_retry_count=max_retries),
                ConnectionErrorRetryHandler(max_retry_count=max_retries),
            ],
        )
        self.min_interval_s = min_interval_s
        self._last_post: dict[str, float] = {}
        self._lock = threading.Lock()

    def _pace(self, channel: str) -> None:
        with self._lock:
            last = self._last_post.get(channel)
            now = time.monotonic()
            if last is not None and now - last < self.min_interval_s:
                time.sleep(self.min_interval_s - (now - last))
            self._last_post[channel] = time.monotonic()

    def post_message(
        self,
        channel: str,
        text: str,
        blocks: list[dict[str, Any]] | None = None,
        metadata: dict[str, Any] | None = None,
        thread_ts: str | None = None,
    ) -> str:
        """Post and return Slack's `ts` for the message."""
        self._pace(channel)
        try:
            response = self.client.chat_postMessage(
                channel=channel,
                text=text,
                blocks=blocks,
                metadata=metadata,
                thread_ts=thread_ts,
                unfurl_links=False,
                unfurl_media=False,
            )
        except SlackApiError as exc:
            code = (
                str(exc.response.get("error", "unknown_error")) if exc.response else "unknown_error"
            )
            status = exc.response.status_code if exc.response is not None else 0
            if code in CONFIG_ERRORS:
                raise SlackConfigError(
                    f"Slack refused ({code}); check SLACK_BOT_TOKEN and channel {channel}"
                ) from exc
            if code in MESSAGE_ERRORS:
                raise SlackMessageError(f"Slack rejected the message ({code})") from exc
            raise TransientError(f"Slack error {code} (HTTP {status})") from exc
        except (OSError, TimeoutError) as exc:
            raise TransientError(f"Slack unreachable: {exc}") from exc
        return str(response["ts"])
