"""The queryable archive on real PostgreSQL (and the views on SQLite too): every documented
query in sql/queries against a small, hand-made archive whose right answers are known;
full-text search in each item's language; trigram title search; the read-only analyst role."""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command

from pipeline import archive
from pipeline.storage.db import alembic_config, current_revision, make_engine, upgrade
from pipeline.storage.schema import alerts, classifications, feedback, items, sources
from tests.conftest import _drop_pg_db, _fresh_pg_db

SENTINELA = str(Path(sys.executable).parent / "sentinela")
NOW = datetime.now(UTC).replace(microsecond=0)
CHANNEL = "#sentinela"


def ago(**kw: float) -> datetime:
    return NOW - timedelta(**kw)


# First day (UTC) of the month four months back: the "this month" of the new-gangs query,
# far from every now-relative window of the other queries.
_m = NOW.replace(day=1, hour=0, minute=0, second=0)
for _ in range(4):
    _m = (_m - timedelta(days=1)).replace(day=1)
GANG_MONTH = _m
PREV_MONTH = (GANG_MONTH - timedelta(days=1)).replace(day=1)


SOURCES = [
    # id, name, kind, lang, country, consecutive_failures, last_error
    (1, "primicias-es", "rss", "es", "EC", 0, None),
    (2, "expreso-es", "rss", "es", "EC", 0, None),
    (3, "folha-pt", "atom", "pt", "BR", 0, None),
    (4, "insight-en", "rss", "en", None, 0, None),
    (5, "elfaro-es", "rss", "es", "SV", 0, None),
    (6, "quiet-feed", "rss", "es", "HN", 3, "HTTP 503 from https://quiet.example/feed"),
    (7, "never-feed", "rss", "pt", "BR", 1, "timed out"),
]


@dataclass(frozen=True)
class Seed:
    id: int
    source: int
    lang: str | None
    title: str
    text: str
    published: datetime
    cluster: int | None = None
    # (labels, score) of the latest classification; None: never classified
    verdict: tuple[list[str], float] | None = None


GPC, SEC = "gang_prison_control", "security_operation"
MATCHED: dict[int, tuple[list[str], float]] = {}

