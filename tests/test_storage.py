"""The archive on SQLite and on real PostgreSQL: migrations, idempotent writes, the view."""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa

from pipeline.ingest.canonical import canonical_url
from pipeline.items import Item, Source
from pipeline.storage import repo
from pipeline.storage.db import current_revision, make_engine, upgrade

SRC = Source(name="s1", kind="rss", url="https://example.com/feed", lang="es", country="EC")


def _item(n: int, url: str | None = None, title: str | None = None) -> Item:
    u = url or f"https://example.com/story/{n}?utm_source=rss"
    return Item(
        source="s1",
        url=u,
        canonical_url=canonical_url(u),
        title=title or f"Story {n}",
        text=f"Body of story number {n}.",
        lang="es",
        published_at=datetime(2026, 11, 20, 8, n % 60, tzinfo=UTC),
    )


def _head() -> str:
    """The newest migration (0002 and later ones chain on 0001)."""
    from alembic.script import ScriptDirectory

    from pipeline.storage.db import alembic_config

    head = ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()
    assert head is not None and head >= "0002"
    return head


def test_migrations_are_idempotent(db_url: str) -> None:
    eng = make_engine(db_url)
    upgrade(eng)
    upgrade(eng)
    assert current_revision(eng) == _head()
    names = set(sa.inspect(eng).get_table_names())
    assert {"sources", "items", "classifications", "alerts", "quarantine"} <= names
    assert "matches" in sa.inspect(eng).get_view_names()


