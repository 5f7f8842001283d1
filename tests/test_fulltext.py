"""Full-text extraction for teaser-only feeds, against a local server serving a real-looking
news page: navigation, share buttons, related links, comments and footer around the story."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import sqlalchemy as sa

from pipeline.config import Settings
from pipeline.ingest import fulltext
from pipeline.ingest.canonical import canonical_url
from pipeline.items import Item, Source
from pipeline.run import RunSummary, ingest
from pipeline.sources import SourcesError, load_sources
from pipeline.storage.schema import items

PARAGRAPHS = [
    "Guayaquil. Más de 2.000 militares y policías tomaron la madrugada de este martes el control de la "
    "Penitenciaría del Litoral, tras tres días de enfrentamientos entre Los Lobos y Los Choneros que dejaron "
    "al menos 31 reclusos muertos, según el Servicio Nacional de Atención Integral (SNAI).",
    "La operación comenzó a las 04:00 con el ingreso de vehículos blindados al pabellón 5. Los uniformados "
    "decomisaron 45 armas de fuego, 3.000 municiones, explosivos y 120 teléfonos celulares, detalló el "
    "comandante del operativo en una rueda de prensa.",
    "El presidente ordenó el traslado de 15 cabecillas a la cárcel de máxima seguridad La Roca y anunció que "
    "las Fuerzas Armadas permanecerán en el complejo por tiempo indefinido.",
    "Familiares de los presos se concentraron desde temprano en los exteriores del penal para exigir "
    "información sobre sus parientes, mientras Medicina Legal trabajaba en la identificación de los cuerpos.",
]
ARTICLE = f"""<!DOCTYPE html>
<html lang="es"><head><meta charset="utf-8">
<title>Militares toman el control de la Penitenciaría del Litoral | Diario del Puerto</title>
<meta property="og:title" content="Militares toman el control de la Penitenciaría del Litoral">
<script>window.dataLayer = window.dataLayer || []; dataLayer.push({{"section": "seguridad"}});</script>
<style>.nav {{ display: flex }}</style></head>
<body>
<header><nav class="nav"><a href="/">Portada</a> <a href="/seguridad">Seguridad</a>
<a href="/politica">Política</a> <a href="/deportes">Deportes</a> <a href="/suscribete">Suscríbete</a></nav></header>
<div class="ad-slot">Publicidad</div>
<main><article class="story">
<h1>Militares toman el control de la Penitenciaría del Litoral</h1>
<p class="byline">Por Redacción Seguridad · 24 de noviembre de 2026</p>
<div class="share"><a href="#">Compartir en Facebook</a> <a href="#">Compartir en X</a> <a href="#">WhatsApp</a></div>
<div class="story-body">
{"".join(f"<p>{p}</p>" for p in PARAGRAPHS)}
</div></article>
<aside class="related"><h3>Te puede interesar</h3><ul>
<li><a href="/a">Cinco claves del presupuesto 2027</a></li><li><a href="/b">Emelec empata en casa</a></li>
<li><a href="/c">El clima para el fin de semana</a></li></ul></aside>
<section id="comments"><h3>Comentarios</h3><div class="comment"><p>Que se pudran todos, saludos desde Quito.</p></div></section>
</main>
<footer><p>© 2026 Diario del Puerto. Todos los derechos reservados.</p><a href="/privacidad">Privacidad</a></footer>
</body></html>""".encode()

TEASER = "Más de 2.000 militares y policías tomaron el control de la Penitenciaría del Litoral…"
LONG = (
    "Este resumen del feed ya es largo y completo: describe con detalle el traslado de reos desde la "
    "cárcel de Turi hacia otros centros del país, las razones del SNAI y la reacción de los familiares, "
    "así que no hace falta descargar la página del artículo para tener el texto."
)


class _Site:
    def __init__(self) -> None:
        self.hits: dict[str, int] = {}


@contextmanager
def _site(state: _Site) -> Iterator[str]:
    port_holder: dict[str, int] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            state.hits[self.path] = state.hits.get(self.path, 0) + 1
            base = f"http://127.0.0.1:{port_holder['port']}"
            if self.path == "/feed.xml":
                body, ctype = _feed(base), "application/rss+xml"
            elif self.path == "/seguridad/litoral":
                body, ctype = ARTICLE, "text/html; charset=utf-8"
            elif self.path == "/seguridad/moved":
                self.send_response(301)
                self.send_header("Location", "/seguridad/litoral")
                self.end_headers()
                return
            elif self.path == "/seguridad/pdf":
                body, ctype = b"%PDF-1.4 not html", "application/pdf"
            else:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    port_holder["port"] = server.server_address[1]
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


def _feed(base: str) -> bytes:
    entries = [
        (
            "Militares toman el control de la Penitenciaría del Litoral",
            "/seguridad/litoral",
            TEASER,
        ),
        ("Trasladan reos desde Turi", "/seguridad/turi-largo", LONG),
        ("Enlace roto", "/seguridad/borrada", "Nota breve sobre la cárcel de Latacunga."),
        ("Documento", "/seguridad/pdf", "Informe del SNAI sobre hacinamiento."),
    ]
    xml = "".join(
        f"<item><title>{t}</title><link>{base}{p}</link><description>{d}</description></item>"
        for t, p, d in entries
    )
    return (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>Diario</title>'
        f"{xml}</channel></rss>"
    ).encode()


def test_extracts_the_story_and_drops_the_boilerplate() -> None:
    text = fulltext.extract_main_text(ARTICLE, "https://diario.example/seguridad/litoral")
    assert text is not None
    for p in PARAGRAPHS:
        assert p[:60] in text
    for junk in (
        "Suscríbete",
        "Te puede interesar",
        "Emelec",
        "Que se pudran",
        "derechos reservados",
        "dataLayer",
    ):
        assert junk not in text, junk


def _texts(engine: sa.Engine) -> dict[str, str]:
    with engine.connect() as conn:
        return {r[0]: r[1] for r in conn.execute(sa.select(items.c.title, items.c.text))}


def test_fulltext_source_stores_article_text_once(engine: sa.Engine, settings: Settings) -> None:
    state = _Site()
    with _site(state) as base:
        src = Source(
            name="diario",
            kind="rss",
            url=base + "feed.xml",
            lang="es",
            allow_private=True,
            options={"fulltext": "true"},
        )
        summary = RunSummary()
        ingest(engine, settings, [src], summary)
        assert summary.reports["diario"].new == 4
        texts = _texts(engine)
        story = texts["Militares toman el control de la Penitenciaría del Litoral"]
        assert len(story) > 600 and PARAGRAPHS[3][:50] in story and "Emelec" not in story
        assert texts["Trasladan reos desde Turi"] == LONG  # long enough: page never fetched
        assert "/seguridad/turi-largo" not in state.hits
        assert (
            texts["Enlace roto"] == "Nota breve sobre la cárcel de Latacunga."
        )  # 404 keeps teaser
        assert texts["Documento"] == "Informe del SNAI sobre hacinamiento."  # not HTML
        assert state.hits["/seguridad/litoral"] == 1

        ingest(engine, settings, [src], RunSummary())  # known items: no page is fetched again
        assert state.hits["/seguridad/litoral"] == 1 and state.hits["/seguridad/borrada"] == 1
        assert state.hits["/feed.xml"] == 2


def test_sources_without_the_option_never_fetch_pages(
    engine: sa.Engine, settings: Settings
) -> None:
    state = _Site()
    with _site(state) as base:
        src = Source(name="diario", kind="rss", url=base + "feed.xml", allow_private=True)
        ingest(engine, settings, [src], RunSummary())
    assert set(state.hits) == {"/feed.xml"}
    assert _texts(engine)["Militares toman el control de la Penitenciaría del Litoral"] == TEASER


def _item(url: str) -> Item:
    return Item(source="s", url=url, canonical_url=canonical_url(url), title="t", text=TEASER)


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_page_fetches_keep_the_ssrf_guard_and_follow_redirects(
    engine: sa.Engine, settings: Settings
) -> None:
    state = _Site()
    with _site(state) as base:
        guarded = Source(
            name="s", kind="rss", url="https://public.example/feed", options={"fulltext": "true"}
        )
        strict = settings.with_(allow_private_hosts=False)
        out = fulltext.enrich(engine, strict, guarded, [_item(base + "seguridad/litoral")])
        assert out[0].text == TEASER and not state.hits  # loopback page refused, teaser kept
        opened = Source(
            name="s", kind="rss", url=base, allow_private=True, options={"fulltext": "true"}
        )
        out = fulltext.enrich(engine, strict, opened, [_item(base + "seguridad/moved")])
        assert PARAGRAPHS[1][:40] in out[0].text and state.hits["/seguridad/moved"] == 1


def test_fulltext_flag_in_sources_yaml(tmp_path: Path) -> None:
    f = tmp_path / "s.yaml"
    f.write_text(
        "sources:\n  - {name: a, kind: rss, url: 'https://a.example/rss', fulltext: true}\n"
        "  - {name: b, kind: rss, url: 'https://b.example/rss'}\n",
        encoding="utf-8",
    )
    a, b = load_sources(f)
    assert fulltext.wants_fulltext(a) and not fulltext.wants_fulltext(b)
    f.write_text(
        "sources:\n  - {name: a, kind: rss, url: 'https://a.example/rss', fulltext: yes please}\n"
    )
    with pytest.raises(SourcesError, match="fulltext must be true or false"):
        load_sources(f)
