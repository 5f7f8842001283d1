"""Ingest benchmark: 500 local feeds of 50 items each through `pipeline.run.ingest`.

    .venv/bin/python bench/ingest.py [--feeds 500] [--items 50] [--pg URL] [--profile FILE]

A feed server in a subprocess (ThreadingHTTPServer, ETag / If-None-Match) serves generated
RSS 2.0 feeds in Spanish, Portuguese and English, about a tenth of whose items are rewrites
of shared wire stories, so near-duplicate clustering does real work. Measured:

* first pass into a fresh archive: fetch, parse, language detection, canonical URLs, exact
  and near-duplicate dedup, store;
* second pass: every feed answers 304 Not Modified;
* a naive sequential `requests` + `feedparser` loop over the same feeds (no storage), for
  scale.

Every feed lives on 127.0.0.1, so the per-host limit would serialise the whole run: the
bench sets SENTINELA_PER_HOST_CONCURRENCY to the global concurrency (and allows private
hosts). Results go to bench/results/ingest.json.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import platform
import random
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from xml.sax.saxutils import escape

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipeline.config import Settings  # noqa: E402
from pipeline.items import Source  # noqa: E402
from pipeline.run import RunSummary, ingest  # noqa: E402
from pipeline.storage.db import make_engine, upgrade  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "ingest.json"

SERVER = r"""
import sys
from http.server import ThreadingHTTPServer
from pathlib import Path
from pipeline.feedserver import _handler

class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256