SEEDS = [
    Seed(1, 1, "es", "Motín en la cárcel de Turi deja cinco muertos",
         "Un motín en la cárcel de Turi, en Cuenca, dejó cinco reos muertos. Los Choneros y "
         "Los Lobos se disputan el control de los pabellones.", ago(hours=3), 1, ([GPC], 0.95)),
    Seed(2, 2, "es", "Cinco reos muertos tras enfrentamiento en la cárcel de Turi",
         "Las autoridades confirmaron cinco fallecidos en la cárcel de Turi tras una pelea "
         "entre bandas.", ago(hours=2), 1, ([GPC], 0.90)),
    Seed(3, 4, "en", "Riot at Ecuador's Turi prison leaves five dead",
         "Five inmates died in a riot at the Turi prison in Cuenca as gangs fought for control.",
         ago(hours=1), 1, ([GPC], 0.88)),
    Seed(4, 3, "pt", "Polícia transfere líderes do PCC para presídio federal",
         "A Polícia Federal transferiu líderes do Primeiro Comando da Capital para um presídio "
         "federal de segurança máxima.", ago(hours=5), 4, ([SEC], 0.91)),
    Seed(5, 5, "es", "Régimen de excepción: capturan a 40 pandilleros de la MS-13",
         "La Policía Nacional Civil capturó a 40 pandilleros de la MS-13 en San Miguel.",
         ago(hours=30), 5, ([SEC], 0.80)),
    Seed(6, 4, "en", "Colombia's coffee harvest breaks records",
         "Coffee exports rose twelve percent this year.", ago(hours=4), 6, ([], 0.04)),
    Seed(7, 1, "es", "Penitenciaría del Litoral: militares toman control de pabellones",
         "Militares y policías tomaron el control de los pabellones de la Penitenciaría del "
         "Litoral en Guayaquil.", ago(hours=48), 7, ([GPC, SEC], 0.97)),
    # Matched by an old model, not by the latest one: never counts as a match.
    Seed(8, 2, "es", "Barcelona SC gana el clásico del astillero",
         "El equipo amarillo venció en el estadio Monumental.", ago(hours=6), 8, ([], 0.10)),
    Seed(9, 6, "es", "Extorsión a transportistas en San Pedro Sula",
         "Comerciantes denuncian cobros de renta.", ago(days=5), 9, None),
    # Same words, no language: the 'simple' configuration, no stemming.
    Seed(10, 4, None, "Registro en la cárcel de Machala", "Requisa en la cárcel.",
         ago(hours=10), 10, None),
    # A second multi-source story, ten days ago, broken by expreso-es 30 minutes ahead.
    Seed(11, 2, "es", "Fuga de reos en la cárcel de Machala",
         "Doce reos se fugaron de la cárcel de Machala durante la madrugada.",
         ago(days=10), 11, ([GPC], 0.93)),
    Seed(12, 1, "es", "Se fugan doce presos de la cárcel de Machala",
         "Doce presos escaparon de la cárcel de Machala.", ago(days=10, minutes=-30), 11,
         ([GPC], 0.92)),
    # New-gangs months (four and five months back).
    Seed(20, 1, "es", "Los Choneros amenazan a guías penitenciarios",
         "Cabecillas de Los Choneros enviaron amenazas desde la cárcel.",
         PREV_MONTH + timedelta(days=3), 20, ([GPC], 0.9)),
    Seed(21, 5, "es", "Capturan a cabecilla de la MS-13 en penal de Izalco",
         "El líder de la MS-13 fue trasladado.", PREV_MONTH + timedelta(days=5), 21, ([SEC], 0.9)),
    Seed(22, 1, "es", "Choneros controlan pabellón 8",
         "Según inteligencia penitenciaria, los Choneros controlan el pabellón 8.",
         GANG_MONTH + timedelta(days=2), 22, ([GPC], 0.9)),
    Seed(23, 5, "es", "El Tren de Aragua recluta en cárceles",
         "El Tren de Aragua recluta presos en cárceles de la región.",
         GANG_MONTH + timedelta(days=4), 23, ([GPC], 0.9)),
    Seed(24, 3, "pt", "Comando Vermelho domina presídio no Rio",
         "Facção Comando Vermelho assume o controle de presídio.",
         GANG_MONTH + timedelta(days=6), 24, ([GPC], 0.9)),
    Seed(25, 3, "pt", "Operação contra o Comando Vermelho prende 30",
         "A polícia prendeu 30 integrantes do Comando Vermelho.",
         GANG_MONTH + timedelta(days=8), 25, ([SEC], 0.9)),
    # Names Los Lobos, but the model did not match it: not counted.
    Seed(26, 4, "en", "Los Lobos concert tour announced", "The band Los Lobos will tour.",
         GANG_MONTH + timedelta(days=9), 26, ([], 0.05)),
]  # fmt: skip

# alerts: item -> (status, minutes from publication to sent_at, last_error)
ALERTS = {
    1: ("sent", 20, None),
    2: ("sent", 10, None),
    4: ("sent", 30, None),
    7: ("sent", 60, None),
    3: ("pending", None, None),
    5: ("failed", None, "channel_not_found"),
}
FEEDBACK = [
    (1, "alice", "relevant"),
    (1, "bob", "relevant"),
    (7, "alice", "relevant"),
    (7, "bob", "not_relevant"),
    (2, "alice", "not_relevant"),
    (2, "bob", "not_relevant"),
    (4, "alice", "relevant"),
]


