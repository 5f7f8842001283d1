"""A local stand-in for Slack's Web API, strict where Slack is strict.

It checks the bearer token and the channel, enforces Block Kit limits (50 blocks, 3,000
characters per section text, 150 per header), answers 429 with Retry-After when a channel
is posted to faster than `min_interval` seconds, and can be told to fail the next requests
(HTTP 5xx, 429, timeouts, connection drops) to test faults. Posted messages are kept.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs


@dataclass
class Posted:
    channel: str
    text: str
    blocks: list[dict[str, Any]] | None
    metadata: dict[str, Any] | None
    thread_ts: str | None
    ts: str
    at: float


@dataclass
class FakeSlackState:
    token: str = "xoxb-test-token"
    channels: dict[str, str] = field(
        default_factory=lambda: {"#sentinela-alerts": "C0ALERTS", "#ops": "C0OPS"}
    )
    min_interval: float = 1.0
    retry_after: int = 1
    messages: list[Posted] = field(default_factory=list)
    rate_limited: int = 0
    rejected: list[str] = field(default_factory=list)
    faults: list[str] = field(default_factory=list)  # "500", "503", "429", "timeout", "drop"
    last_post: dict[str, float] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    counter: int = 0

    def channel_id(self, name: str) -> str | None:
        if name in self.channels:
            return self.channels[name]
        if name in self.channels.values():
            return name
        return None


def _block_error(blocks: Any) -> str | None:
    if blocks is None:
        return None
    if isinstance(blocks, str):
        try:
            blocks = json.loads(blocks)
        except json.JSONDecodeError:
            return "invalid_blocks_format"
    if not isinstance(blocks, list):
        return "invalid_blocks_format"
    if len(blocks) > 50:
        return "invalid_blocks"
    for b in blocks:
        if not isinstance(b, dict) or "type" not in b:
            return "invalid_blocks"
        text = b.get("text")
        if b["type"] == "header" and (
            not text or text.get("type") != "plain_text" or len(text.get("text", "")) > 150
        ):
            return "invalid_blocks"
        if b["type"] == "section" and text is not None and len(text.get("text", "")) > 3000:
            return "invalid_blocks"
        if b["type"] == "actions":
            for el in b.get("elements", []):
                if el.get("type") == "button" and len(el.get("url", "")) > 3000:
                    return "invalid_blocks"
                if el.get("type") == "button" and len(el.get("text", {}).get("text", "")) > 75:
                    return "invalid_blocks"
        if b["type"] == "context" and len(b.get("elements", [])) > 10:
            return "invalid_blocks"
    return None


def _handler(state: FakeSlackState) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            return

        def _reply(
            self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None
        ) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(data)

        def _params(self) -> dict[str, Any]:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            ctype = self.headers.get("Content-Type", "")
            if "application/json" in ctype:
                return json.loads(raw or b"{}")
            return {k: v[0] for k, v in parse_qs(raw.decode()).items()}

        def do_POST(self) -> None:
            params = self._params()
            method = self.path.rstrip("/").rsplit("/", 1)[-1]
            with state.lock:
                fault = state.faults.pop(0) if state.faults else None
            if fault == "drop":
                self.close_connection = True
                self.connection.shutdown(2)
                return
            if fault == "timeout":
                time.sleep(3)
            elif fault and fault.isdigit():
                status = int(fault)
                if status == 429:
                    self._reply(
                        429,
                        {"ok": False, "error": "ratelimited"},
                        {"Retry-After": str(state.retry_after)},
                    )
                else:
                    self._reply(status, {"ok": False, "error": "fatal_error"})
                return
            auth = self.headers.get("Authorization", "")
            if auth != f"Bearer {state.token}":
                self._reply(200, {"ok": False, "error": "invalid_auth" if auth else "not_authed"})
                return
            if method == "auth.test":
                self._reply(200, {"ok": True, "user_id": "U0SENTINELA", "team_id": "T0TEST"})
                return
            if method == "chat.postMessage":
                self._post_message(params)
                return
            self._reply(200, {"ok": False, "error": "unknown_method"})

        def _post_message(self, params: dict[str, Any]) -> None:
            channel = str(params.get("channel") or "")
            cid = state.channel_id(channel)
            if cid is None:
                state.rejected.append("channel_not_found")
                self._reply(200, {"ok": False, "error": "channel_not_found"})
                return
            blocks = params.get("blocks")
            if isinstance(blocks, str):
                blocks = json.loads(blocks)
            err = _block_error(blocks)
            text = params.get("text") or ""
            if not err and not text and not blocks:
                err = "no_text"
            if not err and len(text) > 40000:
                err = "msg_too_long"
            if err:
                state.rejected.append(err)
                self._reply(200, {"ok": False, "error": err})
                return
            with state.lock:
                now = time.monotonic()
                last = state.last_post.get(cid)
                if last is not None and now - last < state.min_interval:
                    state.rate_limited += 1
                    self._reply(
                        429,
                        {"ok": False, "error": "ratelimited"},
                        {"Retry-After": str(state.retry_after)},
                    )
                    return
                state.last_post[cid] = now
                state.counter += 1
                ts = f"{int(time.time())}.{state.counter:06d}"
                metadata = params.get("metadata")
                if isinstance(metadata, str):
                    metadata = json.loads(metadata)
                state.messages.append(
                    Posted(cid, text, blocks, metadata, params.get("thread_ts"), ts, now)
                )
            self._reply(
                200, {"ok": True, "channel": cid, "ts": ts, "message": {"text": text, "ts": ts}}
            )

    return Handler


class FakeSlack:
    def __init__(self, **state: Any) -> None:
        self.state = FakeSlackState(**state)
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self.state))
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/api/"

    def __enter__(self) -> FakeSlack:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
