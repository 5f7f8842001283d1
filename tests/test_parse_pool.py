"""Feeds parsed by a pool of worker processes: same items, same order, same quarantine, and
an in-process fallback that loses nothing where a pool cannot run."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import sqlalchemy as sa

from pipeline.config import Settings
from pipeline.feedserver import serve_directory
from pipeline.ingest.parse_pool import MIN_FEEDS_FOR_POOL, ParseJob, ParseOutcome, parse_all
from pipeline.items import Source
from pipeline.run import RunSummary, ingest
from pipeline.storage.schema import items, quarantine

FIXTURES = Path(__file__).parent / "fixtures" / "feeds"
N_FEEDS = MIN_FEEDS_FOR_POOL + 6


def _feed(outlet: str, n: int) -> bytes:
    entries = "".join(
        f"<item><title>{outlet}: inmates moved from block {i}</title>"
        f"<link>https://{outlet}.example/story-{i}?utm_source=rss</link>"
        f"<description>The ministry moved {i} inmates of {outlet} overnight.</description></item>"
        for i in range(n)
    )
    return (
        f'<?xml version="1.0"?><rss version="2.0"><channel><title>{outlet}</title>'
        f"{entries}</channel></rss>"
    ).encode()


def _jobs() -> list[ParseJob]:
    jobs = [
        ParseJob(_feed(f"outlet{i}", 1 + i % 5), Source(name=f"outlet{i}", kind="rss", url="x"))
        for i in range(N_FEEDS)
    ]
    # Hostile payloads in the middle: refused with the same message as in-process.
    jobs[7] = ParseJob((FIXTURES / "billion_laughs.xml").read_bytes(), jobs[7].source)
    jobs[12] = ParseJob((FIXTURES / "not_a_feed.html").read_bytes(), jobs[12].source, "text/html")
    return jobs


def _summary(outcomes: list[ParseOutcome]) -> list[object]:
    return [
        o.error
        if o.parsed is None
        else [(i.canonical_url, i.title, i.lang) for i in o.parsed.items]
        for o in outcomes
    ]


def test_pool_gives_the_in_process_result_in_order() -> None:
    jobs = _jobs()
    pooled = list(parse_all(jobs, workers=2))
    serial = list(parse_all(jobs, workers=1))
    assert len(pooled) == N_FEEDS
    assert _summary(pooled) == _summary(serial)
    assert pooled[7].parsed is None and "entity declarations" in (pooled[7].error or "")
    assert pooled[12].parsed is None and pooled[12].error
    assert [len(o.parsed.items) for o in pooled if o.parsed] == [
        1 + i % 5 for i in range(N_FEEDS) if i not in (7, 12)
    ]
    assert pooled[3].parsed and pooled[3].parsed.items[0].canonical_url.endswith("story-0")


def _count_in_daemon(queue: multiprocessing.Queue[object]) -> None:
    outcomes = list(parse_all(_jobs(), workers=2))
    queue.put(_summary(outcomes))


def test_a_daemonic_process_falls_back_to_parsing_in_process() -> None:
    # Celery's prefork workers are daemonic and may not start children: the pool cannot
    # start there, and every feed must still be parsed.
    ctx = multiprocessing.get_context("spawn")
    queue: multiprocessing.Queue[object] = ctx.Queue()
    proc = ctx.Process(target=_count_in_daemon, args=(queue,), daemon=True)
    proc.start()
    got = queue.get(timeout=60)
    proc.join(timeout=30)
    assert proc.exitcode == 0
    assert got == _summary(list(parse_all(_jobs(), workers=1)))


def test_ingest_with_a_pool_stores_every_feed_and_quarantines_the_bad_one(
    engine: sa.Engine, settings: Settings, tmp_path: Path
) -> None:
    names = [f"outlet{i}" for i in range(N_FEEDS)]
    for name in names:
        (tmp_path / f"{name}.xml").write_bytes(_feed(name, 3))
    (tmp_path / "outlet5.xml").write_bytes((FIXTURES / "malformed.xml").read_bytes()[:40])
    with serve_directory(tmp_path) as base:
        srcs = [Source(name=n, kind="rss", url=f"{base}{n}.xml", allow_private=True) for n in names]
        summary = RunSummary()
        ingest(engine, settings.with_(parse_workers=2), srcs, summary)
    with engine.connect() as conn:
        stored = conn.execute(sa.select(sa.func.count()).select_from(items)).scalar_one()
        quarantined = conn.execute(sa.select(quarantine.c.source_name)).scalars().all()
    assert stored == 3 * (N_FEEDS - 1)
    assert quarantined == ["outlet5"]
    assert summary.reports["outlet5"].errors and summary.reports["outlet6"].new == 3
