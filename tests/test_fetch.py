from __future__ import annotations

import gzip
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from pipeline.config import Settings
from pipeline.ingest.fetch import FetchState, fetch_all
from pipeline.items import Source

RSS = b"""<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel><title>t</title>
<item><title>One</title><link>https://example.com/1</link><description>x</description></item>
</channel></rss>"""


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a: object) -> None:
        return

    def do_GET(self) -> None:
        p = self.path
        if p == "/feed":
            if self.headers.get("If-None-Match") == '"v1"':
                self.send_response(304)
                self.send_header("ETag", '"v1"')
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self._send(200, RSS, {"ETag": '"v1"', "Last-Modified": "Mon, 23 Nov 2026 10:00:00 GMT"})
        elif p == "/gzip":
            self._send(200, gzip.compress(RSS), {"Content-Encoding": "gzip"})
        elif p == "/gzip-bomb":
            self._send(
                200, gzip.compress(b"<rss>" + b" " * 50_000_000), {"Content-Encoding": "gzip"}
            )
        elif p == "/huge":
            self.send_response(200)
            self.send_header("Content-Length", str(10 * 1024**3))
            self.end_headers()
            try:
                for _ in range(2000):
                    self.wfile.write(b"x" * 65536)
            except OSError:
                return
        elif p == "/chunked-huge":
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            try:
                for _ in range(2000):
                    chunk = b"x" * 65536
                    self.wfile.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
            except OSError:
                return
        elif p.startswith("/redirect/"):
            n = int(p.rsplit("/", 1)[1])
            self._send(302, b"", {"Location": f"/redirect/{n - 1}" if n > 0 else "/feed"})
        elif p == "/loop":
            self._send(301, b"", {"Location": "/loop"})
        elif p == "/to-metadata":
            self._send(302, b"", {"Location": "http://169.254.169.254/latest/meta-data/"})
        elif p == "/slow":
            self.send_response(200)
            self.send_header("Content-Length", "1000")
            self.end_headers()
            try:
                for _ in range(1000):
                    self.wfile.write(b"x")
                    self.wfile.flush()
                    time.sleep(0.5)
            except OSError:
                return
        elif p == "/500":
            self._send(500, b"oops")
        elif p == "/404":
            self._send(404, b"gone")
        else:
            self._send(404, b"")

    def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        try:
            self.wfile.write(body)
        except OSError:
            return


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    srv.daemon_threads = True
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()


def _src(url: str, name: str = "s", allow_private: bool = True) -> Source:
    return Source(name=name, kind="rss", url=url, allow_private=allow_private)


def _settings(**kw: object) -> Settings:
    base: dict[str, object] = {"fetch_timeout_s": 2.0, "max_body_bytes": 1024 * 1024}
    return Settings.from_env({}).with_(**{**base, **kw})


def test_conditional_get_round_trip(server: str) -> None:
    (first,) = fetch_all([_src(server + "/feed")], {}, _settings())
    assert first.ok and first.status == 200 and first.body == RSS
    assert first.etag == '"v1"'
    state = {"s": FetchState(first.etag, first.last_modified)}
    (second,) = fetch_all([_src(server + "/feed")], state, _settings())
    assert second.not_modified and second.status == 304 and second.body is None


def test_gzip_is_decoded(server: str) -> None:
    (r,) = fetch_all([_src(server + "/gzip")], {}, _settings())
    assert r.body == RSS


@pytest.mark.parametrize("path", ["/gzip-bomb", "/huge", "/chunked-huge"])
def test_body_cap(server: str, path: str) -> None:
    (r,) = fetch_all([_src(server + path)], {}, _settings())
    assert not r.ok and r.error_kind == "permanent" and "cap" in (r.error or "")


def test_redirects_followed_up_to_five(server: str) -> None:
    ok, too_many, loop = fetch_all(
        [
            _src(server + "/redirect/4", "a"),
            _src(server + "/redirect/6", "b"),
            _src(server + "/loop", "c"),
        ],
        {},
        _settings(),
    )
    assert ok.ok and ok.body == RSS
    assert not too_many.ok and "redirects" in (too_many.error or "")
    assert not loop.ok


def test_ssrf_guard_blocks_loopback_unless_allowed(server: str) -> None:
    (r,) = fetch_all([_src(server + "/feed", allow_private=False)], {}, _settings())
    assert not r.ok and r.error_kind == "permanent" and "non-public" in (r.error or "")
    (r,) = fetch_all(
        [_src(server + "/feed", allow_private=False)], {}, _settings(allow_private_hosts=True)
    )
    assert r.ok


def test_non_public_addresses_are_recognised() -> None:
    # What the guard refuses on every hop (first URL and each redirect): link-local cloud
    # metadata, IPv4-mapped loopback; a public address passes.
    from pipeline.ingest.netguard import is_public_ip

    assert not is_public_ip("169.254.169.254")
    assert not is_public_ip("::ffff:127.0.0.1")
    assert is_public_ip("8.8.8.8")


def test_slow_drip_server_times_out(server: str) -> None:
    t0 = time.monotonic()
    (r,) = fetch_all([_src(server + "/slow")], {}, _settings(fetch_timeout_s=1.0))
    assert not r.ok and r.error_kind == "transient" and "timed out" in (r.error or "")
    assert time.monotonic() - t0 < 10


def test_status_errors_are_classified(server: str) -> None:
    five, four = fetch_all(
        [_src(server + "/500", "a"), _src(server + "/404", "b")], {}, _settings()
    )
    assert five.error_kind == "transient" and "HTTP 500" in (five.error or "")
    assert four.error_kind == "permanent" and "HTTP 404" in (four.error or "")


def test_unreachable_and_unresolvable_hosts_do_not_stop_others(server: str) -> None:
    results = fetch_all(
        [
            _src("http://127.0.0.1:9/feed", "dead"),
            _src("http://no-such-host.invalid/feed", "nx"),
            _src(server + "/feed", "good"),
        ],
        {},
        _settings(),
    )
    by = {r.source: r for r in results}
    assert not by["dead"].ok and by["dead"].error_kind == "transient"
    assert not by["nx"].ok
    assert by["good"].ok


def test_non_http_scheme_refused() -> None:
    (r,) = fetch_all([_src("file:///etc/passwd")], {}, _settings())
    assert not r.ok and r.error_kind == "permanent"
