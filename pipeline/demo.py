"""`sentinela demo`: the whole pipeline, offline, over bundled sample feeds."""

from __future__ import annotations

import os
from pathlib import Path

from pipeline.alerts.sinks import make_sink
from pipeline.classify.model import load_classifier
from pipeline.config import Settings
from pipeline.feedserver import serve_directory
from pipeline.items import Source
from pipeline.run import format_summary, run_once
from pipeline.storage.db import make_engine, upgrade

DEMO_DATA = Path(__file__).parent / "demo_data"
DEMO_FEEDS = {
    "insight_en.xml": ("Demo: crime research (EN)", "en", "LatAm"),
    "cronica_es.xml": ("Demo: Crónica del Sur (ES)", "es", "EC"),
    "folha_pt.atom": ("Demo: Folha Regional (PT)", "pt", "BR"),
    "mixed_wire.xml": ("Demo: mixed wire (RSS 1.0)", None, None),
}
DEMO_DB = "sqlite:///data/demo.db"


def demo_sources(base_url: str) -> list[Source]:
    return [
        Source(
            name=name,
            kind="rss",
            url=base_url + fname,
            lang=lang,
            country=country,
            tags=("demo",),
            allow_private=True,
        )
        for fname, (name, lang, country) in DEMO_FEEDS.items()
        if (DEMO_DATA / fname).is_file()
    ]


def run_demo(settings: Settings, port: int = 0) -> int:
    if (
        "SENTINELA_DATABASE_URL" not in os.environ
        and settings.database_url == Settings.database_url
    ):
        settings = settings.with_(database_url=DEMO_DB)
    classifier = load_classifier(settings.model_dir, settings.cache_dir)
    engine = make_engine(settings.database_url)
    upgrade(engine)
    sink = make_sink(settings)
    with serve_directory(DEMO_DATA, port) as base_url:
        srcs = demo_sources(base_url)
        print(f"Serving {len(srcs)} sample feeds at {base_url} · model {classifier.model_version}")
        print(f"Alerts go to: {sink.destination}\n")
        summary = run_once(engine, settings, srcs, classifier, sink)
    print(format_summary(summary))
    total = summary.totals
    if total.alerted == 0:
        print(
            "\nNo new alerts: every matching story in these feeds was alerted before "
            f"(archive: {engine.url.render_as_string(hide_password=True)})."
        )
    else:
        print(f"\n{total.alerted} alert(s) sent, produced by the transformer classifier.")
    return 0
