"""Source health: exponential back-off of failing sources, silence detection, and what
`sentinela sources check` prints. Real local HTTP servers, SQLite and PostgreSQL."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import sqlalchemy as sa

from pipeline.config import Settings
from pipeline.health import format_health, source_health
from pipeline.ingest.canonical import canonical_url
from pipeline.items import Item, Source
from pipeline.run import RunSummary, ingest
from pipeline.storage import repo
from pipeline.storage.schema import sources

ROOT = Path(__file__).resolve().parents[1]
SENTINELA = str(Path(sys.executable).parent / "sentinela")
RSS = (
    b'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>ok</title>'
    b"<item><title>Requisa en la carcel de Tocoron</title><link>https://ok.example/1</link>"
    b"<description>La Guardia Nacional hallo armas y telefonos en el penal.</description></item>"
    b"</channel></rss>"
)


class _Flaky:
    """A feed server that fails with 500 until told to recover, counting requests."""

    def __init__(self) -> None:
        self.hits: dict[str, int] = {}
        self.healthy = False


@contextmanager
def _server(state: _Flaky) -> Iterator[str]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            state.hits[self.path] = state.hits.get(self.path, 0) + 1
            if self.path == "/dead.xml" and not state.healthy:
                self.send_error(500)
                return
            self.send_response(200)
            self.send_header("Content-Type", "application/rss+xml")
            self.send_header("Content-Length", str(len(RSS)))
            self.end_headers()
            self.wfile.write(RSS)

        def log_message(self, format: str, *args: object) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


def _source_row(engine: sa.Engine, name: str) -> sa.Row:
    with engine.connect() as conn:
        return conn.execute(sa.select(sources).where(sources.c.name == name)).one()


def test_failing_source_is_backed_off_then_retried(engine: sa.Engine, settings: Settings) -> None:
    settings = settings.with_(backoff_after=2, backoff_base_s=0.6, backoff_max_s=30.0)
    state = _Flaky()
    with _server(state) as base:
        srcs = [
            Source(name="dead", kind="rss", url=base + "dead.xml", allow_private=True),
            Source(name="ok", kind="rss", url=base + "ok.xml", allow_private=True),
        ]
        for _ in range(2):
            ingest(engine, settings, srcs, RunSummary())
        assert state.hits["/dead.xml"] == 2
        row = _source_row(engine, "dead")
        assert row.consecutive_failures == 2 and row.next_fetch_after is not None

        held = RunSummary()
        ingest(engine, settings, srcs, held)
        assert state.hits["/dead.xml"] == 2, "a backed-off source is not fetched"
        assert state.hits["/ok.xml"] == 3, "the others still are"
        assert "backing off" in held.reports["dead"].errors[0]
        assert _source_row(engine, "dead").consecutive_failures == 2

        time.sleep(0.7)  # past next_fetch_after: retried, fails again, waits twice as long
        ingest(engine, settings, srcs, RunSummary())
        assert state.hits["/dead.xml"] == 3
        row = _source_row(engine, "dead")
        assert row.consecutive_failures == 3
        last = row.last_fetch_at.replace(tzinfo=UTC)
        wait = row.next_fetch_after.replace(tzinfo=UTC) - last
        assert abs(wait.total_seconds() - 1.2) < 0.01
        ingest(engine, settings, srcs, RunSummary())
        assert state.hits["/dead.xml"] == 3

        state.healthy = True
        time.sleep(1.3)
        summary = RunSummary()
        ingest(engine, settings, srcs, summary)
        assert state.hits["/dead.xml"] == 4 and not summary.reports["dead"].errors
        row = _source_row(engine, "dead")
        assert row.consecutive_failures == 0 and row.next_fetch_after is None


def test_backoff_doubles_per_failure_and_is_capped(engine: sa.Engine) -> None:
    t0 = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
    with engine.begin() as conn:
        ids = repo.sync_sources(
            conn, [Source(name=n, kind="rss", url=f"https://{n}.example/rss") for n in "abcd"]
        )
        for name, failures in (("a", 4), ("b", 5), ("c", 7), ("d", 30)):
            conn.execute(
                sa.update(sources)
                .where(sources.c.id == ids[name])
                .values(consecutive_failures=failures, last_fetch_at=t0)
            )
        held = repo.backed_off_sources(conn, 5, 60.0, 3600.0, now=t0 + timedelta(seconds=30))
    assert held == {
        "b": t0 + timedelta(seconds=60),
        "c": t0 + timedelta(seconds=240),
        "d": t0 + timedelta(seconds=3600),
    }
    with engine.begin() as conn:
        later = repo.backed_off_sources(conn, 5, 60.0, 3600.0, now=t0 + timedelta(seconds=300))
    assert set(later) == {"d"}


def _seed(engine: sa.Engine, name: str, stamps: list[datetime]) -> None:
    with engine.begin() as conn:
        ids = repo.sync_sources(conn, [Source(name=name, kind="rss", url=f"https://{name}.ec/rss")])
        batch = [
            Item(
                source=name,
                url=f"https://{name}.ec/nota/{n}",
                canonical_url=canonical_url(f"https://{name}.ec/nota/{n}"),
                title=f"Nota {n} de {name}",
                text=f"Texto distinto número {n} publicado por {name} sobre la cárcel {n * 7}.",
                published_at=when,
            )
            for n, when in enumerate(stamps)
        ]
        repo.insert_items(conn, ids[name], batch)
        conn.execute(
            sa.update(sources)
            .where(sources.c.id == ids[name])
            .values(last_success_at=datetime.now(UTC), last_fetch_at=datetime.now(UTC))
        )


NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
SILENCE_CASES = {
    # daily outlet whose last story is 10 days old: silent
    "quiet-local": [NOW - timedelta(days=10 + d, hours=d % 5) for d in range(20)],
    # daily outlet that published yesterday: fine
    "daily": [NOW - timedelta(days=1 + d) for d in range(25)],
    # weekly bulletin, last issue 10 days ago: within 4 x its usual week
    "weekly": [NOW - timedelta(days=10 + 7 * w) for w in range(5)],
    # too little history to know what is usual
    "new": [NOW - timedelta(days=20 + d) for d in range(3)],
    # several stories a day, quiet for 2.5 days: over the two-day floor
    "busy": [NOW - timedelta(days=2.5, hours=3 * h) for h in range(40)],
}


def test_silent_sources_are_flagged(engine: sa.Engine) -> None:
    for name, stamps in SILENCE_CASES.items():
        _seed(engine, name, stamps)
    configured = [Source(name=n, kind="rss", url="x") for n in SILENCE_CASES]
    health = {h.name: h for h in source_health(engine, configured, now=NOW)}
    assert {n for n, h in health.items() if h.status == "silent"} == {"quiet-local", "busy"}
    q = health["quiet-local"]
    assert q.usual_gap is not None and timedelta(hours=20) <= q.usual_gap <= timedelta(hours=28)
    assert q.silent_for is not None and q.silent_for.days == 10
    assert health["weekly"].usual_gap == timedelta(days=7) and health["weekly"].status == "ok"
    assert health["new"].usual_gap is None
    table = format_health(list(health.values()))
    assert "no items for 10d, usually every 1.0d" in table


def test_sources_check_prints_health(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'archive.db'}"
    from pipeline.storage.db import make_engine, upgrade

    eng = make_engine(db)
    upgrade(eng)
    now = datetime.now(UTC)
    _seed(eng, "quiet-local", [now - timedelta(days=9 + d) for d in range(20)])
    _seed(eng, "daily", [now - timedelta(hours=6 + 24 * d) for d in range(20)])
    with eng.begin() as conn:
        ids = repo.sync_sources(conn, [Source(name="dead", kind="rss", url="https://dead.ec/rss")])
        conn.execute(
            sa.update(sources)
            .where(sources.c.id == ids["dead"])
            .values(consecutive_failures=6, last_fetch_at=now, last_error="HTTP 503 from dead.ec")
        )
        repo.backed_off_sources(conn, 5, 1800.0, 86400.0)
    eng.dispose()
    (tmp_path / "sources.yaml").write_text(
        "sources:\n"
        "  - {name: quiet-local, kind: rss, url: 'https://quiet-local.ec/rss', lang: es}\n"
        "  - {name: daily, kind: rss, url: 'https://daily.ec/rss', fulltext: true}\n"
        "  - {name: dead, kind: rss, url: 'https://dead.ec/rss'}\n"
        "  - {name: fresh, kind: rss, url: 'https://fresh.ec/rss'}\n",
        encoding="utf-8",
    )
    out = subprocess.run(
        [SENTINELA, "sources", "check", "--sources", str(tmp_path / "sources.yaml"), "--db", db],
        capture_output=True,
        text=True,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
        timeout=120,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    lines = {line.split()[0]: line for line in out.stdout.splitlines() if line.strip()}
    assert "4 valid source(s)" in out.stdout
    header = next(line for line in out.stdout.splitlines() if line.startswith("source"))
    for col in ("status", "last success", "last item", "failures", "items/day", "note"):
        assert col in header
    assert " silent " in lines["quiet-local"] and "usually every 1.0d" in lines["quiet-local"]
    assert " ok " in lines["daily"]
    assert " backing off " in lines["dead"] and "HTTP 503" in lines["dead"]
    assert "next try" in lines["dead"]
    assert "never fetched" in lines["fresh"]
