"""Ingest stores many feeds per transaction, one savepoint per feed: a feed whose rows the
database refuses rolls back alone, keeps its old validators and is stored by the next run;
the feeds around it in the same transaction are stored. Both dialects (on SQLite the
savepoint needs the transaction opened first: pysqlite would commit at RELEASE)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from pipeline import run
from pipeline.config import Settings
from pipeline.feedserver import serve_directory
from pipeline.items import Source
from pipeline.run import RunSummary, ingest
from pipeline.storage import repo
from pipeline.storage.schema import items, sources


def _feed(outlet: str, n: int) -> str:
    entries = "".join(
        f"<item><title>{outlet} story {i} about the prison</title>"
        f"<link>https://{outlet}.example/story-{i}</link>"
        f"<description>Inmates of block {i} were moved by {outlet} reporters, the ministry said "
        f"on day {i} of the {outlet} crisis.</description></item>"
        for i in range(n)
    )
    return f'<?xml version="1.0"?><rss version="2.0"><channel><title>{outlet}</title>{entries}</channel></rss>'


def _stored(engine: sa.Engine) -> dict[str, int]:
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(sources.c.name, sa.func.count(items.c.id))
            .select_from(sources.outerjoin(items, items.c.source_id == sources.c.id))
            .group_by(sources.c.name)
        ).all()
    return {name: int(n) for name, n in rows}


def test_a_refused_feed_rolls_back_alone_and_is_stored_next_run(
    engine: sa.Engine, settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    names = [f"outlet{i}" for i in range(7)]
    for name in names:
        (tmp_path / f"{name}.xml").write_text(_feed(name, 4), encoding="utf-8")
    monkeypatch.setattr(run, "COMMIT_EVERY_SOURCES", 3)  # groups of 3: 3 + 3 + 1
    real_insert = repo.insert_items
    bad_id: list[int] = []

    def refusing_insert(conn: Any, source_id: int, batch: Any) -> Any:
        out = real_insert(conn, source_id, batch)  # rows written, then refused
        if source_id in bad_id:
            raise sa.exc.IntegrityError("INSERT …", {}, Exception("refused by the database"))
        return out

    with serve_directory(tmp_path) as base:
        srcs = [Source(name=n, kind="rss", url=f"{base}{n}.xml", allow_private=True) for n in names]
        with engine.begin() as conn:
            bad_id.append(repo.sync_sources(conn, srcs)["outlet4"])  # mid-group
        monkeypatch.setattr(repo, "insert_items", refusing_insert)
        first = RunSummary()
        ingest(engine, settings, srcs, first)
        stored = _stored(engine)
        assert stored == {**{n: 4 for n in names}, "outlet4": 0}
        assert "refused by the database" in first.reports["outlet4"].errors[0]
        assert first.reports["outlet4"].new == 0 and first.reports["outlet5"].new == 4
        with engine.connect() as conn:
            etag, failures = conn.execute(
                sa.select(sources.c.etag, sources.c.consecutive_failures).where(
                    sources.c.name == "outlet4"
                )
            ).one()
        assert etag is None and failures == 1  # old validators kept: no 304 next time

        monkeypatch.setattr(repo, "insert_items", real_insert)
        second = RunSummary()
        ingest(engine, settings, srcs, second)
    assert _stored(engine) == {n: 4 for n in names}
    assert second.reports["outlet4"].new == 4 and not second.reports["outlet4"].not_modified
    assert all(second.reports[n].not_modified for n in names if n != "outlet4")


def test_a_group_is_one_transaction_and_a_crash_loses_nothing(
    engine: sa.Engine, settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    names = [f"outlet{i}" for i in range(4)]
    for name in names:
        (tmp_path / f"{name}.xml").write_text(_feed(name, 3), encoding="utf-8")
    monkeypatch.setattr(run, "COMMIT_EVERY_SOURCES", 3)
    real_insert = repo.insert_items
    crash_id: list[int] = []

    def crashing_insert(conn: Any, source_id: int, batch: Any) -> Any:
        if source_id in crash_id:
            raise RuntimeError("process killed mid-group")
        return real_insert(conn, source_id, batch)

    with serve_directory(tmp_path) as base:
        srcs = [Source(name=n, kind="rss", url=f"{base}{n}.xml", allow_private=True) for n in names]
        with engine.begin() as conn:
            crash_id.append(repo.sync_sources(conn, srcs)["outlet2"])  # last of the group
        monkeypatch.setattr(repo, "insert_items", crashing_insert)
        with pytest.raises(RuntimeError):
            ingest(engine, settings, srcs, RunSummary())
        # outlet0 and outlet1 were written in the same transaction: nothing of it committed
        # (on SQLite too, where a savepoint must not open, and at RELEASE commit, its own).
        assert _stored(engine) == {n: 0 for n in names}
        with engine.connect() as conn:
            assert (
                conn.execute(sa.select(sources.c.etag).where(sources.c.etag.is_not(None))).all()
                == []
            )
        monkeypatch.setattr(repo, "insert_items", real_insert)
        summary = RunSummary()
        ingest(engine, settings, srcs, summary)
    assert _stored(engine) == {n: 3 for n in names}