def _seed(engine: sa.Engine) -> dict[int, int]:
    """Write the archive above; return item id -> alert id."""
    by_id = {s.id: s for s in SEEDS}
    with engine.begin() as conn:
        conn.execute(
            sa.insert(sources),
            [
                {
                    "id": sid,
                    "name": name,
                    "kind": kind,
                    "url": f"https://{name}.example/feed",
                    "lang": lang,
                    "country": country,
                    "tags": [],
                    "consecutive_failures": fails,
                    "last_error": err,
                    "last_success_at": None if sid == 7 else ago(hours=1),
                }
                for sid, name, kind, lang, country, fails, err in SOURCES
            ],
        )
        conn.execute(
            sa.insert(items),
            [
                {
                    "id": s.id,
                    "source_id": s.source,
                    "url": f"https://news.example/{s.id}",
                    "canonical_url": f"https://news.example/{s.id}",
                    "title": s.title,
                    "text": s.text,
                    "lang": s.lang,
                    "published_at": s.published,
                    "fetched_at": s.published + timedelta(minutes=5),
                    "content_hash": f"{s.id:064x}",
                    "cluster_id": s.cluster,
                }
                for s in SEEDS
            ],
        )
        rows = []
        for s in SEEDS:
            if s.verdict is None:
                continue
            labels, score = s.verdict
            if s.id == 8:  # the old model's false positive, superseded below
                rows.append(_classification(8, "v1", [GPC], 0.81))
            rows.append(_classification(s.id, "v2", labels, score))
        conn.execute(sa.insert(classifications), rows)
        alert_ids = {}
        for item_id, (status, minutes, err) in ALERTS.items():
            sent = by_id[item_id].published + timedelta(minutes=minutes) if minutes else None
            alert_ids[item_id] = conn.execute(
                sa.insert(alerts)
                .values(
                    item_id=item_id,
                    channel=CHANNEL,
                    status=status,
                    attempts=1 if status != "pending" else 0,
                    slack_ts=f"1700000000.{item_id:06d}" if status == "sent" else None,
                    sent_at=sent,
                    last_error=err,
                )
                .returning(alerts.c.id)
            ).scalar_one()
        conn.execute(
            sa.insert(feedback),
            [
                {
                    "alert_id": alert_ids.get(item_id),
                    "item_id": item_id,
                    "label_verdict": verdict,
                    "user_id": user,
                    "created_at": ago(hours=1),
                }
                for item_id, user, verdict in FEEDBACK
            ],
        )
    return alert_ids


def _classification(item_id: int, version: str, labels: list[str], score: float) -> dict:
    return {
        "item_id": item_id,
        "model_version": version,
        "labels": labels,
        "scores": {GPC: score if GPC in labels else 0.1, SEC: score if SEC in labels else 0.1},
        "evidence": {},
        "score": score,
        "is_match": bool(labels),
    }


@pytest.fixture(scope="module")
def archive_url(pg_server_url: str) -> Iterator[str]:
    """One seeded Postgres archive shared by the read-only query tests of this module."""
    url = _fresh_pg_db(pg_server_url)
    eng = make_engine(url)
    try:
        upgrade(eng)
        _seed(eng)
        yield url
    finally:
        eng.dispose()
        _drop_pg_db(url)


@pytest.fixture(scope="module")
def pg(archive_url: str) -> Iterator[sa.Engine]:
    eng = make_engine(archive_url)
    yield eng
    eng.dispose()


def q(engine: sa.Engine, name: str, **params: Any) -> list[dict[str, Any]]:
    return archive.run_query(engine, name, **params)


# --- the documented queries --------------------------------------------------------------


def test_every_query_file_is_documented_and_declares_its_binds() -> None:
    names = archive.list_queries()
    assert len(names) >= 8
    for name in names:
        doc = archive.describe_query(name)
        text = archive.load_query(name)
        assert text.startswith("-- "), name
        assert doc.summary and "Answers:" in doc.header, name
        assert "Example:" in doc.header and f"sentinela query {name}" in doc.header, name
        assert doc.dialects == ("postgresql",), name
        assert "Dialect: postgresql" in doc.header, name
        assert archive.bind_names(doc.sql) == {p.name for p in doc.params}, name


def test_facility_mentions_is_language_aware_and_limited_to_matches(pg: sa.Engine) -> None:
    rows = q(pg, "facility_mentions", q="cárceles")
    # Spanish stemming: "cárceles" finds "cárcel" in Spanish items 1 and 2; the English item
    # 3 says "prison", item 10 has no language (simple config: no stemming), 11 and 12 are
    # older than a week.
    assert [r["item_id"] for r in rows] == [2, 1]
    assert rows[0]["source"] == "expreso-es" and rows[0]["country"] == "EC"
    assert "«cárcel»" in rows[0]["excerpt"]
    assert [r["item_id"] for r in q(pg, "facility_mentions", q="cárceles", days=14)] == [
        2, 1, 12, 11,
    ]  # fmt: skip
    phrase = q(pg, "facility_mentions", q='"Penitenciaría del Litoral"')
    assert [r["item_id"] for r in phrase] == [7]
    assert phrase[0]["labels"] == [GPC, SEC]
    # Item 8 says "estadio": it was matched by model v1 only, v2 says no.
    assert q(pg, "facility_mentions", q="estadio") == []


