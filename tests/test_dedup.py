"""Near-duplicate clustering: the same wire story from many outlets is one cluster, on SQLite
and PostgreSQL, within a batch, across runs and against items archived before clustering."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path
from xml.sax.saxutils import escape

import numpy as np
import pytest
import sqlalchemy as sa
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.config import Settings
from pipeline.feedserver import serve_directory
from pipeline.ingest import dedup
from pipeline.ingest.canonical import canonical_url
from pipeline.items import Item, Source
from pipeline.run import RunSummary, ingest
from pipeline.storage import repo
from pipeline.storage.db import make_engine, upgrade
from pipeline.storage.schema import items

WIRE_BODY = (
    "Más de 2.000 militares y policías tomaron este martes el control de la Penitenciaría del Litoral, "
    "en Guayaquil, tras tres días de enfrentamientos entre bandas que dejaron al menos 31 reclusos muertos, "
    "informó el Servicio Nacional de Atención Integral a Personas Privadas de Libertad (SNAI). "
    "La operación comenzó a las cuatro de la madrugada con el ingreso de vehículos blindados al pabellón 5, "
    "controlado por Los Lobos, y se extendió a los pabellones 8 y 9, donde se refugiaban miembros de Los Choneros. "
    "Según el parte oficial, los uniformados decomisaron 45 armas de fuego, 3.000 municiones, explosivos y 120 teléfonos celulares. "
    "El presidente ordenó el traslado de 15 cabecillas a la cárcel de máxima seguridad La Roca y anunció que "
    "las Fuerzas Armadas permanecerán en el complejo penitenciario por tiempo indefinido. "
    "Familiares de los presos se concentraron desde temprano en los exteriores del penal para exigir información "
    "sobre sus parientes, mientras Medicina Legal trabajaba en la identificación de los cuerpos."
)


def _rewrite(lede: str, drop_last: bool = False) -> str:
    """An outlet's copy of the wire story: its own lede, optionally trimmed at the end."""
    sentences = WIRE_BODY.split(". ")
    rest = sentences[1:-1] if drop_last else sentences[1:]
    return lede + " " + ". ".join(rest)


# The same wire story as six outlets publish it: own headline, own lede, small edits.
SYNDICATED = [
    ("Militares toman el control de la Penitenciaría del Litoral tras masacre", WIRE_BODY),
    (
        "Fuerzas Armadas intervienen la Penitenciaría del Litoral: 31 reos muertos",
        _rewrite(
            "Las Fuerzas Armadas y la Policía ingresaron la madrugada del martes a la Penitenciaría "
            "del Litoral de Guayaquil, donde una guerra entre bandas dejó al menos 31 presos asesinados desde el sábado."
        ),
    ),
    (
        "Ecuador: 2.000 uniformados retoman la Penitenciaría del Litoral",
        _rewrite(
            "Unos 2.000 militares y policías retomaron el martes la Penitenciaría del Litoral, "
            "escenario de una nueva masacre carcelaria en Ecuador.",
            drop_last=True,
        ),
    ),
    (
        "Operativo en la Penitenciaría del Litoral deja 45 armas decomisadas",
        _rewrite(
            "Un operativo militar y policial en la Penitenciaría del Litoral concluyó con el decomiso "
            "de 45 armas y el traslado de 15 cabecillas de Los Lobos y Los Choneros."
        ).replace("Según el parte oficial, los", "Los"),
    ),
    (
        "Guayaquil: intervención militar en la cárcel tras enfrentamientos",
        _rewrite(
            "La cárcel más grande de Ecuador amaneció este martes bajo control militar (EFE)."
        ).replace("tres días", "72 horas"),
    ),
    (
        "Penitenciaría del Litoral, bajo control militar",
        _rewrite(
            "Tras tres días de violencia, el Gobierno envió más de 2.000 efectivos a la Penitenciaría "
            "del Litoral, en Guayaquil.",
            drop_last=True,
        ).replace("120 teléfonos celulares", "120 celulares"),
    ),
]

