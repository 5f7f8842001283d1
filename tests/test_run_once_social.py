"""`sentinela run --once` as a user runs it, over every source kind at once: one RSS feed and
the five social platforms, each served by a local replay of its real API."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest
import sqlalchemy as sa
import yaml

from pipeline.config import Settings
from tests import (
    test_social_bluesky,
    test_social_mastodon,
    test_social_reddit,
    test_social_telegram,
    test_social_x,
)
from tests.social_replay import Replay, replay

SENTINELA = str(Path(sys.executable).parent / "sentinela")
ROOT = Path(__file__).resolve().parents[1]

# First run: what each source's replay serves up to a page cap of 2.
FIRST = {"feed": 5, "masto": 4, "reddit": 5, "tg": 5, "x": 3, "bsky": 3}
# Second run: Mastodon, X and Bluesky serve posts newer than the stored cursor (Bluesky's
# `since` is inclusive and repeats the boundary post, which must not be stored again);
# the feed, Reddit and Telegram serve only what is already archived.
SECOND = {"feed": 0, "masto": 1, "reddit": 0, "tg": 0, "x": 1, "bsky": 1}


@pytest.fixture
def servers() -> Iterator[dict[str, Replay]]:
    with ExitStack() as stack:
        yield {
            "masto": stack.enter_context(replay(test_social_mastodon.route)),
            "reddit": stack.enter_context(replay(test_social_reddit.route)),
            "tg": stack.enter_context(replay(test_social_telegram.route)),
            "x": stack.enter_context(replay(test_social_x.route)),
            "bsky": stack.enter_context(replay(test_social_bluesky.route)),
        }


def _sources_file(tmp_path: Path, feeds: str, srv: dict[str, Replay]) -> Path:
    def social(name: str, kind: str, **options: str) -> dict[str, object]:
        return {
            "name": name,
            "kind": kind,
            "url": srv[name].url,
            "allow_private": True,
            "options": {**options, "max_pages": 2},
        }

    doc = {
        "sources": [
            {"name": "feed", "kind": "rss", "url": feeds + "rss2_basic.xml", "allow_private": True},
            social("masto", "mastodon", hashtag="TrenDeAragua"),
            social("reddit", "reddit", subreddit="venezuela"),
            social("tg", "telegram", channel="monitorpenal"),
            social("x", "x", query='"Tren de Aragua" -is:retweet'),
            social("bsky", "bluesky", query="Tren de Aragua", pds_url=srv["bsky"].url),
        ]
    }
    path = tmp_path / "sources.yaml"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    return path


def _run_once(sources: Path, db: str) -> subprocess.CompletedProcess[str]:
    # The caller's archive, routing and Slack settings stay out; where the model is kept stays in.
    keep = {"SENTINELA_CACHE_DIR", "SENTINELA_MODEL_DIR"}
    env = {
        k: v
        for k, v in os.environ.items()
        if k in keep or not k.startswith(("SENTINELA_", "SLACK_"))
    }
    env.update(
        HF_HUB_OFFLINE="1",
        SENTINELA_X_BEARER_TOKEN=test_social_x.TOKEN,
        SENTINELA_BLUESKY_HANDLE="sentinela.example.com",
        SENTINELA_BLUESKY_APP_PASSWORD="abcd-efgh-ijkl-mnop",
        SENTINELA_SOCIAL_MAX_WAIT="3",
        SENTINELA_FETCH_TIMEOUT="5",
    )
    return subprocess.run(
        [SENTINELA, "run", "--once", "--sources", str(sources), "--db", db],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=120,
        check=False,
    )


def _table(stdout: str) -> dict[str, list[str]]:
    """The summary table's rows by source name: fetched, new, matched, alerted, errors."""
    rows: dict[str, list[str]] = {}
    for line in stdout.splitlines():
        cols = line.split()
        if len(cols) >= 6 and cols[0] in FIRST and all(c.isdigit() for c in cols[1:6]):
            rows[cols[0]] = cols[1:6]
    return rows