def test_full_text_uses_each_items_language(pg: sa.Engine) -> None:
    def ids(words: str, **kw: Any) -> set[int]:
        return {r["item_id"] for r in q(pg, "search_items", q=words, **kw)}

    # Spanish items are stemmed (and accents folded) as Spanish: "carceles" finds "cárcel".
    # Item 10 says "cárcel" too, but has no language: the 'simple' configuration keeps the
    # word as written, and only the exact word finds it.
    assert ids("carceles") == {1, 2, 11, 12}
    assert ids("carceles", days=7) == {1, 2}
    assert ids("cárcel") == {1, 2, 10, 11, 12}
    assert ids("prisons") == {3}  # English stemming: "prison"
    assert ids("presídios") == {4}  # Portuguese stemming: "presídio"
    assert ids("prisons OR presídios") == {3, 4}
    assert ids("cárcel -Turi") == {10, 11, 12}
    assert ids("cárcel", lang="es", days=7) == {1, 2}
    assert ids('"cárcel de Machala"') == {10, 11, 12}
    matched = {r["item_id"]: r["matched"] for r in q(pg, "search_items", q="Barcelona")}
    assert matched == {8: False}


def test_full_text_search_uses_the_gin_index(pg: sa.Engine) -> None:
    with pg.begin() as conn:
        conn.execute(sa.text("SET LOCAL enable_seqscan = off"))
        plan = "\n".join(
            conn.execute(
                sa.text(
                    "EXPLAIN SELECT id FROM items i WHERE "
                    "item_search_vector(i.lang, i.title, i.text) @@ item_search_query('cárceles')"
                )
            ).scalars()
        )
        assert "ix_items_search" in plan
        plan = "\n".join(
            conn.execute(
                sa.text("EXPLAIN SELECT id FROM items WHERE 'Litorall' <% title")
            ).scalars()
        )
        assert "ix_items_title_trgm" in plan


def test_fuzzy_title_search_finds_misspelled_titles(pg: sa.Engine) -> None:
    rows = q(pg, "fuzzy_title_search", q="Penitenciaria del Litorall militares toman controll")
    assert rows[0]["item_id"] == 7 and float(rows[0]["similarity"]) >= 0.6
    rows = q(pg, "fuzzy_title_search", q="fuga de reos en la carcel de Machal")
    assert rows[0]["item_id"] == 11
    assert q(pg, "fuzzy_title_search", q="zzqx unrelated headline") == []


def test_top_stories_of_the_last_24h_one_row_per_story(pg: sa.Engine) -> None:
    rows = q(pg, "top_stories_24h")
    assert [(r["story_id"], r["item_id"], r["items"], r["sources"]) for r in rows] == [
        (1, 1, 3, 3),  # Turi: three outlets, best score from primicias
        (4, 4, 1, 1),
    ]  # item 5 is 30 h old, 6 and 8 are not matches (8 only by an old model)
    assert float(rows[0]["score"]) == 0.95 and rows[0]["source"] == "primicias-es"
    assert [r["story_id"] for r in q(pg, "top_stories_24h", hours=36, limit=2)] == [1, 4]
    assert [r["story_id"] for r in q(pg, "top_stories_24h", hours=36)] == [1, 4, 5]


