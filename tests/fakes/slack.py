"""A local stand-in for Slack's Web API, strict where Slack is strict.

It checks the bearer token and the channel, enforces Block Kit limits (50 blocks, 3,000
characters per section text, 150 per header), answers 429 with Retry-After when a channel
is posted to faster than `min_interval` seconds, and can be told to fail the next requests
(HTTP 5xx, 429, timeouts, connection drops) to test faults. Posted messages are kept.

Methods: auth.test, chat.postMessage (thread_ts must name a message of that channel;
reply_broadcast), conversations.history and conversations.replies (metadata only with
include_all_metadata, newest first / thread order, cursor pagination), the three steps of
files_upload_v2 (files.getUploadURLExternal → POST to the upload URL →
files.completeUploadExternal, which wants a channel *id*), and apps.connections.open
(app-level token only; answers `socket_url`). A "timeout" fault stalls `stall_s` seconds
and then does the work anyway, as a slow Slack would: the client gave up, the post landed.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass
class Posted:
    channel: str
    text: str
    blocks: list[dict[str, Any]] | None
    metadata: dict[str, Any] | None
    thread_ts: str | None
    ts: str
    at: float
    reply_broadcast: bool = False


@dataclass
class Uploaded:
    file_id: str
    filename: str
    length: int
    data: bytes | None = None
    title: str | None = None
    channel: str | None = None
    thread_ts: str | None = None
    initial_comment: str | None = None
    completed: bool = False


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
    stall_s: float = 3.0
    app_token: str = "xapp-test-token"
    socket_url: str | None = None  # what apps.connections.open hands out
    files: dict[str, Uploaded] = field(default_factory=dict)
    calls: list[str] = field(default_factory=list)  # method names, in order
    in_flight: int = 0
    base_url: str = ""

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
            try:
                self._send_head(status, data, headers)
            except (BrokenPipeError, ConnectionResetError):
                return
            # The client may have given up waiting (a "timeout" fault); the work is done.
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                self.wfile.write(data)

        def _send_head(self, status: int, data: bytes, headers: dict[str, str] | None) -> None:
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()

        def _body(self) -> bytes:
            length = int(self.headers.get("Content-Length") or 0)
            return self.rfile.read(length) if length else b""

        def _params(self, raw: bytes) -> dict[str, Any]:
            # Slack takes arguments in the query string and in a form or JSON body.
            params: dict[str, Any] = {
                k: v[0] for k, v in parse_qs(urlsplit(self.path).query).items()
            }
            ctype = self.headers.get("Content-Type", "")
            if "application/json" in ctype:
                params.update(json.loads(raw or b"{}"))
            elif raw:
                params.update({k: v[0] for k, v in parse_qs(raw.decode()).items()})
            return params

        def do_GET(self) -> None:
            self._handle(b"")

        def do_POST(self) -> None:
            self._handle(self._body())

        def _handle(self, raw: bytes) -> None:
            with state.lock:
                state.in_flight += 1
            try:
                self._dispatch(raw)
            finally:
                with state.lock:
                    state.in_flight -= 1

        def _dispatch(self, raw: bytes) -> None:
            path = urlsplit(self.path).path
            method = path.rstrip("/").rsplit("/", 1)[-1]
            with state.lock:
                fault = state.faults.pop(0) if state.faults else None
                state.calls.append(method)
            if fault == "drop":
                self.close_connection = True
                self.connection.shutdown(2)
                return
            if fault == "timeout":
                time.sleep(state.stall_s)
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
            if path.startswith("/upload/"):
                self._upload(path.rsplit("/", 1)[-1], raw)
                return
            params = self._params(raw)
            auth = self.headers.get("Authorization", "")
            if method == "apps.connections.open":
                # Only an app-level token opens a Socket Mode connection.
                if auth != f"Bearer {state.app_token}":
                    err = "invalid_auth" if auth else "not_authed"
                    self._reply(200, {"ok": False, "error": err})
                elif not state.socket_url:
                    self._reply(200, {"ok": False, "error": "socket_mode_not_enabled"})
                else:
                    self._reply(200, {"ok": True, "url": state.socket_url})
                return
            if auth != f"Bearer {state.token}":
                self._reply(200, {"ok": False, "error": "invalid_auth" if auth else "not_authed"})
                return
            handlers = {
                "auth.test": self._auth_test,
                "chat.postMessage": self._post_message,
                "conversations.history": self._history,
                "conversations.replies": self._replies,
                "files.getUploadURLExternal": self._get_upload_url,
                "files.completeUploadExternal": self._complete_upload,
            }
            handler = handlers.get(method)
            if handler is None:
                self._reply(200, {"ok": False, "error": "unknown_method"})
                return
            handler(params)

        def _auth_test(self, params: dict[str, Any]) -> None:
            self._reply(
                200,
                {
                    "ok": True,
                    "url": "https://sentinela-test.slack.com/",
                    "team": "Sentinela Test",
                    "user": "sentinela",
                    "team_id": "T0TEST",
                    "user_id": "U0SENTINELA",
                    "bot_id": "B0SENTINELA",
                },
            )

        def _channel(self, params: dict[str, Any]) -> str | None:
            cid = state.channel_id(str(params.get("channel") or ""))
            if cid is None:
                state.rejected.append("channel_not_found")
                self._reply(200, {"ok": False, "error": "channel_not_found"})
            return cid

        def _as_history(self, m: Posted, with_metadata: bool) -> dict[str, Any]:
            out: dict[str, Any] = {
                "type": "message",
                "user": "U0SENTINELA",
                "bot_id": "B0SENTINELA",
                "text": m.text,
                "ts": m.ts,
            }
            if m.blocks is not None:
                out["blocks"] = m.blocks
            if m.thread_ts:
                out["thread_ts"] = m.thread_ts
                if m.reply_broadcast:
                    out["subtype"] = "thread_broadcast"
            if with_metadata and m.metadata:
                out["metadata"] = m.metadata
            return out

        def _page(self, found: list[Posted], params: dict[str, Any], with_metadata: bool) -> None:
            try:
                limit = min(int(params.get("limit") or 100), 999)
                start = int(params.get("cursor") or 0)
            except ValueError:
                self._reply(200, {"ok": False, "error": "invalid_cursor"})
                return
            page = found[start : start + limit]
            more = start + limit < len(found)
            body: dict[str, Any] = {
                "ok": True,
                "messages": [self._as_history(m, with_metadata) for m in page],
                "has_more": more,
                "response_metadata": {"next_cursor": str(start + limit) if more else ""},
            }
            self._reply(200, body)

        def _history(self, params: dict[str, Any]) -> None:
            cid = self._channel(params)
            if cid is None:
                return
            oldest = float(params.get("oldest") or 0)
            latest = float(params.get("latest") or 1e12)
            with_metadata = str(params.get("include_all_metadata") or "") in ("1", "true")
            with state.lock:
                found = [
                    m
                    for m in state.messages
                    if m.channel == cid
                    and oldest < float(m.ts) <= latest
                    and (m.thread_ts is None or m.reply_broadcast)
                ]
            found.sort(key=lambda m: float(m.ts), reverse=True)  # newest first, as Slack
            self._page(found, params, with_metadata)

        def _replies(self, params: dict[str, Any]) -> None:
            cid = self._channel(params)
            if cid is None:
                return
            ts = str(params.get("ts") or "")
            with_metadata = str(params.get("include_all_metadata") or "") in ("1", "true")
            with state.lock:
                parent = [m for m in state.messages if m.channel == cid and m.ts == ts]
                replies = [m for m in state.messages if m.channel == cid and m.thread_ts == ts]
            if not parent:
                self._reply(200, {"ok": False, "error": "thread_not_found"})
                return
            replies.sort(key=lambda m: float(m.ts))
            self._page(parent + replies, params, with_metadata)

        def _get_upload_url(self, params: dict[str, Any]) -> None:
            filename = str(params.get("filename") or "")
            try:
                length = int(params.get("length") or 0)
            except ValueError:
                length = 0
            if not filename or length <= 0:
                self._reply(200, {"ok": False, "error": "invalid_arguments"})
                return
            file_id = "F" + uuid.uuid4().hex[:10].upper()
            with state.lock:
                state.files[file_id] = Uploaded(file_id, filename, length)
            self._reply(
                200,
                {"ok": True, "upload_url": f"{state.base_url}upload/{file_id}", "file_id": file_id},
            )

        def _upload(self, file_id: str, raw: bytes) -> None:
            with state.lock:
                f = state.files.get(file_id)
                if f is not None and len(raw) == f.length:
                    f.data = raw
            if f is None or f.data is None:
                data = b"not found" if f is None else b"length mismatch"
                self.send_response(404 if f is None else 400)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                return
            data = f"OK - {len(raw)}".encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _complete_upload(self, params: dict[str, Any]) -> None:
            try:
                files = json.loads(params.get("files") or "[]")
            except json.JSONDecodeError:
                self._reply(200, {"ok": False, "error": "invalid_arguments"})
                return
            channel = params.get("channel_id")
            if channel is not None and channel not in state.channels.values():
                # A channel *name* is not accepted here: Slack wants the id.
                self._reply(200, {"ok": False, "error": "channel_not_found"})
                return
            thread_ts = params.get("thread_ts")
            out = []
            with state.lock:
                for entry in files:
                    f = state.files.get(str(entry.get("id")))
                    if f is None or f.data is None:
                        self._reply(200, {"ok": False, "error": "file_not_found"})
                        return
                for entry in files:
                    f = state.files[str(entry["id"])]
                    f.title = entry.get("title") or f.filename
                    f.channel = channel
                    f.thread_ts = thread_ts
                    f.initial_comment = params.get("initial_comment")
                    f.completed = True
                    out.append({"id": f.file_id, "name": f.filename, "title": f.title})
            self._reply(200, {"ok": True, "files": out})

        def _post_message(self, params: dict[str, Any]) -> None:
            cid = self._channel(params)
            if cid is None:
                return
            thread_ts = params.get("thread_ts") or None
            if thread_ts is not None:
                with state.lock:
                    known = any(
                        m.channel == cid and m.ts == thread_ts and m.thread_ts is None
                        for m in state.messages
                    )
                if not known:
                    state.rejected.append("thread_not_found")
                    self._reply(200, {"ok": False, "error": "thread_not_found"})
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
                broadcast = str(params.get("reply_broadcast") or "") in ("1", "true")
                state.messages.append(
                    Posted(cid, text, blocks, metadata, thread_ts, ts, now, broadcast)
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
        self.state.base_url = f"http://127.0.0.1:{self.server.server_address[1]}/"

    def top_level(self, channel_id: str) -> list[Posted]:
        return [m for m in self.state.messages if m.channel == channel_id and not m.thread_ts]

    def idle(self, timeout: float = 10.0) -> None:
        """Wait until no request is being served (a stalled post has landed)."""
        deadline = time.monotonic() + timeout
        while self.state.in_flight and time.monotonic() < deadline:
            time.sleep(0.02)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/api/"

    def __enter__(self) -> FakeSlack:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