server = Server(("127.0.0.1", 0), _handler(Path(sys.argv[1])))
print(server.server_address[1], flush=True)
server.serve_forever()
"""

WORDS = {
    "es": [
        "la",
        "cárcel",
        "penitenciaría",
        "reos",
        "pabellón",
        "bandas",
        "pandilla",
        "militares",
        "policía",
        "operativo",
        "requisa",
        "traslado",
        "cabecilla",
        "extorsión",
        "motín",
        "fiscalía",
        "gobierno",
        "ministro",
        "informó",
        "según",
        "fuentes",
        "familiares",
        "presos",
        "celdas",
        "armas",
        "teléfonos",
        "control",
        "guardias",
        "crisis",
        "seguridad",
        "estado",
        "de",
        "el",
        "en",
        "por",
        "con",
        "para",
        "que",
        "del",
        "los",
        "las",
        "una",
        "un",
        "se",
        "al",
        "tras",
        "durante",
        "este",
        "martes",
    ],
    "pt": [
        "o",
        "presídio",
        "facção",
        "detentos",
        "rebelião",
        "polícia",
        "penal",
        "operação",
        "transferência",
        "líder",
        "governo",
        "secretaria",
        "segurança",
        "pública",
        "celas",
        "armas",
        "celulares",
        "agentes",
        "crise",
        "estado",
        "de",
        "do",
        "da",
        "em",
        "por",
        "com",
        "para",
        "que",
        "os",
        "as",
        "uma",
        "um",
        "se",
        "ao",
        "após",
        "durante",
        "nesta",
        "terça",
        "segundo",
    ],
    "en": [
        "the",
        "prison",
        "gang",
        "inmates",
        "riot",
        "police",
        "operation",
        "transfer",
        "leader",
        "government",
        "ministry",
        "security",
        "cells",
        "weapons",
        "phones",
        "guards",
        "crisis",
        "state",
        "officials",
        "said",
        "according",
        "sources",
        "of",
        "in",
        "by",
        "with",
        "for",
        "that",
        "to",
        "a",
        "an",
        "on",
        "after",
        "during",
        "this",
        "tuesday",
        "from",
        "were",
        "was",
        "has",
    ],
}


def _sentence(rng: random.Random, lang: str, n: int) -> str:
    words = rng.choices(WORDS[lang], k=n)
    return " ".join(words).capitalize() + "."


def make_feeds(root: Path, n_feeds: int, n_items: int, seed: int = 7) -> None:
    rng = random.Random(seed)
    langs = ["es", "pt", "en"]
    wires = {
        lang: [" ".join(_sentence(rng, lang, 18) for _ in range(5)) for _ in range(60)]
        for lang in langs
    }
    start = datetime(2026, 11, 24, 12, tzinfo=UTC)
    for f in range(n_feeds):
        lang = langs[f % 3]
        entries = []
        for i in range(n_items):
            if rng.random() < 0.1:  # a wire story, with this outlet's own lede
                body = _sentence(rng, lang, 20) + " " + rng.choice(wires[lang])
            else:
                body = " ".join(_sentence(rng, lang, rng.randint(12, 24)) for _ in range(4))
            when = format_datetime(start - timedelta(minutes=37 * i + f))
            entries.append(
                f"<item><title>{escape(_sentence(rng, lang, 9))}</title>"
                f"<link>https://outlet{f}.example/{lang}/2026/11/story-{i}?utm_source=rss</link>"
                f"<guid>outlet{f}-{i}</guid><pubDate>{when}</pubDate>"
                f"<description>{escape('<p>' + body + '</p>')}</description></item>"
            )
        (root / f"feed{f:04d}.xml").write_text(
            '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel>'
            f"<title>Outlet {f}</title><link>https://outlet{f}.example/</link>"
            + "".join(entries)
            + "</channel></rss>",
            encoding="utf-8",
        )


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _cpu() -> float:
    """CPU seconds of this process plus its finished children (the parse workers exit at the
    end of each pass; the feed server runs on and is not counted)."""
    total = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        r = resource.getrusage(who)
        total += r.ru_utime + r.ru_stime
    return total


def _pass(db_url: str, settings: Settings, srcs: list[Source]) -> dict[str, float | int]:
    engine = make_engine(db_url)
    upgrade(engine)
    summary = RunSummary()
    r0 = _cpu()
    t0 = time.perf_counter()
    new_ids = ingest(engine, settings, srcs, summary)
    wall = time.perf_counter() - t0
    r1 = _cpu()
    engine.dispose()
    tot = summary.totals
    return {
        "wall_s": round(wall, 3),
        # CPU seconds of this process and its parse workers (not the feed server):
        # comparable across runs on a busy shared machine
        "cpu_s": round(r1 - r0, 2),
        "fetched": tot.fetched,
        "new": len(new_ids),
        "not_modified": sum(1 for r in summary.reports.values() if r.not_modified),
        "errors": len(tot.errors),
        "items_per_s": round(tot.fetched / wall, 1) if wall else 0.0,
        "peak_rss_mb": round(_rss_mb(), 1),
    }


def naive(srcs: list[Source]) -> dict[str, float | int]:
    import feedparser
    import requests

    t0 = time.perf_counter()
    n = 0
    with requests.Session() as s:
        for src in srcs:
            r = s.get(src.url, timeout=20)
            n += len(feedparser.parse(r.content).entries)
    wall = time.perf_counter() - t0
    return {"wall_s": round(wall, 3), "fetched": n, "items_per_s": round(n / wall, 1)}


def _clusters(db_url: str) -> dict[str, int]:
    import sqlalchemy as sa

    engine = make_engine(db_url)
    with engine.connect() as conn:
        items_, clusters = conn.execute(
            sa.text("SELECT COUNT(*), COUNT(DISTINCT cluster_id) FROM items")
        ).one()
    engine.dispose()
    return {"items": int(items_), "clusters": int(clusters)}


def _fresh_pg(admin_url: str) -> str:
    import uuid

    import sqlalchemy as sa

    name = f"sentinela_bench_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return admin_url.rsplit("/", 1)[0] + f"/{name}"


def _drop_pg(url: str, admin_url: str) -> None:
    import sqlalchemy as sa

    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)'))
    admin.dispose()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--feeds", type=int, default=500)
    ap.add_argument("--items", type=int, default=50)
    ap.add_argument("--pg", help="PostgreSQL admin URL: also run both passes on a fresh DB there")
    ap.add_argument("--profile", help="write a cProfile of the first SQLite pass here")
    ap.add_argument("--out", default=str(RESULTS))
    ap.add_argument("--before", help="an earlier results file to embed as `before`")
    ap.add_argument(
        "--parse-workers",
        type=int,
        default=None,
        help="feed-parsing processes (default: SENTINELA_PARSE_WORKERS's default; 1 = none)",
    )
    args = ap.parse_args()

    load_before = os.getloadavg()[0]
    settings = Settings.from_env({}).with_(
        allow_private_hosts=True,
        fetch_concurrency=32,
        per_host_concurrency=32,  # every feed is on 127.0.0.1 (see the module docstring)
        fetch_timeout_s=30.0,
    )
    if args.parse_workers is not None:
        settings = settings.with_(parse_workers=args.parse_workers)
    with tempfile.TemporaryDirectory(prefix="sentinela-bench-") as tmp:
        feeds = Path(tmp) / "feeds"
        feeds.mkdir()
        make_feeds(feeds, args.feeds, args.items)
        feed_bytes = sum(p.stat().st_size for p in feeds.iterdir())
        server = subprocess.Popen(
            [sys.executable, "-c", SERVER, str(feeds)],
            stdout=subprocess.PIPE,
            text=True,
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        try:
            assert server.stdout is not None
            base = f"http://127.0.0.1:{server.stdout.readline().strip()}/"
            srcs = [
                Source(name=f"outlet{f}", kind="rss", url=f"{base}feed{f:04d}.xml")
                for f in range(args.feeds)
            ]
            # Imports and model tables warm (language identifier) outside the timing.
            from pipeline.ingest.normalize import detect_lang

            detect_lang("warm up the language identifier please", None)
            db = f"sqlite:///{Path(tmp) / 'archive.db'}"
            prof = cProfile.Profile() if args.profile else None
            if prof:
                prof.enable()
            first = _pass(db, settings, srcs)
            if prof:
                prof.disable()
                prof.dump_stats(args.profile)
            second = _pass(db, settings, srcs)
            results: dict[str, object] = {
                "feeds": args.feeds,
                "items_per_feed": args.items,
                "feed_mb": round(feed_bytes / 1e6, 1),
                "sqlite": {"first": first, "second": second, **_clusters(db)},
            }
            if args.pg:
                pg = _fresh_pg(args.pg)
                try:
                    results["postgresql"] = {
                        "first": _pass(pg, settings, srcs),
                        "second": _pass(pg, settings, srcs),
                        **_clusters(pg),
                    }
                finally:
                    _drop_pg(pg, args.pg)
            base_line = naive(srcs)
            results["naive_requests_feedparser"] = base_line
            results["speedup_vs_naive"] = round(base_line["wall_s"] / first["wall_s"], 2)
        finally:
            server.terminate()
            server.wait(timeout=10)
    results["machine"] = {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "when": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    results["settings"] = {
        "fetch_concurrency": 32,
        "per_host_concurrency": 32,
        "parse_workers": settings.parse_workers,
    }
    # Other work on the 2 cores (model training, test suites) stretches wall time far more
    # than it stretches cpu_s: compare runs by both, at similar load.
    results["load_average_1m_before"] = round(load_before, 2)
    results["load_average_1m"] = round(os.getloadavg()[0], 2)
    if args.before:
        results["before"] = json.loads(Path(args.before).read_text(encoding="utf-8"))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    _table(results)
    return 0


def _table(r: dict) -> None:  # type: ignore[type-arg]
    rows = [("run", "wall s", "cpu s", "items", "new", "304s", "items/s", "peak RSS MB")]
    for db in ("sqlite", "postgresql"):
        if db in r:
            for p in ("first", "second"):
                x = r[db][p]
                rows.append(
                    (
                        f"{db} {p} pass",
                        f"{x['wall_s']:.2f}",
                        f"{x['cpu_s']:.1f}",
                        str(x["fetched"]),
                        str(x["new"]),
                        str(x["not_modified"]),
                        f"{x['items_per_s']:.0f}",
                        f"{x['peak_rss_mb']:.0f}",
                    )
                )
    n = r["naive_requests_feedparser"]
    rows.append(
        (
            "naive requests+feedparser",
            f"{n['wall_s']:.2f}",
            "-",
            str(n["fetched"]),
            "-",
            "-",
            f"{n['items_per_s']:.0f}",
            "-",
        )
    )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for k, row in enumerate(rows):
        print(
            "  ".join(
                c.ljust(w) if i == 0 else c.rjust(w)
                for i, (c, w) in enumerate(zip(row, widths, strict=True))
            )
        )
        if k == 0:
            print("-" * (sum(widths) + 2 * (len(widths) - 1)))
    s = r["sqlite"]
    print(
        f"\n{r['feeds']} feeds x {r['items_per_feed']} items ({r['feed_mb']} MB); "
        f"{s['items']} items in {s['clusters']} clusters; "
        f"first pass {r['speedup_vs_naive']}x the naive loop's speed"
    )


if __name__ == "__main__":
    sys.exit(main())