def test_daily_matches_by_country(pg: sa.Engine) -> None:
    rows = q(pg, "daily_matches_by_country")
    got = {(str(r["day"]), r["country"]): r["matches"] for r in rows}
    start = datetime.combine(NOW.date() - timedelta(days=13), time(), UTC)
    # Matched by the latest classification and published in the last 14 UTC days.
    expected = Counter(
        (str(s.published.date()), dict((x[0], x[4]) for x in SOURCES)[s.source] or "?")
        for s in SEEDS
        if s.verdict and s.verdict[0] and s.published >= start
    )
    assert got == dict(expected)
    assert sum(got.values()) == 8  # items 1, 2, 3, 4, 5, 7, 11, 12; not 6 or 8
    day7 = str(SEEDS[6].published.date())
    row7 = next(r for r in rows if str(r["day"]) == day7 and r["country"] == "EC")
    assert row7[GPC] >= 1 and row7[SEC] >= 1
    only_br = q(pg, "daily_matches_by_country", country="BR")
    assert [(r["country"], r["matches"], r[SEC]) for r in only_br] == [("BR", 1, 1)]


def test_new_gangs_compares_with_the_previous_month(pg: sa.Engine) -> None:
    rows = q(pg, "new_gangs", month=GANG_MONTH.date().isoformat())
    got = {r["gang"]: (r["items_this_month"], r["items_previous_month"], r["new_this_month"])
           for r in rows}  # fmt: skip
    assert got == {
        "Comando Vermelho": (2, 0, True),
        "Tren de Aragua": (1, 0, True),
        "Los Choneros": (1, 1, False),
    }  # MS-13 was named only the month before; Los Lobos only in an unmatched item
    assert [r["gang"] for r in rows] == ["Comando Vermelho", "Tren de Aragua", "Los Choneros"]
    # The month before: MS-13 and Los Choneros were both new then.
    prev = q(pg, "new_gangs", month=PREV_MONTH.date().isoformat())
    assert {r["gang"]: r["new_this_month"] for r in prev} == {"MS-13": True, "Los Choneros": True}


def test_first_to_break(pg: sa.Engine) -> None:
    rows = q(pg, "first_to_break")
    got = {
        r["source"]: (r["stories_first"], r["stories_covered"], r["median_lead_min"]) for r in rows
    }
    assert got["primicias-es"][:2] == (1, 2)  # broke Turi, 60 min ahead of expreso-es
    assert float(got["primicias-es"][2]) == 60.0
    assert got["expreso-es"][:2] == (1, 2)  # broke Machala, 30 min ahead
    assert float(got["expreso-es"][2]) == 30.0
    assert got["insight-en"] == (0, 1, None)
    assert set(got) == {"primicias-es", "expreso-es", "insight-en"}  # single-source stories out
    assert [r["source"] for r in rows][:2] == ["expreso-es", "primicias-es"]
    # Only Turi is recent enough for a 7-day window; with three sources required, only it.
    week = {r["source"]: r["stories_first"] for r in q(pg, "first_to_break", days=7)}
    assert week == {"primicias-es": 1, "expreso-es": 0, "insight-en": 0}
    assert q(pg, "first_to_break", min_sources=4) == []


def test_precision_by_source_from_feedback(pg: sa.Engine) -> None:
    rows = q(pg, "precision_by_source")
    got = [
        (r["source"], r["items_judged"], r["relevant_votes"], r["not_relevant_votes"],
         float(r["precision_pct"]), float(r["items_relevant_pct"]))
        for r in rows
    ]  # fmt: skip
    assert got == [
        ("expreso-es", 1, 0, 2, 0.0, 0.0),
        ("primicias-es", 2, 3, 1, 75.0, 50.0),  # item 7 split 1-1: not a majority
        ("folha-pt", 1, 1, 0, 100.0, 100.0),
    ]
    assert [r["source"] for r in q(pg, "precision_by_source", min_votes=2)] == [
        "expreso-es",
        "primicias-es",
    ]


def test_alert_latency(pg: sa.Engine) -> None:
    rows = q(pg, "alert_latency")
    by_source = {r["source"]: r for r in rows}
    total = by_source["(all sources)"]
    assert rows[0]["source"] == "(all sources)" and total["channel"] == CHANNEL
    assert total["alerts_sent"] == 4  # pending and failed alerts are not latency
    assert float(total["p50_published_to_alert_min"]) == 25.0  # of 10, 20, 30, 60
    assert float(total["max_published_to_alert_min"]) == 60.0
    assert float(total["p50_fetched_to_alert_min"]) == 20.0  # fetched 5 min after publication
    prim = by_source["primicias-es"]
    assert prim["alerts_sent"] == 2 and float(prim["p50_published_to_alert_min"]) == 40.0
    assert float(prim["p95_published_to_alert_min"]) == 58.0
    # Item 7 was alerted 47 h ago: outside a one-day window.
    assert q(pg, "alert_latency", days=1)[0]["alerts_sent"] == 3