def test_items_stored_once_by_canonical_url_and_content(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        ids = repo.sync_sources(conn, [SRC])
        first = repo.insert_items(conn, ids["s1"], [_item(1), _item(2), _item(1)])
    assert len(first) == 2
    with engine.begin() as conn:
        again = repo.insert_items(
            conn,
            ids["s1"],
            [
                _item(1, url="https://m.example.com/story/1?fbclid=x"),  # same canonical URL
                _item(3, title="Story 2").__class__(
                    **{
                        **_item(2).__dict__,
                        "url": "https://other.example/x",
                        "canonical_url": "https://other.example/x",
                    }
                ),  # same content
                _item(4),
            ],
        )
    assert [it.title for _, it in again] == ["Story 4"]
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT COUNT(*) FROM items")).scalar() == 3


def test_classification_and_alert_written_together_and_once(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        ids = repo.sync_sources(conn, [SRC])
        (item_id, _), (other_id, _) = repo.insert_items(conn, ids["s1"], [_item(1), _item(2)])
    rows = [
        repo.ClassificationRow(
            item_id,
            "v1",
            ["security_operation"],
            {"gang_prison_control": 0.2, "security_operation": 0.93},
            {"security_operation": "Troops took the prison."},
        ),
        repo.ClassificationRow(
            other_id, "v1", [], {"gang_prison_control": 0.1, "security_operation": 0.05}, {}
        ),
    ]
    for _ in range(2):
        with engine.begin() as conn:
            matched = repo.store_classifications(conn, rows, "#alerts")
        assert matched == [item_id]
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT COUNT(*) FROM classifications")).scalar() == 2
        pending = repo.pending_alerts(conn, "#alerts")
    assert [p.item_id for p in pending] == [item_id]
    assert pending[0].evidence == {"security_operation": "Troops took the prison."}
    with engine.begin() as conn:
        repo.mark_alert_sent(conn, pending[0].alert_id, "123.456")
    with engine.connect() as conn:
        assert repo.pending_alerts(conn, "#alerts") == []
        row = (
            conn.execute(
                sa.text(
                    "SELECT item_id, url, title, lang, published_at, labels, score, model_version, alerted_at "
                    "FROM matches"
                )
            )
            .mappings()
            .one()
        )
    assert row["item_id"] == item_id
    assert row["url"] == "https://example.com/story/1"
    labels = row["labels"]
    if isinstance(labels, str):
        import json

        labels = json.loads(labels)
    assert labels == ["security_operation"]
    assert abs(row["score"] - 0.93) < 1e-6 and row["model_version"] == "v1"
    assert row["alerted_at"] is not None


def test_fetch_state_and_failures(engine: sa.Engine) -> None:
    from pipeline.ingest.fetch import FetchResult

    with engine.begin() as conn:
        ids = repo.sync_sources(conn, [SRC])
        repo.record_fetch(
            conn, ids["s1"], FetchResult("s1", SRC.url, 200, b"x", etag='"e1"', last_modified="lm")
        )
        repo.record_fetch(
            conn, ids["s1"], FetchResult("s1", SRC.url, error="boom", error_kind="transient")
        )
        repo.record_fetch(
            conn, ids["s1"], FetchResult("s1", SRC.url, error="boom", error_kind="transient")
        )
    with engine.connect() as conn:
        state = repo.fetch_states(conn)["s1"]
        fails, err = conn.execute(
            sa.text("SELECT consecutive_failures, last_error FROM sources")
        ).one()
    assert (state.etag, state.last_modified) == ('"e1"', "lm")
    assert (fails, err) == (2, "boom")


def test_quarantine_keeps_bad_payload(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        repo.quarantine_payload(
            conn, "s1", "https://x", "not a feed", b"<html>\x00\xff nope</html>"
        )
    with engine.connect() as conn:
        reason, excerpt = conn.execute(sa.text("SELECT reason, excerpt FROM quarantine")).one()
    assert reason == "not a feed" and "nope" in excerpt


def _downgrade(eng: sa.Engine, revision: str) -> None:
    from alembic import command

    from pipeline.storage.db import alembic_config

    cfg = alembic_config(eng.url.render_as_string(hide_password=False))
    with eng.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, revision)


def test_downgrade_to_base_and_upgrade_again(db_url: str) -> None:
    """Every downgrade runs, one revision at a time, with rows in the archive (a rebuild of a
    table that views read, or that other rows point at, would fail here on SQLite)."""
    from alembic.script import ScriptDirectory

    from pipeline.storage.db import alembic_config

    script = ScriptDirectory.from_config(alembic_config("sqlite://"))
    below = [r.down_revision or "base" for r in script.walk_revisions()]  # newest first
    eng = make_engine(db_url)
    try:
        upgrade(eng)
        with eng.begin() as conn:
            ids = repo.sync_sources(conn, [SRC])
            (item_id, _), _ = repo.insert_items(conn, ids["s1"], [_item(1), _item(2)])
            rows = [repo.ClassificationRow(item_id, "v1", ["security_operation"], {}, {})]
            repo.store_classifications(conn, rows, "#alerts")
        for revision in below:
            _downgrade(eng, revision)
            assert current_revision(eng) == (None if revision == "base" else revision)
            if revision in ("0002", "0003"):
                # The rows are still there and the views that read the tables still work.
                with eng.connect() as conn:
                    assert conn.execute(sa.text("SELECT COUNT(*) FROM items")).scalar() == 2
                    assert conn.execute(sa.text("SELECT COUNT(*) FROM matches")).scalar() == 1
                    assert conn.execute(sa.text("SELECT COUNT(*) FROM alert_log")).scalar() == 1
                    if eng.dialect.name == "sqlite":
                        assert conn.exec_driver_sql("PRAGMA foreign_key_check").all() == []
        inspector = sa.inspect(eng)
        assert set(inspector.get_table_names()) <= {"alembic_version"}
        assert inspector.get_view_names() == []
        upgrade(eng)
        assert current_revision(eng) == _head()
        inspector = sa.inspect(eng)
        assert {"sources", "items", "alerts", "digests", "item_buckets"} <= set(
            inspector.get_table_names()
        )
        assert {"matches", "alert_log", "source_health", "daily_counts"} <= set(
            inspector.get_view_names()
        )
        with eng.begin() as conn:
            ids = repo.sync_sources(conn, [SRC])
            assert len(repo.insert_items(conn, ids["s1"], [_item(3)])) == 1
    finally:
        eng.dispose()