# Different stories about the same prison on the same day: they share names, places and
# phrases with the wire story and with each other, and must NOT merge.
SAME_PRISON_OTHER_STORIES = [
    (
        "Familiares de presos de la Penitenciaría del Litoral exigen información",
        "Decenas de madres y esposas de reclusos de la Penitenciaría del Litoral pasaron la noche en los exteriores del penal de Guayaquil. "
        "Denuncian que el SNAI no entrega listas de fallecidos y que no han podido comunicarse con sus parientes desde el sábado. "
        "Una mujer contó que su hijo, recluido en el pabellón 8, le pidió por teléfono que pagara una extorsión para no ser asesinado. "
        "La Defensoría del Pueblo instaló un punto de atención junto a la puerta principal.",
    ),
    (
        "Medicina Legal identifica a 12 de los reos asesinados en la Penitenciaría del Litoral",
        "El Servicio Nacional de Medicina Legal de Guayaquil informó que ya identificó a 12 de los 31 reclusos asesinados en la Penitenciaría del Litoral. "
        "Los cuerpos presentan heridas de bala y de arma blanca, según el informe preliminar. "
        "Las autoridades pidieron a los familiares acudir con documentos de identidad para agilizar la entrega de los restos. "
        "La Fiscalía abrió una investigación por asesinato.",
    ),
    (
        "Trasladan a alias 'Fito' desde la Penitenciaría del Litoral a La Roca",
        "El cabecilla de Los Choneros fue trasladado la tarde del martes desde la Penitenciaría del Litoral hasta la cárcel de máxima seguridad La Roca, "
        "en un operativo con helicópteros y vehículos blindados. El ministro del Interior dijo que el traslado busca cortar las órdenes que salen del penal hacia las calles. "
        "Es la tercera vez que el líder criminal es movido de prisión en dos años.",
    ),
    (
        "Asambleístas piden juicio político al director del SNAI por crisis en el Litoral",
        "Un grupo de legisladores presentó una solicitud de juicio político contra el director del SNAI por la masacre en la Penitenciaría del Litoral. "
        "Argumentan que las alertas de inteligencia sobre un enfrentamiento entre Los Lobos y Los Choneros fueron ignoradas durante semanas. "
        "El director respondió que la institución carece de presupuesto para contratar guías penitenciarios.",
    ),
]

OUTLETS = ["primicias", "eluniverso", "expreso", "elcomercio", "extra", "gk"]


def _item(outlet: str, n: int, title: str, text: str) -> Item:
    url = f"https://www.{outlet}.ec/seguridad/{n}-penitenciaria-litoral?utm_source=rss"
    return Item(
        source=outlet,
        url=url,
        canonical_url=canonical_url(url),
        title=title,
        text=text,
        lang="es",
        published_at=datetime(2026, 11, 24, 9, n, tzinfo=UTC),
    )


def _clusters(engine: sa.Engine) -> dict[str, int]:
    with engine.connect() as conn:
        rows = conn.execute(sa.select(items.c.title, items.c.cluster_id, items.c.id)).all()
    assert all(r[1] is not None for r in rows), "every stored item has a cluster"
    return {r[0]: int(r[1]) for r in rows}


def _first_id(engine: sa.Engine, title: str) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.select(items.c.id).where(items.c.title == title)).scalar_one())


# --- unit ---------------------------------------------------------------------------------


def test_rewrites_score_above_threshold_and_other_stories_far_below() -> None:
    syn = [dedup.signature(t, x) for t, x in SYNDICATED]
    other = [dedup.signature(t, x) for t, x in SAME_PRISON_OTHER_STORIES]
    assert all(s is not None for s in syn + other)
    for a, b in itertools.combinations(syn, 2):
        assert dedup.similarity(a, b) >= dedup.THRESHOLD + 0.05  # type: ignore[arg-type]
    for a, b in itertools.product(other, syn + other):
        if a is not b:
            assert dedup.similarity(a, b) < dedup.THRESHOLD / 2  # type: ignore[arg-type]


def test_normalisation_ignores_case_accents_punctuation_and_spacing() -> None:
    a = dedup.signature("Cárcel de Tocorón", "Militares TOMAN el penal, según fuentes.")
    b = dedup.signature("carcel de  tocoron", "militares toman el penal según fuentes")
    assert a is not None and b is not None
    assert dedup.similarity(a, b) == 1.0
    assert dedup.signature("", "  ¡¿!  ") is None