def test_silent_sources(pg: sa.Engine) -> None:
    rows = q(pg, "silent_sources")
    assert [r["source"] for r in rows] == ["never-feed", "quiet-feed"]
    assert rows[0]["last_item_at"] is None and rows[0]["consecutive_failures"] == 1
    assert rows[1]["consecutive_failures"] == 3 and "503" in rows[1]["last_error"]
    assert float(rows[1]["hours_silent"]) == pytest.approx(5 * 24 - 5 / 60, abs=0.2)
    # With a 2-hour threshold the sources whose last item is older than that join them.
    names = [r["source"] for r in q(pg, "silent_sources", hours=2)]
    assert names[:2] == ["never-feed", "quiet-feed"] and "insight-en" not in names
    assert {"elfaro-es", "folha-pt"} <= set(names)


def test_run_query_validates_names_and_parameters(pg: sa.Engine, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no query named 'nope'"):
        q(pg, "nope")
    with pytest.raises(ValueError, match="lowercase"):
        archive.load_query("../migrations/env")
    with pytest.raises(ValueError, match="needs :q"):
        q(pg, "facility_mentions")
    with pytest.raises(ValueError, match="has no parameter\\(s\\) :dayz"):
        q(pg, "facility_mentions", q="x", dayz=3)
    with pytest.raises(ValueError, match=":days must be of type integer, got 'week'"):
        q(pg, "facility_mentions", q="x", days="week")
    # Strings from the command line are converted to the declared type.
    assert [r["item_id"] for r in q(pg, "facility_mentions", q="cárceles", days="7")] == [2, 1]
    sqlite = make_engine(f"sqlite:///{tmp_path / 'a.db'}")
    with pytest.raises(ValueError, match="runs on postgresql, not sqlite"):
        q(sqlite, "silent_sources")


def test_cli_query_prints_a_table(archive_url: str) -> None:
    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [SENTINELA, "query", *args, "--db", archive_url],
            capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip

    r = run("top_stories_24h", "--param", "hours=36")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].split()[:3] == ["story_id", "score", "labels"]
    assert "Motín en la cárcel de Turi deja cinco muertos" in lines[2]
    assert lines[-1] == "(3 rows)"
    r = run("facility_mentions", "--param", "q=cárceles", "--json")
    assert r.returncode == 0, r.stderr
    assert '"item_id": 2' in r.stdout
    r = run("--list")
    assert r.returncode == 0 and "new_gangs" in r.stdout and "fuzzy_title_search" in r.stdout
    r = run("facility_mentions")
    assert r.returncode == 2 and "needs :q" in r.stderr and "Traceback" not in r.stderr
    r = run("facility_mentions", "--param", "days")
    assert r.returncode == 2 and "NAME=VALUE" in r.stderr
    r = run("no_such_query")
    assert r.returncode == 2 and "no query named" in r.stderr


# --- views on both dialects ----------------------------------------------------------------


