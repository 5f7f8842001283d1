"""Archive benchmark: ingest rate and analyst-query latency on a 1,000,000-item PostgreSQL archive.

    .venv/bin/python bench/archive.py                 # the full run (a few minutes on 2 cores)
    .venv/bin/python bench/archive.py --items 50000   # a quick look

It creates a fresh database on the server (SENTINELA_BENCH_PG_ADMIN_URL, default
postgresql+psycopg://postgres@127.0.0.1:5432/postgres), migrates it to head (so every index
the archive really has, the full-text and trigram GIN indexes included, is maintained during
the load), and drops it at the end. Items are synthetic but shaped like the real feed: EN/ES/PT
in 40 sources over a year, about 5% on-topic (prisons, gangs, operations; clustered across
outlets), the rest general news.

Ingest is measured on consecutive id ranges of the same table (rows are generated before each
timed load; the generator is slower than COPY):
  * row by row: one `INSERT … ON CONFLICT DO NOTHING` statement per item (the baseline);
  * batched: SQLAlchemy executemany of `INSERT … ON CONFLICT DO NOTHING` (multi-row VALUES),
    committed every `--batch` rows, the way pipeline/storage/repo.py writes;
  * COPY: the product's bulk loader (pipeline/storage/bulk.py, behind `sentinela archive
    import`): COPY into a temporary staging table, then `INSERT … SELECT … ON CONFLICT DO
    NOTHING` (rows whose content hash is archived skipped too, as ingest does), committed
    every `--copy-chunk` rows, on one connection (`--copy-single` items);
  * parallel COPY (the rest): the same on `--loaders` connections, `--parallel-chunk` rows a
    transaction, with `synchronous_commit = off` and a larger `gin_pending_list_limit` in
    those bulk sessions only, the GIN pending lists flushed at the end (timed);
  * backfill mode (`--backfill` items into a fresh, empty archive): the two search indexes
    dropped, parallel COPY, the indexes built again. Reported apart: search is unavailable
    during such an import, so it is an operator's choice, not the steady-state rate;
and a re-run of a COPY chunk already stored (every row a conflict: the idempotent re-ingest).
Then classifications (for `--classified` of the items and every on-topic one), alerts and
feedback, VACUUM ANALYZE, and p50/p95 of each documented query in sql/queries over `--runs`
runs. Figures are printed and written to bench/results/archive.json; the targets (≥ 20,000
items/s, p95 ≤ 200 ms) are reported, not asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from itertools import islice
from pathlib import Path
from typing import Any

import psycopg
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipeline.archive import list_queries, run_query  # noqa: E402
from pipeline.storage.bulk import bulk_upsert_items  # noqa: E402
from pipeline.storage.db import make_engine, upgrade  # noqa: E402
from pipeline.storage.schema import items  # noqa: E402

ADMIN_URL = os.environ.get(
    "SENTINELA_BENCH_PG_ADMIN_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
RESULTS = ROOT / "bench" / "results" / "archive.json"
NOW = datetime.now(UTC).replace(microsecond=0)
ITEM_COLS = [
    "id", "source_id", "url", "canonical_url", "guid", "title", "text", "lang",
    "published_at", "fetched_at", "content_hash", "cluster_id",
]  # fmt: skip

# --- synthetic feed ---------------------------------------------------------------------------

FACILITIES = {
    "es": ["cárcel de Turi", "Penitenciaría del Litoral", "CECOT", "cárcel La Roca",
           "penal de Izalco", "cárcel de Machala", "Tocorón", "penal de Támara"],
    "pt": ["presídio de Alcaçuz", "Complexo de Pedrinhas", "presídio federal de Mossoró",
           "Penitenciária de Catanduvas", "presídio Urso Branco"],
    "en": ["Turi prison", "the Litoral penitentiary", "CECOT mega-prison", "Tocorón prison",
           "La Roca prison"],
}  # fmt: skip
GANGS = {
    "es": ["Los Choneros", "Los Lobos", "la MS-13", "Barrio 18", "el Tren de Aragua",
           "Los Tiguerones", "Chone Killers", "el Cártel de Sinaloa"],
    "pt": ["o PCC", "o Comando Vermelho", "a Família do Norte", "o Primeiro Comando da Capital"],
    "en": ["Los Choneros", "MS-13", "Tren de Aragua", "Barrio 18", "the PCC",
           "Comando Vermelho"],
}  # fmt: skip
TOPICAL_TITLES = {
    "es": ["Motín en la {f} deja {n} muertos", "Militares toman el control de la {f}",
           "{g} controla pabellones de la {f}", "Trasladan a {n} cabecillas de {g} a la {f}",
           "Requisa en la {f}: hallan armas y teléfonos", "Fuga de {n} reos de la {f}",
           "Capturan a {n} miembros de {g} en operativo"],
    "pt": ["Rebelião no {f} deixa {n} mortos", "Polícia transfere {n} líderes de {g}",
           "{g} domina alas do {f}", "Operação contra {g} prende {n} suspeitos",
           "Fuga em massa do {f}: {n} presos escapam"],
    "en": ["Riot at {f} leaves {n} dead", "Troops take control of {f}",
           "{g} runs cellblocks at {f}, officials say", "{n} {g} leaders moved to {f}",
           "Security forces arrest {n} {g} members"],
}  # fmt: skip
GENERIC_TITLES = {
    "es": ["{w} {w2} en {p}: {n} claves", "Gobierno anuncia plan de {w} para {p}",
           "{p} celebra festival de {w}", "Sube el precio del {w} en {p}",
           "Elecciones en {p}: {w} y {w2} marcan la campaña", "Clima: lluvias en {p} por {n} días"],
    "pt": ["{p} registra alta no preço do {w}", "Festival de {w} reúne {n} mil pessoas em {p}",
           "Governo lança programa de {w} em {p}", "Chuvas em {p}: {n} cidades em alerta",
           "{w} e {w2}: o que muda em {p}"],
    "en": ["{p} {w} prices rise for {n} straight months", "{n} things to know about {w} in {p}",
           "{p} hosts {w} summit", "Storms hit {p} for {n} days", "{w} and {w2} shape {p} vote"],
}  # fmt: skip
PLACES = [
    "Quito",
    "Guayaquil",
    "Cuenca",
    "San Salvador",
    "Tegucigalpa",
    "Caracas",
    "Bogotá",
    "Lima",
    "São Paulo",
    "Rio de Janeiro",
    "Manaus",
    "Natal",
    "Recife",
    "Fortaleza",
    "Ciudad de México",
    "Monterrey",
    "Santiago",
    "Buenos Aires",
    "Medellín",
    "Cali",
]
_WORDS = {
    "es": "café banano cacao petróleo turismo fútbol salud educación transporte energía agua "
    "vivienda empleo comercio minería pesca cultura música cine tecnología ciencia "
    "lluvia sequía vacunas impuestos salarios exportaciones remesas inflación",
    "pt": "café soja açúcar petróleo turismo futebol saúde educação transporte energia água "
    "moradia emprego comércio mineração pesca cultura música cinema tecnologia ciência "
    "chuva seca vacinas impostos salários exportações inflação",
    "en": "coffee banana cocoa oil tourism football health education transport energy water "
    "housing jobs trade mining fishing culture music film technology science rain "
    "drought vaccines taxes wages exports remittances inflation",
}
WORDS = {lang: words.split() for lang, words in _WORDS.items()}
SENTENCES = {
    "es": ["Según fuentes oficiales, el {w} aumentó un {n} por ciento en {p}.",
           "Los vecinos de {p} reclaman más inversión en {w} y {w2}.",
           "El ministerio de {w} presentó un informe con {n} recomendaciones.",
           "Expertos advierten que el {w} seguirá afectando a {p} durante {n} meses.",
           "La alcaldía de {p} anunció obras de {w} por {n} millones."],
    "pt": ["Segundo fontes oficiais, o {w} cresceu {n} por cento em {p}.",
           "Moradores de {p} pedem mais investimento em {w} e {w2}.",
           "O ministério de {w} apresentou um relatório com {n} recomendações.",
           "Especialistas alertam que o {w} seguirá afetando {p} por {n} meses.",
           "A prefeitura de {p} anunciou obras de {w} de {n} milhões."],
    "en": ["Officials said {w} rose {n} percent in {p}.",
           "Residents of {p} want more spending on {w} and {w2}.",
           "The {w} ministry published a report with {n} recommendations.",
           "Experts warn {w} will weigh on {p} for {n} months.",
           "{p} city hall announced {n} million for {w} works."],
}  # fmt: skip
TOPICAL_SENTENCES = {
    "es": ["Fuentes penitenciarias indicaron que {g} mantiene el control de la {f}.",
           "El operativo en la {f} movilizó a {n} militares y policías.",
           "Los reos de {g} fueron trasladados tras la requisa en la {f}."],
    "pt": ["Segundo a polícia, {g} mantém o controle do {f}.",
           "A operação no {f} mobilizou {n} agentes.",
           "Os presos ligados a {g} foram transferidos após a revista no {f}."],
    "en": ["Prison officials said {g} still controls {f}.",
           "The operation at {f} involved {n} soldiers and police officers.",
           "Inmates tied to {g} were moved after a search at {f}."],
}  # fmt: skip
LANG_SHARE = [("es", 0.5), ("pt", 0.25), ("en", 0.25)]
COUNTRIES: dict[str, list[str | None]] = {
    "es": ["EC", "SV", "HN", "VE", "CO", "MX"],
    "pt": ["BR"],
    "en": [None, "US"],
}
N_SOURCES = 40
SILENT_SOURCES = 2  # stop publishing five days before the end: silent_sources has work


def make_sources() -> list[dict[str, Any]]:
    rng = random.Random(7)
    out = []
    for sid in range(1, N_SOURCES + 1):
        lang = "es" if sid % 4 in (0, 1) else ("pt" if sid % 4 == 2 else "en")
        out.append(
            {
                "id": sid,
                "name": f"source-{sid:02d}-{lang}",
                "kind": rng.choice(["rss", "rss", "atom", "gdelt"]),
                "url": f"https://source{sid}.example/feed",
                "lang": lang,
                "country": rng.choice(COUNTRIES[lang]),
                "tags": "[]",
                "consecutive_failures": 3 if sid > N_SOURCES - SILENT_SOURCES else 0,
                "last_error": "HTTP 503" if sid > N_SOURCES - SILENT_SOURCES else None,
                "last_success_at": NOW
                - timedelta(days=5 if sid > N_SOURCES - SILENT_SOURCES else 0, hours=1),
            }
        )
    return out


class Feed:
    """A deterministic stream of items in publication order, ids 1..n."""

    def __init__(self, n: int, sources: list[dict[str, Any]], seed: int = 42) -> None:
        self.n = n
        self.rng = random.Random(seed)
        self.by_lang: dict[str, list[int]] = {}
        for s in sources:
            self.by_lang.setdefault(s["lang"], []).append(s["id"])
        self.topical: set[int] = set()
        self.start = NOW - timedelta(days=365)
        self.step = timedelta(days=365) / n

    def _fill(self, template: str, lang: str) -> str:
        r = self.rng
        return template.format(
            f=r.choice(FACILITIES[lang]),
            g=r.choice(GANGS[lang]),
            n=r.randint(2, 90),
            p=r.choice(PLACES),
            w=r.choice(WORDS[lang]),
            w2=r.choice(WORDS[lang]),
        )

    def _source(self, lang: str, late: bool) -> int:
        srcs = self.by_lang[lang]
        if late:  # the silent sources publish nothing in the last five days
            srcs = [s for s in srcs if s <= N_SOURCES - SILENT_SOURCES]
        return self.rng.choice(srcs)

    def rows(self) -> Iterator[tuple[Any, ...]]:
        r = self.rng
        open_clusters: list[tuple[int, datetime, str, str]] = []  # id, first time, lang, title
        for item_id in range(1, self.n + 1):
            lang = r.choices([x[0] for x in LANG_SHARE], [x[1] for x in LANG_SHARE])[0]
            published = self.start + self.step * item_id + timedelta(seconds=r.randint(0, 600))
            late = published > NOW - timedelta(days=5)
            source = self._source(lang, late)
            cluster = item_id
            if r.random() < 0.05:
                self.topical.add(item_id)
                open_clusters = [c for c in open_clusters if published - c[1] < timedelta(hours=6)]
                if open_clusters and r.random() < 0.5:
                    cluster, _, lang0, title0 = r.choice(open_clusters)
                    lang = lang0
                    source = self._source(lang, late)
                    title = (
                        title0
                        if r.random() < 0.5
                        else self._fill(r.choice(TOPICAL_TITLES[lang]), lang)
                    )
                else:
                    title = self._fill(r.choice(TOPICAL_TITLES[lang]), lang)
                    open_clusters.append((item_id, published, lang, title))
                body = [self._fill(r.choice(TOPICAL_SENTENCES[lang]), lang) for _ in range(2)]
                body += [self._fill(r.choice(SENTENCES[lang]), lang) for _ in range(2)]
            else:
                title = self._fill(r.choice(GENERIC_TITLES[lang]), lang)
                body = [self._fill(r.choice(SENTENCES[lang]), lang) for _ in range(4)]
            url = f"https://source{source}.example/news/{item_id}"
            yield (
                item_id, source, url, url, None, title, " ".join(body), lang, published,
                published + timedelta(minutes=r.randint(2, 30)), f"{item_id:064x}", cluster,
            )  # fmt: skip


# --- ingest -----------------------------------------------------------------------------------


def _pg_conninfo(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://")


def ingest_row_by_row(conninfo: str, rows: list[tuple[Any, ...]]) -> float:
    sql = (
        f"INSERT INTO items ({', '.join(ITEM_COLS)}) VALUES ({', '.join(['%s'] * len(ITEM_COLS))})"
        " ON CONFLICT (canonical_url) DO NOTHING"
    )
    with psycopg.connect(conninfo) as conn, conn.cursor() as cur:
        t0 = time.perf_counter()
        for row in rows:
            cur.execute(sql, row)
        conn.commit()
        return time.perf_counter() - t0


def ingest_batched(engine: sa.Engine, rows: list[tuple[Any, ...]], batch: int) -> float:
    stmt = pg_insert(items).on_conflict_do_nothing(index_elements=[items.c.canonical_url])
    t0 = time.perf_counter()
    for i in range(0, len(rows), batch):
        with engine.begin() as conn:
            conn.execute(stmt, [dict(zip(ITEM_COLS, r, strict=True)) for r in rows[i : i + batch]])
    return time.perf_counter() - t0


SEARCH_INDEXES = ("ix_items_search", "ix_items_title_trgm")


def ingest_copy(
    conninfo: str,
    rows: Iterator[tuple[Any, ...]],
    chunk: int,
    loaders: int = 1,
    async_commit: bool = False,
) -> tuple[float, int]:
    """The product's bulk loader (pipeline/storage/bulk.py, what `sentinela archive import`
    runs): COPY into a temporary staging table, then one `INSERT … SELECT … ON CONFLICT DO
    NOTHING` per chunk, on `loaders` connections in parallel; with `async_commit`, the bulk
    sessions' settings and the final GIN merge (timed). Explicit ids, so the labels and
    clusters generated below refer to the right items."""
    report = bulk_upsert_items(
        conninfo, rows, chunk=chunk, loaders=loaders, async_commit=async_commit, columns=ITEM_COLS
    )
    return report.seconds, report.rows


def ingest_backfill(
    conninfo: str, rows: Iterator[tuple[Any, ...]], chunk: int, loaders: int
) -> dict[str, Any]:
    """Backfill mode, for a huge one-off import: drop the two search indexes, COPY, build
    them again in one pass (a bulk GIN build sorts its entries instead of inserting them one
    row at a time). Full-text and fuzzy search are unavailable (slow) meanwhile, so this is
    an operator's choice, not what the steady-state rate above assumes. The rebuild covers
    the whole table, old rows included: the reported rate is conservative."""
    with psycopg.connect(conninfo) as conn:
        defs = [
            r[0]
            for r in conn.execute(
                "SELECT indexdef FROM pg_indexes WHERE indexname = ANY(%s)", [list(SEARCH_INDEXES)]
            )
        ]
        assert len(defs) == len(SEARCH_INDEXES), defs
        t0 = time.perf_counter()
        for name in SEARCH_INDEXES:
            conn.execute(f"DROP INDEX {name}")
        conn.commit()
        t_drop = time.perf_counter() - t0
    t_load, n = ingest_copy(conninfo, rows, chunk, loaders, async_commit=True)

    def build(indexdef: str) -> None:
        with psycopg.connect(conninfo, autocommit=True) as conn:
            conn.execute("SET maintenance_work_mem = '256MB'")
            conn.execute(indexdef)

    import threading

    t0 = time.perf_counter()
    builders = [threading.Thread(target=build, args=(d,)) for d in defs]  # one per core
    for b in builders:
        b.start()
    for b in builders:
        b.join()
    t_build = time.perf_counter() - t0
    with psycopg.connect(conninfo) as conn:
        rebuilt = conn.execute(
            "SELECT count(*) FROM pg_indexes WHERE indexname = ANY(%s)", [list(SEARCH_INDEXES)]
        ).fetchone()
    assert rebuilt and rebuilt[0] == len(SEARCH_INDEXES), "search indexes were not rebuilt"
    total = t_drop + t_load + t_build
    return {
        "items": n,
        "load_seconds": round(t_load, 2),
        "index_build_seconds": round(t_build, 2),
        "seconds": round(total, 2),
        "items_per_s": round(n / total) if total else None,
    }


def load_labels(conninfo: str, n_items: int, topical: set[int], classified: float) -> dict:
    """Classifications, alerts and feedback, by COPY. Returns counts."""
    rng = random.Random(9)
    counts = {"classifications": 0, "matches": 0, "alerts": 0, "feedback": 0}
    with psycopg.connect(conninfo) as conn:
        with conn.cursor() as cur:
            cur.execute("SELECT id, published_at, source_id FROM items")
            meta = {i: (p, s) for i, p, s in cur}
        with (
            conn.cursor() as cur,
            cur.copy(
                "COPY classifications (item_id, model_version, labels, scores, evidence, score, "
                "is_match) FROM STDIN"
            ) as copy,
        ):
            for item_id in range(1, n_items + 1):
                on_topic = item_id in topical
                if not on_topic and rng.random() >= classified:
                    continue
                if on_topic and rng.random() < 0.9:
                    labels = rng.choice(
                        [["gang_prison_control"], ["security_operation"],
                         ["gang_prison_control", "security_operation"]]
                    )  # fmt: skip
                    score = round(rng.uniform(0.6, 0.99), 3)
                elif rng.random() < 0.01:  # a false positive now and then
                    labels, score = ["security_operation"], round(rng.uniform(0.5, 0.7), 3)
                else:
                    labels, score = [], round(rng.uniform(0.0, 0.4), 3)
                scores = {"gang_prison_control": score, "security_operation": score / 2}
                copy.write_row(
                    (item_id, "bench-v1", json.dumps(labels), json.dumps(scores), "{}", score,
                     bool(labels))
                )  # fmt: skip
                counts["classifications"] += 1
                counts["matches"] += bool(labels)
        conn.commit()
        with conn.cursor() as cur:
            cur.execute("SELECT item_id FROM classifications WHERE is_match ORDER BY item_id")
            matched = [r[0] for r in cur]
        with (
            conn.cursor() as cur,
            cur.copy(
                "COPY alerts (item_id, channel, status, attempts, slack_ts, created_at, sent_at, "
                "last_error) FROM STDIN"
            ) as copy,
        ):
            for item_id in matched:
                published, _ = meta[item_id]
                created = published + timedelta(minutes=rng.randint(3, 40))
                if rng.random() < 0.97:
                    sent = created + timedelta(seconds=rng.randint(1, 600))
                    copy.write_row(
                        (item_id, "#sentinela", "sent", 1, f"{item_id}.0001", created, sent, None)
                    )
                else:
                    copy.write_row(
                        (item_id, "#sentinela", "failed", 5, None, created, None, "ratelimited")
                    )
                counts["alerts"] += 1
        conn.commit()
        with conn.cursor() as cur:
            cur.execute("SELECT id, item_id, created_at FROM alerts")
            alert_rows = list(cur)
        with (
            conn.cursor() as cur,
            cur.copy(
                "COPY feedback (alert_id, item_id, label_verdict, user_id, created_at) FROM STDIN"
            ) as copy,
        ):
            for alert_id, item_id, created in alert_rows:
                if rng.random() >= 0.3:
                    continue
                for user in rng.sample(["ana", "bruno", "carla", "diego"], rng.randint(1, 2)):
                    verdict = "relevant" if rng.random() < 0.85 else "not_relevant"
                    when = created + timedelta(hours=rng.randint(1, 48))
                    copy.write_row((alert_id, item_id, verdict, user, when))
                    counts["feedback"] += 1
        conn.commit()
    return counts


# --- queries ------------------------------------------------------------------------------------


def query_params() -> dict[str, dict[str, Any]]:
    last_month = (NOW.replace(day=1) - timedelta(days=1)).date().isoformat()
    return {
        "alert_latency": {"days": 7},
        "daily_matches_by_country": {"days": 14},
        "facility_mentions": {"q": "cárcel Turi", "days": 7},
        "first_to_break": {"days": 30},
        "fuzzy_title_search": {"q": "Motin en la carcel de Turi deja muertos"},
        "new_gangs": {"month": last_month},
        "precision_by_source": {"days": 90},
        "search_items": {"q": "motín OR rebelião OR riot", "days": 30},
        "silent_sources": {"hours": 48},
        "top_stories_24h": {"hours": 24},
    }


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    k = (len(ordered) - 1) * p
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def time_queries(engine: sa.Engine, runs: int) -> dict[str, dict[str, Any]]:
    params = query_params()
    out: dict[str, dict[str, Any]] = {}
    for name in list_queries():
        p = params.get(name, {})
        rows = run_query(engine, name, **p)  # warm-up: plan cache, buffers
        times = []
        for _ in range(runs):
            t0 = time.perf_counter()
            run_query(engine, name, **p)
            times.append((time.perf_counter() - t0) * 1000)
        out[name] = {
            "params": p,
            "rows": len(rows),
            "runs": runs,
            "p50_ms": round(statistics.median(times), 1),
            "p95_ms": round(pct(times, 0.95), 1),
            "max_ms": round(max(times), 1),
        }
    return out


# --- main ---------------------------------------------------------------------------------------


def _backfill_fresh(admin: sa.Engine, args: argparse.Namespace) -> dict[str, Any]:
    """Backfill mode where it belongs: the first import of a large history into an empty
    archive (a database of its own, dropped afterwards)."""
    name = f"sentinela_bench_{uuid.uuid4().hex[:8]}"
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    engine = make_engine(url)
    try:
        upgrade(engine)
        srcs = make_sources()
        with engine.begin() as conn:
            conn.execute(
                sa.text(
                    "INSERT INTO sources (id, name, kind, url, lang, country, tags) VALUES "
                    "(:id, :name, :kind, :url, :lang, :country, CAST(:tags AS jsonb))"
                ),
                [{k: s[k] for k in ("id", "name", "kind", "url", "lang", "country", "tags")}
                 for s in srcs],
            )  # fmt: skip
        rows = list(Feed(args.backfill, srcs, seed=43).rows())
        return ingest_backfill(_pg_conninfo(url), iter(rows), args.parallel_chunk, args.loaders)
    finally:
        engine.dispose()
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--items", type=int, default=1_000_000)
    ap.add_argument("--row-by-row", type=int, default=20_000, help="items inserted one by one")
    ap.add_argument("--batched", type=int, default=100_000, help="items by batched INSERT")
    ap.add_argument("--batch", type=int, default=5_000, help="rows per batched transaction")
    ap.add_argument("--copy-chunk", type=int, default=100_000, help="rows per COPY transaction")
    ap.add_argument(
        "--copy-single", type=int, default=200_000, help="items by COPY on one connection"
    )
    ap.add_argument("--parallel-chunk", type=int, default=50_000, help="rows per parallel COPY")
    ap.add_argument("--loaders", type=int, default=2, help="parallel COPY connections")
    ap.add_argument(
        "--backfill", type=int, default=300_000, help="items into a fresh archive, backfill mode"
    )
    ap.add_argument("--classified", type=float, default=0.25, help="share of off-topic items")
    ap.add_argument("--runs", type=int, default=25, help="timed runs per query")
    ap.add_argument("--output", type=Path, default=RESULTS)
    ap.add_argument("--keep", action="store_true", help="keep the database (for EXPLAIN)")
    args = ap.parse_args()

    load_before = os.getloadavg()
    name = f"sentinela_bench_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    conninfo = _pg_conninfo(url)
    engine = make_engine(url)
    t_all = time.perf_counter()
    try:
        upgrade(engine)
        srcs = make_sources()
        with engine.begin() as conn:
            conn.execute(
                sa.text(
                    "INSERT INTO sources (id, name, kind, url, lang, country, tags, "
                    "consecutive_failures, last_error, last_success_at) VALUES (:id, :name, "
                    ":kind, :url, :lang, :country, CAST(:tags AS jsonb), :consecutive_failures, "
                    ":last_error, :last_success_at)"
                ),
                srcs,
            )
        feed = Feed(args.items, srcs)
        stream = feed.rows()
        n_row = min(args.row_by_row, args.items)
        n_batch = min(args.batched, args.items - n_row)
        print(f"archive benchmark: {args.items:,} items into {name}", flush=True)

        rows = list(islice(stream, n_row))
        t_row = ingest_row_by_row(conninfo, rows)
        print(f"  row by row   {n_row:>9,} items {t_row:7.1f} s", flush=True)
        rows = list(islice(stream, n_batch))
        t_batch = ingest_batched(engine, rows, args.batch)
        print(f"  batched      {n_batch:>9,} items {t_batch:7.1f} s", flush=True)
        replay = rows[: args.copy_chunk]
        del rows
        # Rows are generated before each timed load (the generator alone runs ~30k rows/s,
        # which the COPY figure used to include).
        n_single = min(args.copy_single, args.items - n_row - n_batch)
        n_par = args.items - n_row - n_batch - n_single
        rows = list(islice(stream, n_single))
        t_copy, n_copy = ingest_copy(conninfo, iter(rows), args.copy_chunk)
        print(f"  COPY+upsert  {n_copy:>9,} items {t_copy:7.1f} s (1 connection)", flush=True)
        rows = list(islice(stream, n_par))
        t_par, n_par = ingest_copy(
            conninfo, iter(rows), args.parallel_chunk, args.loaders, async_commit=True
        )
        del rows
        print(
            f"  COPY+upsert  {n_par:>9,} items {t_par:7.1f} s "
            f"({args.loaders} connections, synchronous_commit off)",
            flush=True,
        )
        backfill = _backfill_fresh(admin, args) if args.backfill else None
        if backfill:
            print(
                f"  backfill     {backfill['items']:>9,} items {backfill['seconds']:7.1f} s "
                "(fresh archive)",
                flush=True,
            )
        # Idempotent re-ingest: a chunk already stored again, every row a conflict.
        t_again, n_again = ingest_copy(conninfo, iter(replay), args.copy_chunk)
        del replay
        with engine.connect() as conn:
            stored = conn.execute(sa.text("SELECT COUNT(*) FROM items")).scalar_one()
        assert stored == args.items, f"expected {args.items} items, found {stored}"
        print(f"  re-upsert    {n_again:>9,} items {t_again:7.1f} s (all conflicts)", flush=True)
        with engine.begin() as conn:
            conn.execute(sa.text("SELECT setval('items_id_seq', (SELECT MAX(id) FROM items))"))

        t0 = time.perf_counter()
        counts = load_labels(conninfo, args.items, feed.topical, args.classified)
        t_labels = time.perf_counter() - t0
        t0 = time.perf_counter()
        with psycopg.connect(conninfo, autocommit=True) as conn:
            conn.execute("VACUUM ANALYZE")
        t_vacuum = time.perf_counter() - t0
        with engine.connect() as conn:
            size = conn.execute(
                sa.text("SELECT pg_size_pretty(pg_database_size(current_database()))")
            ).scalar_one()
        print(
            f"  labels: {counts} in {t_labels:.1f} s; VACUUM ANALYZE {t_vacuum:.1f} s; "
            f"database {size}",
            flush=True,
        )
        queries = time_queries(engine, args.runs)
    finally:
        engine.dispose()
        if args.keep:
            print(f"kept database {name}")
        else:
            with admin.connect() as conn:
                conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    rate = {
        "row_by_row": n_row / t_row,
        "batched_insert_on_conflict": n_batch / t_batch if n_batch else None,
        "copy_upsert": n_copy / t_copy if n_copy else None,
        "copy_upsert_parallel": n_par / t_par if n_par else None,
        "reupsert_all_conflicts": n_again / t_again if n_again else None,
    }
    with psycopg.connect(_pg_conninfo(ADMIN_URL)) as conn:
        server = conn.execute("SHOW server_version").fetchone()
    result = {
        "when": NOW.isoformat(),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "postgres": server[0] if server else None,
            # other work on the machine slows both ingest and queries: record it
            "loadavg_1m_before": round(load_before[0], 2),
            "loadavg_1m_after": round(os.getloadavg()[0], 2),
        },
        "items": args.items,
        "ingest": {
            "row_by_row": {"items": n_row, "seconds": round(t_row, 2)},
            "batched_insert_on_conflict": {
                "items": n_batch,
                "seconds": round(t_batch, 2),
                "batch": args.batch,
            },
            "copy_upsert": {"items": n_copy, "seconds": round(t_copy, 2), "chunk": args.copy_chunk},
            "copy_upsert_parallel": {
                "items": n_par,
                "seconds": round(t_par, 2),
                "chunk": args.parallel_chunk,
                "loaders": args.loaders,
                "synchronous_commit": "off (bulk sessions only)",
            },
            "backfill_mode": backfill,
            "reupsert_all_conflicts": {"items": n_again, "seconds": round(t_again, 2)},
            "items_per_s": {k: round(v) if v else None for k, v in rate.items()},
            "speedup_vs_row_by_row": {
                k: round(v / rate["row_by_row"], 1) if v else None
                for k, v in rate.items()
                if k != "row_by_row"
            },
        },
        "labels": counts,
        "labels_seconds": round(t_labels, 1),
        "vacuum_analyze_seconds": round(t_vacuum, 1),
        "database_size": size,
        "queries": queries,
        "targets": {"items_per_s": 20_000, "p95_ms": 200},
        "total_seconds": round(time.perf_counter() - t_all, 1),
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")

    print()
    print(f"{'ingest':32} {'items':>9} {'items/s':>9} {'× row-by-row':>13}")
    for key, label in [
        ("row_by_row", "row by row INSERT … ON CONFLICT"),
        ("batched_insert_on_conflict", "batched INSERT … ON CONFLICT"),
        ("copy_upsert", "COPY + INSERT … ON CONFLICT"),
        ("copy_upsert_parallel", f"COPY + upsert, {args.loaders} loaders"),
        ("reupsert_all_conflicts", "re-upsert (all conflicts)"),
    ]:
        r = rate[key]
        n = result["ingest"][key]["items"]
        ratio = "" if key == "row_by_row" or not r else f"{r / rate['row_by_row']:.1f}"
        print(f"{label:32} {n:>9,} {round(r or 0):>9,} {ratio:>13}")
    if backfill:
        r = backfill["items_per_s"]
        print(
            f"{'backfill mode (indexes rebuilt)':32} {backfill['items']:>9,} {r:>9,} "
            f"{r / rate['row_by_row']:>13.1f}"
        )
    print()
    print(f"{'query':28} {'rows':>5} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8}")
    for qname, qr in queries.items():
        flag = "" if qr["p95_ms"] <= 200 else "  > 200 ms target"
        print(
            f"{qname:28} {qr['rows']:>5} {qr['p50_ms']:>8.1f} {qr['p95_ms']:>8.1f} "
            f"{qr['max_ms']:>8.1f}{flag}"
        )
    print(f"\nwritten to {args.output}; total {result['total_seconds']} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
