"""Parse many fetched feeds on every core.

feedparser is pure Python and holds the GIL: on a large first pass it was about 60 % of
ingest time (bench/ingest.py, cProfile), all on one core while the other one idled. A pool of
worker processes parses the feeds while the main process stores the ones already parsed.

The pool is an optimisation, never a requirement: a small run, `SENTINELA_PARSE_WORKERS=1`,
a process that may not have children (a daemonic Celery worker) or a pool whose worker dies
all fall back to parsing in this process, so no feed is lost either way.
"""

from __future__ import annotations

import logging
import multiprocessing
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass

from pipeline.errors import FeedParseError
from pipeline.ingest.parse import ParsedFeed, parse_feed
from pipeline.items import Source

log = logging.getLogger(__name__)
# Below this many feeds, starting worker processes (each imports feedparser and the language
# model) costs more than it saves.
MIN_FEEDS_FOR_POOL = 24


@dataclass(frozen=True)
class ParseJob:
    body: bytes
    source: Source
    content_type: str | None = None


@dataclass(frozen=True)
class ParseOutcome:
    parsed: ParsedFeed | None = None
    error: str | None = None  # FeedParseError's message: the payload is quarantined


def parse_one(job: ParseJob) -> ParseOutcome:
    try:
        return ParseOutcome(parsed=parse_feed(job.body, job.source, job.content_type))
    except FeedParseError as exc:
        return ParseOutcome(error=str(exc))


def parse_all(jobs: Sequence[ParseJob], workers: int) -> Iterator[ParseOutcome]:
    """Outcomes in the order of `jobs`, lazily: the caller stores early feeds while the pool
    parses later ones."""
    if workers <= 1 or len(jobs) < MIN_FEEDS_FOR_POOL:
        yield from map(parse_one, jobs)
        return
    done = 0
    try:
        # spawn, not fork: the parent holds database connections and threads that a forked
        # child must not inherit.
        ctx = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
            chunk = max(1, min(16, len(jobs) // (workers * 4)))
            for outcome in pool.map(parse_one, jobs, chunksize=chunk):
                yield outcome
                done += 1
    except (AssertionError, OSError, BrokenProcessPool) as exc:
        # AssertionError: "daemonic processes are not allowed to have children".
        log.warning(
            "parsing %d of %d feeds in-process (worker pool unavailable: %s)",
            len(jobs) - done,
            len(jobs),
            exc,
        )
        yield from map(parse_one, jobs[done:])