def test_views_on_both_dialects(engine: sa.Engine) -> None:
    fetched = [ago(hours=1), ago(days=3), ago(days=10)]
    with engine.begin() as conn:
        conn.execute(
            sa.insert(sources),
            [
                {"id": 1, "name": "a", "kind": "rss", "url": "https://a.example/f",
                 "country": "EC", "last_success_at": ago(hours=1), "consecutive_failures": 0,
                 "last_error": None},
                {"id": 2, "name": "b", "kind": "atom", "url": "https://b.example/f",
                 "country": "BR", "last_success_at": None, "consecutive_failures": 2,
                 "last_error": "HTTP 500"},
            ],
        )  # fmt: skip
        conn.execute(
            sa.insert(items),
            [
                {"id": n + 1, "source_id": 1, "url": f"https://a.example/{n}",
                 "canonical_url": f"https://a.example/{n}", "title": f"t{n}", "text": "x",
                 "lang": "es", "published_at": f - timedelta(minutes=10), "fetched_at": f,
                 "content_hash": f"{n:064x}"}
                for n, f in enumerate(fetched)
            ],
        )  # fmt: skip
        conn.execute(
            sa.insert(classifications),
            [
                _classification(1, "v2", [GPC, SEC], 0.9),
                _classification(2, "v1", [GPC], 0.8),  # superseded by v2: not a match
                _classification(2, "v2", [], 0.1),
                _classification(3, "v2", [GPC], 0.7),
            ],
        )
        conn.execute(
            sa.insert(alerts),
            [
                {"item_id": 1, "channel": CHANNEL, "status": "sent", "attempts": 1,
                 "slack_ts": "1.1", "sent_at": ago(minutes=50), "last_error": None},
                {"item_id": 3, "channel": CHANNEL, "status": "failed", "attempts": 3,
                 "slack_ts": None, "sent_at": None, "last_error": "rate_limited"},
            ],
        )  # fmt: skip
    with engine.connect() as conn:
        health = {
            r["name"]: r for r in conn.execute(sa.text("SELECT * FROM source_health")).mappings()
        }
        daily = sorted(
            (str(r["day"]), r["label"], r["country"], r["language"], r["items"])
            for r in conn.execute(sa.text("SELECT * FROM daily_counts")).mappings()
        )
        log = list(conn.execute(sa.text("SELECT * FROM alert_log ORDER BY alert_id")).mappings())
    a, b = health["a"], health["b"]
    assert (a["items_24h"], a["items_7d"]) == (1, 2)
    assert float(a["items_per_day"]) == pytest.approx(2 / 7)
    assert a["kind"] == "rss" and a["consecutive_failures"] == 0 and a["last_error"] is None
    assert a["last_success_at"] is not None and a["last_item_at"] is not None
    assert (b["items_24h"], b["items_7d"], b["consecutive_failures"]) == (0, 0, 2)
    assert b["last_error"] == "HTTP 500" and b["last_item_at"] is None
    d1 = str((fetched[0] - timedelta(minutes=10)).date())
    d3 = str((fetched[2] - timedelta(minutes=10)).date())
    assert daily == sorted(
        [(d1, GPC, "EC", "es", 1), (d1, SEC, "EC", "es", 1), (d3, GPC, "EC", "es", 1)]
    )
    assert [(r["item_id"], r["status"], r["channel"]) for r in log] == [
        (1, "sent", CHANNEL),
        (3, "failed", CHANNEL),
    ]
    assert log[0]["title"] == "t0" and log[0]["url"] == "https://a.example/0"
    assert log[0]["slack_ts"] == "1.1" and log[0]["sent_at"] is not None
    assert log[1]["attempts"] == 3 and log[1]["last_error"] == "rate_limited"
    assert set(log[0]) >= {"alert_id", "item_id", "title", "url", "channel", "status",
                           "attempts", "slack_ts", "created_at", "sent_at", "last_error"}  # fmt: skip


def test_feedback_one_verdict_per_analyst_per_item(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        conn.execute(
            sa.insert(sources).values(id=1, name="a", kind="rss", url="https://a.example/f")
        )
        conn.execute(
            sa.insert(items).values(
                id=1, source_id=1, url="https://a.example/1", canonical_url="https://a.example/1",
                title="t", text="x", fetched_at=NOW, content_hash="0" * 64,
            )
        )  # fmt: skip
        conn.execute(
            sa.insert(feedback).values(item_id=1, user_id="alice", label_verdict="relevant")
        )
    with pytest.raises(sa.exc.IntegrityError), engine.begin() as conn:
        conn.execute(
            sa.insert(feedback).values(item_id=1, user_id="alice", label_verdict="not_relevant")
        )
    with pytest.raises(sa.exc.IntegrityError), engine.begin() as conn:
        conn.execute(sa.insert(feedback).values(item_id=1, user_id="bob", label_verdict="meh"))
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT label_verdict FROM feedback")).scalars().all() == [
            "relevant"
        ]


