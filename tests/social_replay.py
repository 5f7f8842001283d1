"""A local HTTP server that replays platform payloads from tests/fixtures/social and records
every request, so connector tests can assert what was asked (paging params, auth headers)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

FIXTURES = Path(__file__).parent / "fixtures" / "social"


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes


Reply = tuple[int, dict[str, str], bytes]


@dataclass
class Replay:
    url: str = ""
    requests: list[Request] = field(default_factory=list)
    state: dict[str, Any] = field(default_factory=dict)

    def paths(self) -> list[str]:
        return [r.path for r in self.requests]


def json_reply(body: bytes, headers: dict[str, str] | None = None) -> Reply:
    return 200, {"Content-Type": "application/json; charset=utf-8", **(headers or {})}, body


@contextmanager
def replay(route: Callable[[Request, Replay], Reply]) -> Iterator[Replay]:
    rec = Replay()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *a: object) -> None:
            return

        def _handle(self) -> None:
            parts = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            req = Request(
                self.command,
                parts.path,
                dict(parse_qsl(parts.query, keep_blank_values=True)),
                {k.lower(): v for k, v in self.headers.items()},
                self.rfile.read(length) if length else b"",
            )
            rec.requests.append(req)
            status, headers, body = route(req, rec)
            self.send_response(status)
            for k, v in headers.items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = _handle
        do_POST = _handle

    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    srv.daemon_threads = True
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    rec.url = f"http://127.0.0.1:{srv.server_address[1]}"
    try:
        yield rec
    finally:
        srv.shutdown()
        srv.server_close()
