"""One deliverer per channel at a time.

Two deliverers can run at once against one archive: an Airflow task and its retry, or
`sentinela run --once` during a DAG run. Each reads the channel's pending alerts and would
post them all. The per-alert claim (repo.mark_alert_sending only moves an alert on from the
state it was read in) already keeps two deliverers from posting the same *pending* alert,
but an alert in 'sending' that looks settled to the second one could still be posted by
both, and two deliverers would interleave a channel's order. So a deliverer takes the
channel first and the other one skips it, reporting it as busy.

PostgreSQL: a transaction-level advisory lock on a connection of its own, held while the
channel is delivered; it goes with the transaction, so a crashed or killed deliverer never
leaves the channel locked. SQLite (one file on one machine): an exclusive flock(2) on a
small lock file next to the database, which the kernel releases when the process dies.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Engine

_NAMESPACE = b"sentinela.alerts.channel:"


def lock_key(channel: str) -> int:
    """A stable signed 64-bit key per channel (advisory locks take a bigint)."""
    digest = hashlib.sha1(_NAMESPACE + channel.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def _sqlite_lock_path(engine: Engine, channel: str) -> Path | None:
    database = engine.url.database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None  # a private in-memory archive has no second deliverer
    tag = hashlib.sha1(_NAMESPACE + channel.encode("utf-8")).hexdigest()[:16]
    return Path(f"{Path(database).resolve()}-deliver-{tag}.lock")


@contextmanager
def channel_lock(engine: Engine, channel: str) -> Iterator[bool]:
    """Hold `channel` for the duration of the block; yields False (and holds nothing) when
    another deliverer has it."""
    if engine.dialect.name == "postgresql":
        with engine.connect() as conn, conn.begin():
            got = conn.execute(sa.select(sa.func.pg_try_advisory_xact_lock(lock_key(channel))))
            yield bool(got.scalar())
        return
    path = _sqlite_lock_path(engine, channel) if engine.dialect.name == "sqlite" else None
    if path is None:
        yield True
        return
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            # flock, not fcntl/lockf: flock locks belong to the open file, so two deliverers
            # in threads of one process exclude each other too.
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
