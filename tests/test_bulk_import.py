"""`sentinela archive import` and the bulk loader under it (pipeline/importer.py,
pipeline/storage/bulk.py), on SQLite and on real PostgreSQL."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from pipeline.importer import import_jsonl
from pipeline.ingest.parse import parse_feed
from pipeline.items import Source
from pipeline.run import classify_unclassified
from pipeline.storage import repo
from pipeline.storage.bulk import BulkLoadError, ItemRow, bulk_upsert_items
from pipeline.storage.db import make_engine, upgrade
from pipeline.storage.schema import alerts, classifications, items, sources

SENTINELA = str(Path(sys.executable).parent / "sentinela")

TEMPLATES = {
    "es": (
        "Motín en la cárcel de {p}: {n} muertos",
        "Los reos de la cárcel de {p} tomaron el pabellón {n} durante la madrugada, según fuentes penitenciarias.",
    ),
    "pt": (
        "Chuvas fortes atingem {p} pelo {n}º dia",
        "A Defesa Civil de {p} emitiu alerta para {n} bairros e pediu que moradores evitem áreas de risco.",
    ),
    "en": (
        "{p} city council approves {n} new bus routes",
        "The council in {p} voted on Tuesday to add {n} bus routes, officials said after the meeting.",
    ),
}
PLACES = ["Quito", "Guayaquil", "Manaus", "Natal", "Lima", "Caracas", "Recife", "Bogotá"]


def _lines(n: int, seed: int = 1) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    out = []
    start = datetime(2025, 1, 1, tzinfo=UTC)
    for i in range(n):
        lang = ("es", "pt", "en")[i % 3]
        title, text = TEMPLATES[lang]
        fill = {"p": rng.choice(PLACES), "n": i}
        line: dict[str, Any] = {
            # tracking parameters and a mobile host: the canonical URL drops them
            "url": f"https://m.outlet{i % 7}.example/news/{i}?utm_source=feed",
            "title": title.format(**fill),
            "text": f"<p>{text.format(**fill)}</p>",
            "published_at": (start + timedelta(minutes=37 * i)).isoformat(),
        }
        if i % 4 == 0:
            line["source"] = f"export-{i % 3}"
        if i % 50 == 0:
            line["lang"] = lang
        out.append(line)
    return out


def _write(path: Path, lines: list[Any]) -> Path:
    path.write_text(
        "".join(
            (x if isinstance(x, str) else json.dumps(x, ensure_ascii=False)) + "\n" for x in lines
        ),
        encoding="utf-8",
    )
    return path


def _count(engine: sa.Engine, table: sa.Table = items) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one())


def test_import_two_thousand_items_then_reimport_is_idempotent(
    engine: sa.Engine, tmp_path: Path
) -> None:
    lines = _lines(2000)
    # The same story as line 10 under another URL: stored once, as ingest would.
    lines.append({**lines[10], "url": "https://other.example/copy-of-10"})
    path = _write(tmp_path / "export.jsonl", lines)
    bad: list[str] = []
    report = import_jsonl(
        engine, str(path), default_source="backfill", chunk=150, loaders=2, on_bad_line=bad.append
    )
    assert bad == []
    assert (report.lines, report.load.inserted, report.repeated) == (2001, 2000, 1)
    assert sorted(report.new_sources) == ["backfill", "export-0", "export-1", "export-2"]
    assert _count(engine) == 2000
    with engine.connect() as conn:
        kinds = dict(conn.execute(sa.select(sources.c.name, sources.c.kind)).all())
        assert set(kinds.values()) == {"import"}
        per_source = dict(
            conn.execute(
                sa.select(sources.c.name, sa.func.count())
                .join(items, items.c.source_id == sources.c.id)
                .group_by(sources.c.name)
            ).all()
        )
        assert per_source == {"backfill": 1500, "export-0": 167, "export-1": 167, "export-2": 166}
        row = conn.execute(
            sa.select(items.c.canonical_url, items.c.text, items.c.lang, items.c.cluster_id).where(
                items.c.url == lines[5]["url"]
            )
        ).one()
        assert row[0] == "https://outlet5.example/news/5"
        assert row[1].startswith("The council in") and "<p>" not in row[1]
        assert row[2] == "en" and row[3] is None
        langs = dict(
            conn.execute(sa.select(items.c.lang, sa.func.count()).group_by(items.c.lang)).all()
        )
        assert langs == {"es": 667, "pt": 667, "en": 666}
    assert _count(engine, classifications) == 0

    again = import_jsonl(engine, str(path), default_source="backfill", chunk=150, loaders=2)
    assert (again.load.inserted, again.load.skipped, again.repeated) == (0, 2000, 1)
    assert again.new_sources == []
    assert _count(engine) == 2000


def _run_cli(args: list[str]) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    return subprocess.run(
        [SENTINELA, *args], capture_output=True, text=True, env=env, timeout=300, check=False
    )


def test_cli_reports_bad_lines_and_imports_the_rest(db_url: str, tmp_path: Path) -> None:
    good = _lines(40, seed=2)
    lines: list[Any] = [
        *good[:10],
        "{not json",
        {"url": "https://a.example/1", "title": "t"},
        {"url": "ftp://a.example/1", "title": "t", "text": "x"},
        *good[10:30],
        {"url": "https://a.example/2", "title": "t", "text": "x", "published_at": "yesterday"},
        {"url": "https://a.example/3", "title": "<b></b>", "text": " "},
        ["a", "list"],
        *good[30:],
    ]
    path = _write(tmp_path / "mixed.jsonl", lines)
    r = _run_cli(
        [
            "archive",
            "import",
            str(path),
            "--db",
            db_url,
            "--source",
            "cli",
            "--chunk",
            "7",
            "--loaders",
            "2",
        ]
    )
    assert r.returncode == 1, r.stderr
    assert f"{path}:11: not valid JSON" in r.stderr
    assert f"{path}:12: missing required key(s): text" in r.stderr
    assert f"{path}:13: 'url' must be an http(s) URL" in r.stderr
    assert f"{path}:34: 'published_at' is not an ISO 8601 date" in r.stderr
    assert f"{path}:35: no title or text" in r.stderr
    assert f"{path}:36: expected a JSON object, got list" in r.stderr
    assert r.stderr.count(f"{path}:") == 6 and "Traceback" not in r.stderr
    assert "imported 40 item(s)" in r.stdout and "6 bad line(s)" in r.stdout
    assert "sentinela run --once" in r.stdout
    engine = make_engine(db_url)
    try:
        assert _count(engine) == 40
    finally:
        engine.dispose()

    clean = _write(tmp_path / "clean.jsonl", good)
    r = _run_cli(["archive", "import", str(clean), "--db", db_url, "--source", "cli"])
    assert r.returncode == 0, r.stderr
    assert "imported 0 item(s)" in r.stdout and "skipped 40" in r.stdout


FEED = """<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0"><channel><title>Outlet</title><link>https://outlet.example/</link>
<item><title>Militares toman el control de la cárcel de Tocorón</title>
<link>https://www.outlet.example/nacional/tocoron/amp/?utm_source=rss&amp;fbclid=abc</link>
<description>&lt;p&gt;Unos &lt;b&gt;11.000&lt;/b&gt; efectivos participaron en la operación contra el Tren de Aragua.&lt;/p&gt;</description>
</item>
<item><title>Polícia transfere líderes do PCC para presídio federal</title>
<link>https://m.outlet.example/brasil/pcc?b=2&amp;a=1</link>
<description>A operação &amp;quot;Muralha&amp;quot; levou 12 presos de Alcaçuz para Mossoró.</description>
</item>
<item><title>Troops retake Ecuador's Litoral penitentiary</title>
<link>http://outlet.example/world/litoral#top</link>
<description>Soldiers entered the prison in Guayaquil after a riot left 31 inmates dead.</description>
</item>
</channel></rss>"""


def _stored(engine: sa.Engine) -> set[tuple[Any, ...]]:
    cols = (items.c.canonical_url, items.c.content_hash, items.c.lang, items.c.title, items.c.text)
    with engine.connect() as conn:
        return {tuple(r) for r in conn.execute(sa.select(*cols))}


def test_imported_items_are_keyed_as_ingest_keys_them(engine: sa.Engine, tmp_path: Path) -> None:
    """The same stories through a feed (parse_feed + repo.insert_items) and through an
    import: the same canonical URL, content hash, language and text; and ingest then sees
    the imported items as already stored."""
    src = Source(name="outlet", kind="rss", url="https://outlet.example/feed")
    parsed = parse_feed(FEED.encode(), src)
    assert len(parsed.items) == 3
    ref = make_engine(f"sqlite:///{tmp_path / 'reference.db'}")
    upgrade(ref)
    with ref.begin() as conn:
        ids = repo.sync_sources(conn, [src])
        assert len(repo.insert_items(conn, ids["outlet"], parsed.items)) == 3

    import feedparser

    # the fields as the feed carries them, before parse_feed reduces them to text
    entries = feedparser.parse(FEED, sanitize_html=False, resolve_relative_uris=False).entries
    lines = [{"url": e.link, "title": e.title, "text": e.summary} for e in entries]
    path = _write(tmp_path / "feed.jsonl", lines)
    report = import_jsonl(engine, str(path), default_source="outlet", chunk=2, loaders=2)
    assert report.load.inserted == 3
    imported = _stored(engine)
    assert imported == _stored(ref)
    assert {r[0] for r in imported} == {
        "https://outlet.example/nacional/tocoron",
        "https://outlet.example/brasil/pcc?a=1&b=2",
        "https://outlet.example/world/litoral",
    }
    ref.dispose()

    with engine.begin() as conn:
        source_id = repo.sync_sources(conn, [src])["outlet"]
        assert repo.insert_items(conn, source_id, parsed.items) == []
    assert _count(engine) == 3
    # A story already archived, re-published under another URL: skipped by its content.
    moved = _write(tmp_path / "moved.jsonl", [{**lines[0], "url": "https://mirror.example/x"}])
    again = import_jsonl(engine, str(moved), default_source="outlet")
    assert (again.load.inserted, again.load.skipped) == (0, 1)
    assert _count(engine) == 3


def test_imported_items_are_classified_by_the_next_run(
    engine: sa.Engine, tmp_path: Path, classifier: Any
) -> None:
    lines = [
        {
            "url": "https://outlet.example/tocoron",
            "title": "Tren de Aragua ran Tocorón prison like a resort, with a pool and a zoo",
            "text": "Gang leaders controlled the Venezuelan prison for years, running extortion from inside.",
            "lang": "en",
        },
        *_lines(11, seed=3),
    ]
    path = _write(tmp_path / "few.jsonl", lines)
    assert import_jsonl(engine, str(path), default_source="few").load.inserted == 12
    matched = classify_unclassified(engine, classifier, "#alerts")
    with engine.connect() as conn:
        classified = set(conn.execute(sa.select(classifications.c.item_id)).scalars())
        all_ids = set(conn.execute(sa.select(items.c.id)).scalars())
        tocoron = conn.execute(
            sa.select(items.c.id).where(items.c.url == "https://outlet.example/tocoron")
        ).scalar_one()
    assert classified == all_ids and len(all_ids) == 12
    assert tocoron in matched
    # Archived as a match, never alerted: a backfill must not flood the channels.
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(alerts)).scalar_one() == 0
        assert tocoron in set(conn.execute(sa.text("SELECT item_id FROM matches")).scalars())


def _rows(n: int, source_id: int) -> list[ItemRow]:
    now = datetime.now(UTC)
    return [
        ItemRow(
            source_id=source_id,
            url=f"https://bulk.example/{i}",
            canonical_url=f"https://bulk.example/{i}",
            guid=None,
            title=f"Story {i}",
            text=f"Body of story {i}.",
            lang="en",
            published_at=None,
            fetched_at=now,
            content_hash=f"{i:064x}",
            cluster_id=None,
        )
        for i in range(n)
    ]


@pytest.mark.parametrize("loaders", [1, 2])
def test_failed_chunk_is_named_and_earlier_chunks_stay(
    engine: sa.Engine, db_url: str, loaders: int
) -> None:
    with engine.begin() as conn:
        source_id = repo.sync_sources(conn, [Source("bulk", "import", "import:test")])["bulk"]
    rows = _rows(1000, source_id)
    broken = list(rows)
    broken[450] = broken[450]._replace(title=None)  # chunk 5 of 100-row chunks: NOT NULL
    with pytest.raises(BulkLoadError) as caught:
        bulk_upsert_items(db_url, broken, chunk=100, loaders=loaders)
    err = caught.value
    assert err.chunk == 5
    assert "chunk 5 (100 rows, https://bulk.example/400 … https://bulk.example/499)" in str(err)
    assert "title" in str(err)
    with engine.connect() as conn:
        stored = set(conn.execute(sa.select(items.c.canonical_url)).scalars())
    assert {r.canonical_url for r in rows[:400]} <= stored
    assert not stored & {r.canonical_url for r in rows[400:500]}
    # Chunks are all or nothing. One loader stops at the failure; with two, the other one
    # may have committed later chunks it took before chunk 5 failed.
    later = {i // 100 for i in range(500, 1000) if rows[i].canonical_url in stored}
    assert all({r.canonical_url for r in rows[c * 100 : c * 100 + 100]} <= stored for c in later)
    if loaders == 1 or db_url.startswith("sqlite"):
        assert len(stored) == 400
    assert err.report.inserted == len(stored)

    fixed = bulk_upsert_items(db_url, rows, chunk=100, loaders=loaders)
    assert (fixed.inserted, fixed.skipped) == (1000 - len(stored), len(stored))
    assert _count(engine) == 1000