def _stored(db: str) -> tuple[dict[str, int], int, int]:
    """Items per source, and how many canonical URLs and content hashes repeat."""
    engine = sa.create_engine(db)
    try:
        with engine.connect() as conn:
            per_source: dict[str, int] = dict(
                conn.execute(
                    sa.text(
                        "SELECT s.name, COUNT(i.id) FROM sources s "
                        "LEFT JOIN items i ON i.source_id = s.id GROUP BY s.name"
                    )
                ).all()
            )
            dup_urls = conn.execute(
                sa.text(
                    "SELECT COUNT(*) FROM (SELECT canonical_url FROM items "
                    "GROUP BY canonical_url HAVING COUNT(*) > 1) d"
                )
            ).scalar_one()
            dup_hashes = conn.execute(
                sa.text(
                    "SELECT COUNT(*) FROM (SELECT content_hash FROM items "
                    "GROUP BY content_hash HAVING COUNT(*) > 1) d"
                )
            ).scalar_one()
    finally:
        engine.dispose()
    return {k: int(v) for k, v in per_source.items()}, int(dup_urls), int(dup_hashes)


def test_run_once_reads_every_source_kind(
    tmp_path: Path, db_url: str, fixture_feeds: str, servers: dict[str, Replay]
) -> None:
    sources = _sources_file(tmp_path, fixture_feeds, servers)

    first = _run_once(sources, db_url)
    assert first.returncode == 0, first.stderr
    assert "Traceback" not in first.stderr
    table = _table(first.stdout)
    assert set(table) == set(FIRST), first.stdout  # the summary names every source
    for name, rows in FIRST.items():
        fetched, new, *_, errors = table[name]
        assert (int(new), errors) == (rows, "0"), f"{name}: {first.stdout}"
        assert int(fetched) >= rows
    stored, dup_urls, dup_hashes = _stored(db_url)
    assert stored == FIRST
    assert (dup_urls, dup_hashes) == (0, 0)
    # The connectors really authenticated from the environment's secrets.
    assert any(r.path.endswith("createSession") for r in servers["bsky"].requests)
    assert all(
        r.headers.get("authorization") == f"Bearer {test_social_x.TOKEN}"
        for r in servers["x"].requests
    )

    seen = {name: len(srv.requests) for name, srv in servers.items()}
    second = _run_once(sources, db_url)
    assert second.returncode == 0, second.stderr
    table = _table(second.stdout)
    assert set(table) == set(FIRST), second.stdout
    assert {name: int(row[1]) for name, row in table.items()} == SECOND, second.stdout
    # Nothing stored by the first run is alerted again: only new posts can be.
    assert all(int(row[3]) <= int(row[1]) for row in table.values()), second.stdout
    stored, dup_urls, dup_hashes = _stored(db_url)
    assert stored == {name: FIRST[name] + SECOND[name] for name in FIRST}
    assert (dup_urls, dup_hashes) == (0, 0)
    # The second run went on from each cursor instead of reading the timelines again.
    masto = servers["masto"].requests[seen["masto"] :]
    assert masto[0].query.get("min_id") == test_social_mastodon.NEWEST
    x = servers["x"].requests[seen["x"] :]
    assert x and all("since_id" in r.query for r in x)


def test_dag_shard_tasks_read_every_source_kind(
    tmp_path: Path, db_url: str, fixture_feeds: str, servers: dict[str, Replay], settings: Settings
) -> None:
    """The DAG's `ingest_shard` tasks call pipeline.tasks.ingest_sources once per shard: every
    source kind is read by exactly one shard and stored once."""
    from pipeline.sources import load_sources, shard_of
    from pipeline.storage.db import make_engine, upgrade
    from pipeline.tasks import ingest_sources

    sources = _sources_file(tmp_path, fixture_feeds, servers)
    s = settings.with_(
        sources_file=sources,
        database_url=db_url,
        x_bearer_token=test_social_x.TOKEN,
        bluesky_handle="sentinela.example.com",
        bluesky_app_password="abcd-efgh-ijkl-mnop",
        social_max_wait_s=3.0,
    )
    engine = make_engine(db_url)
    upgrade(engine)  # in the DAG, plan_shards migrates before any shard runs
    engine.dispose()
    shards = 3
    got = [ingest_sources(s, shard=i, of=shards) for i in range(shards)]
    names = [src.name for src in load_sources(sources)]
    assert [g["sources"] for g in got] == [
        sum(shard_of(n, shards) == i for n in names) for i in range(shards)
    ]
    assert all(g["errors"] == {} for g in got), got
    stored, dup_urls, dup_hashes = _stored(db_url)
    assert stored == FIRST and (dup_urls, dup_hashes) == (0, 0)
    assert sum(g["new_items"] for g in got) == sum(FIRST.values())
