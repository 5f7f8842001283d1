"""The Slack hook: owns the token and the HTTP conversation with Slack's Web API.

It paces posts to one per `min_interval_s` per channel (Slack's documented limit for
chat.postMessage), retries 429 honouring Retry-After and transient 5xx/connection errors,
and maps Slack's error codes onto the project's taxonomy. Composition lives elsewhere.
"""

from __future__ import annotations

import functools
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.error import URLError

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackRequestError
from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
    ServerErrorRetryHandler,
)

from pipeline.errors import PermanentError, TransientError

T = TypeVar("T")
HISTORY_PAGE = 200
MAX_HISTORY_PAGES = 25  # 5,000 messages back: far more than one run can have posted


@dataclass(frozen=True)
class PostResult:
    ts: str
    channel_id: str


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


class SlackChannelError(SlackConfigError):
    """This one channel is unusable (unknown, archived, bot not in it): other channels go on."""


class SlackMessageError(PermanentError):
    """Slack will never accept this message."""


class SlackOutcomeUnknownError(TransientError):
    """The request went out and no answer came back (timeout, dropped connection): Slack
    may or may not have acted on it. Check the channel's history before trying again."""


CHANNEL_ERRORS = {"channel_not_found", "not_in_channel", "is_archived"}


@dataclass(frozen=True)
class SlackMessage:
    """A message read back from a channel's history or a thread."""

    ts: str
    text: str
    thread_ts: str | None
    metadata: dict[str, Any] | None


class SlackHook:
    def __init__(
        self,
        token: str,
        base_url: str,
        min_interval_s: float = 1.0,
        max_retries: int = 4,
        timeout_s: float = 15,
    ) -> None:
        if not base_url.endswith("/"):
            base_url += "/"
        self.client = WebClient(
            token=token,
            base_url=base_url,
            timeout=timeout_s,  # type: ignore[arg-type]  # urllib takes float seconds
            retry_handlers=[
                RateLimitErrorRetryHandler(max_retry_count=max_retries),
                ServerErrorRetryHandler(max_retry_count=max_retries),
                ConnectionErrorRetryHandler(max_retry_count=max_retries),
            ],
        )
        self.timeout_s = timeout_s
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

    def _paced(self, channel: str) -> None:
        # Count the interval from when the previous post was answered: Slack received it
        # before that, so the gap Slack sees is never shorter than the one we keep.
        with self._lock:
            self._last_post[channel] = time.monotonic()

    def _call(self, what: str, channel: str | None, fn: Callable[[], T]) -> T:
        """Run one Web API call and map every failure onto the taxonomy (the one place)."""
        try:
            return fn()
        except SlackApiError as exc:
            code = (
                str(exc.response.get("error", "unknown_error")) if exc.response else "unknown_error"
            )
            status = exc.response.status_code if exc.response is not None else 0
            where = f" and channel {channel}" if channel else ""
            if code in CHANNEL_ERRORS:
                raise SlackChannelError(
                    f"Slack refused {what} ({code}); check channel {channel} and that the bot "
                    "is in it"
                ) from exc
            if code in CONFIG_ERRORS:
                raise SlackConfigError(
                    f"Slack refused {what} ({code}); check SLACK_BOT_TOKEN{where}"
                ) from exc
            if code in MESSAGE_ERRORS:
                raise SlackMessageError(f"Slack rejected the message ({code})") from exc
            raise TransientError(f"Slack error {code} (HTTP {status}) on {what}") from exc
        except SlackRequestError as exc:
            raise TransientError(f"Slack {what} failed: {exc}") from exc
        except URLError as exc:
            if isinstance(exc.reason, ConnectionRefusedError | socket.gaierror):
                raise TransientError(f"Slack unreachable: {exc.reason}") from exc
            raise SlackOutcomeUnknownError(f"no answer from Slack to {what}: {exc}") from exc
        except (OSError, TimeoutError) as exc:
            if isinstance(exc, ConnectionRefusedError):
                raise TransientError(f"Slack unreachable: {exc}") from exc
            raise SlackOutcomeUnknownError(f"no answer from Slack to {what}: {exc}") from exc

    def post_message(
        self,
        channel: str,
        text: str,
        blocks: list[dict[str, Any]] | None = None,
        metadata: dict[str, Any] | None = None,
        thread_ts: str | None = None,
        reply_broadcast: bool | None = None,
    ) -> str:
        """Post and return Slack's `ts` for the message."""
        return self.post_message_full(
            channel, text, blocks, metadata, thread_ts, reply_broadcast
        ).ts

    def post_message_full(
        self,
        channel: str,
        text: str,
        blocks: list[dict[str, Any]] | None = None,
        metadata: dict[str, Any] | None = None,
        thread_ts: str | None = None,
        reply_broadcast: bool | None = None,
    ) -> PostResult:
        """Post; return the message's `ts` and the channel's id."""
        self._pace(channel)
        response = self._call(
            "chat.postMessage",
            channel,
            lambda: self.client.chat_postMessage(
                channel=channel,
                text=text,
                blocks=blocks,
                metadata=metadata,
                thread_ts=thread_ts,
                reply_broadcast=reply_broadcast,
                unfurl_links=False,
                unfurl_media=False,
            ),
        )
        self._paced(channel)
        return PostResult(ts=str(response["ts"]), channel_id=str(response.get("channel") or ""))

    def _messages(self, method: str, channel: str, **kwargs: Any) -> list[SlackMessage]:
        out: list[SlackMessage] = []
        cursor: str | None = None
        call = getattr(self.client, method.replace(".", "_"))
        for _ in range(MAX_HISTORY_PAGES):
            args: dict[str, Any] = {
                "channel": channel,
                "include_all_metadata": True,
                "limit": HISTORY_PAGE,
                "cursor": cursor,
                **kwargs,
            }
            response: Any = self._call(method, channel, functools.partial(call, **args))
            for m in response.get("messages") or []:
                out.append(
                    SlackMessage(
                        ts=str(m.get("ts")),
                        text=str(m.get("text") or ""),
                        thread_ts=m.get("thread_ts"),
                        metadata=m.get("metadata"),
                    )
                )
            cursor = (response.get("response_metadata") or {}).get("next_cursor") or None
            if not cursor:
                break
        return out

    def history(self, channel: str, oldest: float) -> list[SlackMessage]:
        """Top-level messages (and thread broadcasts) since `oldest` (epoch seconds), with
        their metadata."""
        return self._messages("conversations.history", channel, oldest=f"{oldest:.6f}")

    def replies(self, channel: str, thread_ts: str) -> list[SlackMessage]:
        """A thread: its parent and every reply, with their metadata."""
        return self._messages("conversations.replies", channel, ts=thread_ts)

    def auth_test(self) -> dict[str, Any]:
        response = self._call("auth.test", None, lambda: self.client.auth_test())
        return dict(response.data) if isinstance(response.data, dict) else {}

    def upload_file(
        self,
        channel_id: str,
        content: bytes,
        filename: str,
        title: str,
        thread_ts: str | None = None,
        initial_comment: str | None = None,
    ) -> str:
        """Upload through files_upload_v2 (getUploadURLExternal → upload →
        completeUploadExternal); `channel_id` must be an id (C…), as Slack requires.
        Returns the file id."""
        self._pace(channel_id)
        response = self._call(
            "files_upload_v2",
            channel_id,
            lambda: self.client.files_upload_v2(
                channel=channel_id,
                file=content,
                filename=filename,
                title=title,
                thread_ts=thread_ts,
                initial_comment=initial_comment,
            ),
        )
        file = response.get("file") or {}
        return str(file.get("id") or "")
