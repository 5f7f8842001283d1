"""Bulk loading of items: an archive backfilled from an export, hundreds of thousands of rows
at a time, without the per-row costs of ingest (near-duplicate clustering, one round trip
per batch).

On PostgreSQL each chunk is COPYed into a temporary staging table and moved into `items`
with one `INSERT … SELECT … ON CONFLICT (canonical_url) DO NOTHING`, on `loaders`
connections in parallel; bench/archive.py measures this path on a 1M-item archive. On
SQLite (one writer, no COPY) it falls back to chunked `INSERT … ON CONFLICT DO NOTHING`
executemany.

Each chunk is its own transaction: a chunk the database refuses fails alone, chunks
committed before it stay committed, and the error names it. Every insert skips what is
already stored, so running the same load again after a failure stores only what is
missing.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from itertools import islice
from typing import Any, NamedTuple

import psycopg
import sqlalchemy as sa
from sqlalchemy.dialects import sqlite

from pipeline.errors import SentinelaError
from pipeline.storage.schema import items

log = logging.getLogger(__name__)

# A 2 MB-ish chunk of typical news rows (a few hundred bytes each) per transaction; larger
# chunks gained nothing in bench/archive.py and make a failed chunk costlier to redo.
DEFAULT_CHUNK = 50_000
# Bulk sessions' GIN pending-list limit (the server default is 4 MB).
BULK_GIN_PENDING = "64MB"


class ItemRow(NamedTuple):
    """One `items` row, in `ITEM_COLUMNS` order (a plain tuple in that order works too).
    `cluster_id` None makes the item a cluster of its own."""

    source_id: int
    url: str
    canonical_url: str
    guid: str | None
    title: str
    text: str
    lang: str | None
    published_at: datetime | None
    fetched_at: datetime
    content_hash: str
    cluster_id: int | None


ITEM_COLUMNS: tuple[str, ...] = ItemRow._fields


@dataclass(frozen=True)
class BulkReport:
    """`inserted`: rows the INSERTs stored (their rowcount); `skipped`: rows already in the
    archive (by canonical URL or, with `skip_known_content`, by content hash);
    `seconds`: wall time, the final GIN merge included."""

    inserted: int
    skipped: int
    seconds: float

    @property
    def rows(self) -> int:
        return self.inserted + self.skipped


class BulkLoadError(SentinelaError):
    """A chunk the database refused. Chunks before it are committed; chunks after it were
    not loaded, except those other loaders took before it failed, which may have committed
    (`report` counts every committed row). A re-run stores only what is missing."""

    def __init__(
        self, chunk: int, first_url: str, last_url: str, rows: int, cause: BaseException,
        report: BulkReport,
    ) -> None:  # fmt: skip
        self.chunk = chunk
        self.first_url = first_url
        self.last_url = last_url
        self.report = report
        reason = str(cause).strip().splitlines()[0] if str(cause).strip() else type(cause).__name__
        super().__init__(
            f"bulk load failed in chunk {chunk} ({rows} rows, {first_url} … {last_url}): "
            f"{reason}; {report.inserted} rows were committed before the load stopped "
            "(re-running the load skips them)"
        )


def bulk_upsert_items(
    database_url: str,
    rows: Iterable[Sequence[Any]],
    *,
    chunk: int = DEFAULT_CHUNK,
    loaders: int = 2,
    async_commit: bool = True,
    skip_known_content: bool = True,
    columns: Sequence[str] = ITEM_COLUMNS,
) -> BulkReport:
    """Insert `rows` (`ItemRow`s, or tuples in `columns` order) into `items`, skipping those
    whose canonical URL is already stored, `chunk` rows per transaction; return what was
    inserted and skipped. Raises BulkLoadError naming the first chunk that failed.

    PostgreSQL: COPY into a temporary staging table and `INSERT … SELECT … ON CONFLICT
    (canonical_url) DO NOTHING`, on `loaders` connections in parallel. `async_commit` sets
    `synchronous_commit = off` and a larger GIN pending list in these bulk sessions only
    (see `_pg_session`), and merges the pending lists at the end.

    SQLite: `loaders` and `async_commit` are ignored (one writer at a time); each chunk is
    one executemany of `INSERT … ON CONFLICT (canonical_url) DO NOTHING`.

    `skip_known_content` also skips a row whose content hash is already stored, as ingest
    does (the same story under another URL). It checks the archive, not the rows of chunks
    loading at the same time: dedupe content within the input first (pipeline/importer.py
    does). `columns` lets a caller load other columns, explicit ids for instance (the
    benchmark); it must include canonical_url (and content_hash with `skip_known_content`).
    """
    if chunk < 1 or loaders < 1:
        raise ValueError("chunk and loaders must be at least 1")
    cols = list(columns)
    unknown = [c for c in cols if c not in items.c]
    if unknown or "canonical_url" not in cols:
        raise ValueError(f"bad columns for items: {cols}")
    if skip_known_content and "content_hash" not in cols:
        raise ValueError("skip_known_content needs the content_hash column")
    url = sa.engine.make_url(database_url)
    backend = url.get_backend_name()
    if backend == "postgresql":
        conninfo = url.set(drivername="postgresql").render_as_string(hide_password=False)
        return _pg_load(conninfo, rows, cols, chunk, loaders, async_commit, skip_known_content)
    if backend == "sqlite":
        return _sqlite_load(database_url, rows, cols, chunk, skip_known_content)
    raise NotImplementedError(f"bulk loading is not supported on {backend}")


def _chunks(rows: Iterable[Sequence[Any]], size: int) -> Iterator[list[Sequence[Any]]]:
    it = iter(rows)
    while part := list(islice(it, size)):
        yield part


@dataclass
class _Progress:
    """Shared by the loader threads: counts, and the first failure."""

    inserted: int = 0
    rows: int = 0
    failure: tuple[int, list[Sequence[Any]], BaseException] | None = None
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def done(self, n_rows: int, n_inserted: int) -> None:
        with self.lock:
            self.rows += n_rows
            self.inserted += n_inserted

    def fail(self, number: int, part: list[Sequence[Any]], exc: BaseException) -> None:
        with self.lock:
            # Loaders run chunks out of order: report the earliest chunk that failed.
            if self.failure is None or number < self.failure[0]:
                self.failure = (number, part, exc)

    def report(self, t0: float) -> BulkReport:
        return BulkReport(self.inserted, self.rows - self.inserted, time.perf_counter() - t0)


def _raise_failure(progress: _Progress, cols: list[str], t0: float) -> None:
    if progress.failure is None:
        return
    number, part, exc = progress.failure
    at = cols.index("canonical_url")
    raise BulkLoadError(
        number, str(part[0][at]), str(part[-1][at]), len(part), exc, progress.report(t0)
    ) from exc


# --- PostgreSQL ---------------------------------------------------------------------------


def _pg_session(conninfo: str, cols: list[str], async_commit: bool) -> psycopg.Connection:
    conn = psycopg.connect(conninfo)
    try:
        if async_commit:
            # Bulk session only: a crash loses at most the last few hundred ms of commits,
            # never consistency (unlike fsync=off), and a re-run re-upserts them. Everything
            # else keeps the server's durable default.
            conn.execute("SET synchronous_commit = off")
            # GIN (full-text, trigram) entries wait in each index's pending list and are
            # merged in bulk when it fills: cheaper per row the larger the list. Raised for
            # the bulk session only: every search scans the unmerged list, so the server
            # default (4 MB) stays what analysts' queries see; the load flushes it when it
            # ends.
            conn.execute(f"SET gin_pending_list_limit = '{BULK_GIN_PENDING}'")
        # Only the loaded columns, and no constraints or defaults: a bad row fails in the
        # INSERT into items (with the table's own message), and no sequence value is drawn
        # for a staged row.
        conn.execute(
            f"CREATE TEMP TABLE items_stage ON COMMIT DELETE ROWS AS "
            f"SELECT {', '.join(cols)} FROM items WITH NO DATA"
        )
        conn.commit()
    except BaseException:
        conn.close()
        raise
    return conn


def _pg_insert_sql(cols: list[str], skip_known_content: bool) -> str:
    names = ", ".join(cols)
    where = (
        " WHERE NOT EXISTS (SELECT 1 FROM items i WHERE i.content_hash = s.content_hash)"
        if skip_known_content
        else ""
    )
    return (
        f"INSERT INTO items ({names}) SELECT {', '.join(f's.{c}' for c in cols)} "
        f"FROM items_stage s{where} ON CONFLICT (canonical_url) DO NOTHING"
    )


def _pg_copy_chunk(conn: psycopg.Connection, cols: list[str], sql: str, part: list[Any]) -> int:
    try:
        with conn.cursor() as cur:
            with cur.copy(f"COPY items_stage ({', '.join(cols)}) FROM STDIN") as copy:
                for row in part:
                    copy.write_row(row)
            cur.execute(sql)
            inserted = cur.rowcount
        conn.commit()
    except BaseException:
        conn.rollback()
        raise
    return inserted


def _pg_load(
    conninfo: str,
    rows: Iterable[Sequence[Any]],
    cols: list[str],
    chunk: int,
    loaders: int,
    async_commit: bool,
    skip_known_content: bool,
) -> BulkReport:
    """Chunks go to `loaders` connections in parallel (each a server process: the to_tsvector
    and trigram work of the GIN indexes runs on every core). Chunks with disjoint keys
    never wait on each other's rows."""
    sql = _pg_insert_sql(cols, skip_known_content)
    conns: list[psycopg.Connection] = []
    try:
        for _ in range(loaders):
            conns.append(_pg_session(conninfo, cols, async_commit))
    except BaseException:
        for c in conns:
            c.close()
        raise
    progress = _Progress()
    stop = threading.Event()
    # Bounded: the reader stays at most one chunk per loader ahead, so memory is bounded
    # by the chunk size, not the input.
    todo: queue.Queue[tuple[int, list[Sequence[Any]]] | None] = queue.Queue(maxsize=loaders)

    def work(conn: psycopg.Connection) -> None:
        while (job := todo.get()) is not None:
            number, part = job
            if stop.is_set():
                continue  # drain: after a failure nothing more is loaded
            try:
                progress.done(len(part), _pg_copy_chunk(conn, cols, sql, part))
            except BaseException as exc:
                progress.fail(number, part, exc)
                stop.set()

    t0 = time.perf_counter()
    threads = [threading.Thread(target=work, args=(c,), daemon=True) for c in conns]
    for t in threads:
        t.start()
    try:
        for number, part in enumerate(_chunks(rows, chunk), start=1):
            if stop.is_set():
                break
            todo.put((number, part))
    except BaseException:
        stop.set()  # the input failed (or ^C): load nothing more, keep what is committed
        raise
    finally:
        for _ in threads:
            todo.put(None)
        for t in threads:
            t.join()
        for c in conns:
            c.close()
        if async_commit and progress.rows:
            _flush_gin_pending(conninfo)
    _raise_failure(progress, cols, t0)
    return progress.report(t0)