def test_signature_bytes_round_trip_and_bucket_keys_fit_bigint() -> None:
    sig = dedup.signature(*SYNDICATED[0])
    assert sig is not None and sig.shape == (dedup.NUM_PERM,)
    assert np.array_equal(dedup.from_bytes(dedup.to_bytes(sig)), sig)
    keys = dedup.bucket_keys(sig)
    assert len(keys) == dedup.BANDS and len(set(keys)) == dedup.BANDS
    assert all(0 <= k < 2**63 for k in keys)


words = st.lists(
    st.text(alphabet="abcdefghijklmnopqrstuvwxyzáéíóúñç", min_size=1, max_size=9),
    min_size=20,
    max_size=120,
)


@settings(max_examples=60, deadline=None)
@given(words)
def test_signature_is_deterministic_and_self_similar(ws: list[str]) -> None:
    text = " ".join(ws)
    a, b = dedup.signature("t", text), dedup.signature("t", text)
    assert a is not None and b is not None
    assert np.array_equal(a, b) and dedup.similarity(a, b) == 1.0
    assert dedup.bucket_keys(a) == dedup.bucket_keys(b)


@settings(max_examples=60, deadline=None)
@given(words, words)
def test_estimate_tracks_exact_jaccard(x: list[str], y: list[str]) -> None:
    # Two texts sharing a prefix: the MinHash estimate stays within sampling error of the
    # exact shingle Jaccard (std <= 0.045 at 126 permutations; 0.2 is > 4 sigma).
    t1, t2 = " ".join(x), " ".join(x[: len(x) // 2] + y)
    s1, s2 = dedup.shingles("", t1), dedup.shingles("", t2)
    exact = len(s1 & s2) / len(s1 | s2)
    a, b = dedup.signature("", t1), dedup.signature("", t2)
    assert a is not None and b is not None
    assert abs(dedup.similarity(a, b) - exact) < 0.2
    assert dedup.similarity(a, b) == dedup.similarity(b, a)


@settings(max_examples=40, deadline=None)
@given(
    st.integers(min_value=0, max_value=len(WIRE_BODY.split()) - 1),
    st.sampled_from(["EFE", "AP", "(AFP)"]),
)
def test_one_word_edit_stays_a_candidate(pos: int, word: str) -> None:
    ws = WIRE_BODY.split()
    ws[pos] = word
    a, b = dedup.signature("t", WIRE_BODY), dedup.signature("t", " ".join(ws))
    assert a is not None and b is not None
    assert dedup.similarity(a, b) > 0.8
    assert set(dedup.bucket_keys(a)) & set(dedup.bucket_keys(b))


# --- the archive, both dialects -------------------------------------------------------------


def _sources(*names: str) -> list[Source]:
    return [Source(name=n, kind="rss", url=f"https://www.{n}.ec/rss") for n in names]


def test_wire_story_from_six_outlets_is_one_cluster(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        ids = repo.sync_sources(conn, _sources(*OUTLETS))
        for n, (outlet, (title, text)) in enumerate(zip(OUTLETS, SYNDICATED, strict=True)):
            batch = [_item(outlet, n, title, text)]
            if n < len(SAME_PRISON_OTHER_STORIES):
                batch.append(_item(outlet, 30 + n, *SAME_PRISON_OTHER_STORIES[n]))
            assert len(repo.insert_items(conn, ids[outlet], batch)) == len(batch)
    clusters = _clusters(engine)
    first = _first_id(engine, SYNDICATED[0][0])
    assert {clusters[t] for t, _ in SYNDICATED} == {first}
    for title, _ in SAME_PRISON_OTHER_STORIES:
        assert clusters[title] == _first_id(engine, title), title


def test_copies_in_one_batch_cluster_on_the_earliest(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        ids = repo.sync_sources(conn, _sources("wire"))
        batch = [_item("wire", n, t, x) for n, (t, x) in enumerate(SYNDICATED[:3])]
        inserted = repo.insert_items(conn, ids["wire"], batch)
    first = min(i for i, _ in inserted)
    assert set(_clusters(engine).values()) == {first}


def _feed(items_: list[tuple[str, str, str]]) -> str:
    when = format_datetime(datetime(2026, 11, 24, 9, 0, tzinfo=UTC))
    entries = "".join(
        f"<item><title>{escape(t)}</title><link>{escape(u)}</link>"
        f"<description>{escape(x)}</description><pubDate>{when}</pubDate></item>"
        for u, t, x in items_
    )
    return f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>t</title>{entries}</channel></rss>'


def test_copy_fetched_in_a_later_run_joins_the_archived_cluster(
    db_url: str, settings: Settings, tmp_path: Path
) -> None:
    feeds = tmp_path / "feeds"
    feeds.mkdir()
    (feeds / "a.xml").write_text(
        _feed(
            [
                ("https://a.example/litoral", *SYNDICATED[0]),
                ("https://a.example/familias", *SAME_PRISON_OTHER_STORIES[0]),
            ]
        ),
        encoding="utf-8",
    )
    with serve_directory(feeds) as base:
        srcs = [Source(name="a", kind="rss", url=base + "a.xml", lang="es", allow_private=True)]
        eng = make_engine(db_url)
        upgrade(eng)
        ingest(eng, settings, srcs, RunSummary())
        eng.dispose()
        # A later run, a new process's engine, another outlet publishes its rewrite.
        (feeds / "b.xml").write_text(
            _feed(
                [
                    ("https://b.example/intervencion", *SYNDICATED[4]),
                    ("https://b.example/fito", *SAME_PRISON_OTHER_STORIES[2]),
                ]
            ),
            encoding="utf-8",
        )
        srcs.append(Source(name="b", kind="rss", url=base + "b.xml", lang="es", allow_private=True))
        eng = make_engine(db_url)
        summary = RunSummary()
        ingest(eng, settings, srcs, summary)
    assert summary.reports["b"].new == 2
    clusters = _clusters(eng)
    first = _first_id(eng, SYNDICATED[0][0])
    assert clusters[SYNDICATED[4][0]] == first
    assert clusters[SAME_PRISON_OTHER_STORIES[2][0]] == _first_id(
        eng, SAME_PRISON_OTHER_STORIES[2][0]
    )
    assert clusters[SAME_PRISON_OTHER_STORIES[0][0]] != first
    eng.dispose()


def test_items_archived_before_clustering_are_backfilled_and_matched(db_url: str) -> None:
    eng = make_engine(db_url)
    upgrade(eng, "0002")
    old_ids = []
    with eng.begin() as conn:
        src_id = conn.execute(
            sa.text(
                "INSERT INTO sources (name, kind, url) VALUES ('old', 'rss', 'https://o.example') RETURNING id"
            )
        ).scalar_one()
        for n, (title, text) in enumerate([SYNDICATED[1], SAME_PRISON_OTHER_STORIES[1]]):
            old_ids.append(
                conn.execute(
                    sa.text(
                        "INSERT INTO items (source_id, url, canonical_url, title, text, fetched_at, content_hash) "
                        "VALUES (:s, :u, :u, :t, :x, :f, :h) RETURNING id"
                    ),
                    {
                        "s": src_id,
                        "u": f"https://o.example/{n}",
                        "t": title,
                        "x": text,
                        "f": datetime.now(UTC),
                        "h": str(n),
                    },
                ).scalar_one()
            )
    upgrade(eng)  # 0003 signs and clusters the archive
    assert _clusters(eng) == {
        SYNDICATED[1][0]: old_ids[0],
        SAME_PRISON_OTHER_STORIES[1][0]: old_ids[1],
    }
    with eng.begin() as conn:
        ids = repo.sync_sources(conn, _sources("gk"))
        repo.insert_items(conn, ids["gk"], [_item("gk", 5, *SYNDICATED[5])])
    assert _clusters(eng)[SYNDICATED[5][0]] == old_ids[0]
    eng.dispose()


@pytest.mark.parametrize("n_other", [0, 3])
def test_unrelated_batch_gets_singleton_clusters(engine: sa.Engine, n_other: int) -> None:
    with engine.begin() as conn:
        ids = repo.sync_sources(conn, _sources("x"))
        batch = [_item("x", n, *SAME_PRISON_OTHER_STORIES[n]) for n in range(n_other + 1)]
        inserted = repo.insert_items(conn, ids["x"], batch)
    clusters = _clusters(engine)
    assert sorted(clusters.values()) == sorted(i for i, _ in inserted)