def test_downgrade_removes_what_0002_added_and_upgrade_again(db_url: str) -> None:
    eng = make_engine(db_url)
    upgrade(eng, "0002")
    assert {"daily_counts", "source_health", "alert_log"} <= set(sa.inspect(eng).get_view_names())
    cfg = alembic_config(db_url)
    with eng.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0001")
    insp = sa.inspect(eng)
    assert current_revision(eng) == "0001"
    assert set(insp.get_view_names()) == {"matches"}
    assert "feedback" not in insp.get_table_names()
    assert {ix["name"] for ix in insp.get_indexes("items")}.isdisjoint(
        {
            "ix_items_source_fetched",
            "ix_items_cluster_copies",
            "ix_items_search",
            "ix_items_title_trgm",
        }
    )
    if eng.dialect.name == "postgresql":
        with eng.connect() as conn:
            grants = conn.execute(
                sa.text(
                    "SELECT COUNT(*) FROM information_schema.role_table_grants "
                    "WHERE grantee = 'sentinela_analyst' AND table_catalog = current_database()"
                )
            ).scalar()
            funcs = conn.execute(
                sa.text("SELECT COUNT(*) FROM pg_proc WHERE proname LIKE 'item\\_%'")
            ).scalar()
        assert grants == 0 and funcs == 0
    upgrade(eng, "0002")
    assert current_revision(eng) == "0002"
    eng.dispose()


# --- the read-only analyst role ------------------------------------------------------------


def test_analyst_role_reads_everything_and_writes_nothing(
    archive_url: str, pg_server_url: str
) -> None:
    login = f"analyst_test_{uuid.uuid4().hex[:8]}"
    admin = make_engine(archive_url, isolation_level="AUTOCOMMIT")
    # A second archive on the same server: the role already exists when it migrates.
    other_url = _fresh_pg_db(pg_server_url)
    other = make_engine(other_url)
    upgrade(other)
    other.dispose()
    with admin.connect() as conn:
        conn.execute(sa.text(f"CREATE ROLE {login} LOGIN IN ROLE sentinela_analyst"))
    analyst = make_engine(archive_url.replace("postgres@", f"{login}@"))
    try:
        with analyst.connect() as conn:
            assert conn.execute(sa.text("SELECT current_user")).scalar() == login
            for rel in ("daily_counts", "source_health", "alert_log", "matches", "items",
                        "feedback", "item_signatures", "digests"):  # fmt: skip
                # item_signatures and digests come from later migrations: default privileges
                conn.execute(sa.text(f"SELECT * FROM {rel} LIMIT 1")).all()
        assert [r["story_id"] for r in archive.run_query(analyst, "top_stories_24h")] == [1, 4]
        denied = [
            "INSERT INTO feedback (item_id, user_id, label_verdict) VALUES (1, 'x', 'relevant')",
            "UPDATE items SET title = 'x' WHERE id = 1",
            "DELETE FROM alerts",
            "CREATE TABLE mine (id int)",
            "DROP VIEW daily_counts",
            "TRUNCATE sources",
        ]
        for stmt in denied:
            with pytest.raises(sa.exc.ProgrammingError) as err, analyst.begin() as conn:
                conn.execute(sa.text(stmt))
            assert type(err.value.orig).__name__ in {"InsufficientPrivilege"}, stmt
            assert "permission denied" in str(err.value.orig) or "must be owner" in str(
                err.value.orig
            ), stmt
        # The same login reads the second archive.
        other_analyst = make_engine(other_url.replace("postgres@", f"{login}@"))
        with other_analyst.connect() as conn:
            assert conn.execute(sa.text("SELECT COUNT(*) FROM source_health")).scalar() == 0
        other_analyst.dispose()
        with admin.connect() as conn:
            assert conn.execute(sa.text("SELECT title FROM items WHERE id = 1")).scalar() == (
                SEEDS[0].title
            )
    finally:
        analyst.dispose()
        _drop_pg_db(other_url)
        with admin.connect() as conn:
            conn.execute(sa.text(f"DROP ROLE IF EXISTS {login}"))
        admin.dispose()