def _flush_gin_pending(conninfo: str) -> None:
    """Merge what the bulk sessions left in the GIN pending lists (part of the load's cost),
    so analysts' searches do not scan it."""
    try:
        with psycopg.connect(conninfo, autocommit=True) as conn:
            conn.execute(
                "SELECT gin_clean_pending_list(ix.indexrelid) FROM pg_index ix "
                "JOIN pg_class c ON c.oid = ix.indexrelid JOIN pg_am am ON am.oid = c.relam "
                "WHERE ix.indrelid = 'items'::regclass AND am.amname = 'gin'"
            )
    except psycopg.errors.InsufficientPrivilege as exc:
        # Only the indexes' owner may merge them; autovacuum does it on its next pass.
        log.warning("GIN pending lists left to autovacuum: %s", exc)


# --- SQLite -------------------------------------------------------------------------------


def _sqlite_load(
    database_url: str,
    rows: Iterable[Sequence[Any]],
    cols: list[str],
    chunk: int,
    skip_known_content: bool,
) -> BulkReport:
    from pipeline.storage.db import make_engine

    stmt = (
        sqlite.insert(items)
        .on_conflict_do_nothing(index_elements=[items.c.canonical_url])
        .returning(items.c.id)
    )
    progress = _Progress()
    engine = make_engine(database_url)
    t0 = time.perf_counter()
    try:
        for number, part in enumerate(_chunks(rows, chunk), start=1):
            try:
                with engine.begin() as conn:
                    todo = _sqlite_unknown_content(conn, cols, part) if skip_known_content else part
                    params = [dict(zip(cols, r, strict=True)) for r in todo]
                    inserted = len(conn.execute(stmt, params).all()) if params else 0
            except sa.exc.DBAPIError as exc:
                progress.fail(number, part, exc.orig or exc)
                break
            progress.done(len(part), inserted)
    finally:
        engine.dispose()
    _raise_failure(progress, cols, t0)
    return progress.report(t0)


def _sqlite_unknown_content(
    conn: sa.Connection, cols: list[str], part: list[Sequence[Any]]
) -> list[Sequence[Any]]:
    at = cols.index("content_hash")
    hashes = list({r[at] for r in part})
    known: set[str] = set()
    step = 30_000  # SQLite caps bound parameters per statement (32,766 since 3.32)
    for i in range(0, len(hashes), step):
        q = sa.select(items.c.content_hash).where(items.c.content_hash.in_(hashes[i : i + step]))
        known.update(conn.execute(q).scalars())
    return [r for r in part if r[at] not in known]
