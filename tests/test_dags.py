"""DAGs: import cleanly, cheaply, follow the house policy, and run for real under
`airflow dags test` into PostgreSQL and the fake Slack."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from pipeline.config import Settings
from pipeline.items import Source
from pipeline.sources import select_shard, shard_of
from tests.fakes.slack import FakeSlack

ROOT = Path(__file__).resolve().parents[1]
DAGS = ROOT / "dags"
DAG_IDS = ("sentinela_monitor", "sentinela_digest", "sentinela_source_health", "sentinela_retrain")
HEAVY = ("torch", "transformers", "onnxruntime", "numpy", "feedparser", "slack_sdk", "pipeline")


@pytest.fixture(scope="module")
def dagbag():  # type: ignore[no-untyped-def]
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(DAGS))


def test_no_import_errors(dagbag) -> None:
    assert dagbag.import_errors == {}
    assert set(dagbag.dags) == set(DAG_IDS)


def test_each_file_parses_fast(dagbag) -> None:
    assert len(dagbag.dagbag_stats) == len(DAG_IDS)
    for stat in dagbag.dagbag_stats:
        assert stat.duration.total_seconds() < 1.0, stat


@pytest.mark.parametrize("dag_file", sorted(p.name for p in DAGS.glob("*.py")))
def test_parsing_imports_nothing_heavy(dag_file: str) -> None:
    # A fresh interpreter, so nothing imported by the test session leaks in.
    code = (
        "import sys, runpy\n"
        "import airflow.sdk\n"
        "before = set(sys.modules)\n"
        f"runpy.run_path({str(DAGS / dag_file)!r})\n"
        "new = set(sys.modules) - before\n"
        f"print('HEAVY:' + ','.join(m for m in new if m.split('.')[0] in {HEAVY!r}))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    (line,) = [x for x in out.stdout.splitlines() if x.startswith("HEAVY:")]
    assert line == "HEAVY:"


def test_policies(dagbag) -> None:
    for dag_id in DAG_IDS:
        dag = dagbag.dags[dag_id]
        assert "sentinela" in dag.tags, dag_id
        assert dag.doc_md and len(dag.doc_md) > 200, dag_id
        assert dag.catchup is False, dag_id
        assert dag.max_active_runs == 1, dag_id
        for t in dag.tasks:
            assert t.retries >= 1, (dag_id, t.task_id)
            assert t.retry_exponential_backoff, (dag_id, t.task_id)
            assert t.owner == "sentinela", (dag_id, t.task_id)
    assert type(dagbag.dags["sentinela_retrain"].timetable).__name__ == "NullTimetable"  # manual


def test_monitor_maps_ingest_over_shards_and_alerts_in_slack_pool(dagbag) -> None:
    monitor = dagbag.dags["sentinela_monitor"]
    tasks = {t.task_id: t for t in monitor.tasks}
    assert set(tasks) == {"plan_shards", "ingest_shard", "classify", "alert"}
    assert type(tasks["ingest_shard"]).__name__.endswith("MappedOperator")
    assert tasks["ingest_shard"].upstream_task_ids == {"plan_shards"}
    assert tasks["classify"].upstream_task_ids == {"ingest_shard"}
    assert tasks["alert"].upstream_task_ids == {"classify"}
    # Every task that posts to Slack shares the one-slot pool.
    for dag_id, task_id in [
        ("sentinela_monitor", "alert"),
        ("sentinela_digest", "send_digest"),
        ("sentinela_source_health", "report_health"),
    ]:
        assert dagbag.dags[dag_id].get_task(task_id).pool == "slack"
    assert tasks["classify"].pool != "slack"


# --- the pipeline functions the DAGs call ----------------------------------------------------


def _sources(names: list[str]) -> list[Source]:
    return [Source(name=n, kind="rss", url=f"http://127.0.0.1/{n}.xml") for n in names]


def test_shards_partition_sources_stably() -> None:
    srcs = _sources([f"feed-{i}" for i in range(200)])
    shards = [select_shard(srcs, i, 4) for i in range(4)]
    assert sorted(s.name for sh in shards for s in sh) == sorted(s.name for s in srcs)
    assert all(25 <= len(sh) <= 75 for sh in shards), [len(sh) for sh in shards]
    # Stable across processes (not Python's salted hash) and independent of other sources.
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            "from pipeline.sources import shard_of; print([shard_of(f'feed-{i}', 4) for i in "
            "range(20)])",
        ],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONHASHSEED": "random"},
    )
    assert out.stdout.strip() == str([shard_of(f"feed-{i}", 4) for i in range(20)])
    assert [s.name for s in select_shard(srcs[:50], 1, 4)] == [
        s.name for s in shards[1] if s in srcs[:50]
    ]
    assert select_shard(srcs, 0, 1) == srcs
    with pytest.raises(ValueError, match=r"shard must be in 0\.\.3"):
        select_shard(srcs, 4, 4)
    with pytest.raises(ValueError, match="at least 1"):
        shard_of("x", 0)


def _write_sources(path: Path, names: list[str], base: str = "http://127.0.0.1:9/") -> Path:
    path.write_text(
        "sources:\n"
        + "".join(f"  - {{name: '{n}', kind: rss, url: '{base}{n}.xml'}}\n" for n in names)
    )
    return path


def test_plan_shards(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from pipeline.tasks import plan_shards

    settings = Settings.from_env({}).with_(
        sources_file=_write_sources(tmp_path / "s.yaml", [f"f{i}" for i in range(120)]),
        database_url=f"sqlite:///{tmp_path / 'plan.db'}",
    )
    for key in ("SENTINELA_SHARDS", "SENTINELA_SOURCES_PER_SHARD", "SENTINELA_MAX_SHARDS"):
        monkeypatch.delenv(key, raising=False)
    assert plan_shards(settings) == [{"shard": i, "of": 3} for i in range(3)]  # 50 per shard
    # The archive is migrated once here, before parallel shards could race to do it.
    assert "items" in sa.inspect(sa.create_engine(settings.database_url)).get_table_names()
    monkeypatch.setenv("SENTINELA_SOURCES_PER_SHARD", "10")
    assert len(plan_shards(settings)) == 12
    monkeypatch.setenv("SENTINELA_MAX_SHARDS", "5")
    assert plan_shards(settings)[-1] == {"shard": 4, "of": 5}
    monkeypatch.setenv("SENTINELA_SHARDS", "2")
    assert plan_shards(settings) == [{"shard": 0, "of": 2}, {"shard": 1, "of": 2}]
    monkeypatch.setenv("SENTINELA_SHARDS", "0")
    with pytest.raises(ValueError, match="SENTINELA_SHARDS must be at least 1"):
        plan_shards(settings)


def test_ingest_sources_takes_only_its_shard(
    tmp_path: Path, demo_feeds: str, settings: Settings
) -> None:
    from pipeline.demo import DEMO_FEEDS
    from pipeline.tasks import ingest_sources

    names = {fname: name for fname, (name, _, _) in DEMO_FEEDS.items()}
    (tmp_path / "s.yaml").write_text(
        "sources:\n"
        + "".join(
            f"  - {{name: '{n}', kind: rss, url: '{demo_feeds}{f}', allow_private: true}}\n"
            for f, n in names.items()
        )
    )
    url = f"sqlite:///{tmp_path / 'a.db'}"
    s = settings.with_(sources_file=tmp_path / "s.yaml", database_url=url)
    # In the DAG, plan_shards migrates the archive before any shard runs.
    from pipeline.storage.db import make_engine, upgrade

    upgrade(make_engine(url))
    got = [ingest_sources(s, shard=i, of=2) for i in range(2)]
    assert [g["sources"] for g in got] == [
        sum(shard_of(n, 2) == i for n in names.values()) for i in range(2)
    ]
    assert all(g["errors"] == {} and g["seconds"] > 0 for g in got)
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        per_source = dict(
            conn.execute(
                sa.text(
                    "SELECT s.name, COUNT(i.id) FROM sources s JOIN items i ON i.source_id = s.id "
                    "GROUP BY s.name"
                )
            ).all()
        )
    engine.dispose()
    assert set(per_source) == set(names.values())
    assert sum(g["new_items"] for g in got) == sum(per_source.values())
    # Shard 0's sources were stored by shard 0's task only.
    assert got[0]["new_items"] == sum(c for n, c in per_source.items() if shard_of(n, 2) == 0)


# --- secrets from Airflow Connections --------------------------------------------------------


def test_connections_fill_gaps_and_env_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    from pipeline.airflow_conn import resolve_env

    for key in ("SENTINELA_DATABASE_URL", "SLACK_BOT_TOKEN", "SENTINELA_SLACK_API_URL"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv(
        "AIRFLOW_CONN_SENTINELA_DB", "postgres://sentinela:s%40cret@db.internal:5433/archive"
    )
    monkeypatch.setenv(
        "AIRFLOW_CONN_SLACK_API_DEFAULT",
        json.dumps(
            {
                "conn_type": "slack",
                "password": "xoxb-from-connection",
                "extra": {"base_url": "http://127.0.0.1:8999/api"},
            }
        ),
    )
    env = resolve_env()
    url = sa.engine.make_url(env["SENTINELA_DATABASE_URL"])
    assert (url.drivername, url.username, url.password, url.host, url.port, url.database) == (
        "postgresql+psycopg",
        "sentinela",
        "s@cret",
        "db.internal",
        5433,
        "archive",
    )
    assert env["SLACK_BOT_TOKEN"] == "xoxb-from-connection"
    assert env["SENTINELA_SLACK_API_URL"] == "http://127.0.0.1:8999/api/"
    settings = Settings.from_env(env)
    assert settings.slack_bot_token == "xoxb-from-connection"
    assert settings.database_url == env["SENTINELA_DATABASE_URL"]

    # Environment variables win over connections.
    monkeypatch.setenv("SENTINELA_DATABASE_URL", "sqlite:///x.db")
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-env")
    env = resolve_env()
    assert (env["SENTINELA_DATABASE_URL"], env["SLACK_BOT_TOKEN"]) == ("sqlite:///x.db", "xoxb-env")
    assert "SENTINELA_SLACK_API_URL" not in env


def test_no_connection_leaves_env_alone() -> None:
    from pipeline.airflow_conn import resolve_env

    env = {"PATH": "/bin"}
    assert resolve_env(env) == env  # nothing named, Airflow not consulted


# --- source health report --------------------------------------------------------------------


def _unhealthy_archive(tmp_path: Path) -> Settings:
    from pipeline.storage import repo
    from pipeline.storage.db import make_engine, upgrade

    names = ["dead", "held", "fine"]
    url = f"sqlite:///{tmp_path / 'h.db'}"
    settings = Settings.from_env({}).with_(
        database_url=url,
        sources_file=_write_sources(tmp_path / "s.yaml", names),
        slack_min_interval_s=0.0,
    )
    engine = make_engine(url)
    upgrade(engine)
    with engine.begin() as conn:
        ids = repo.sync_sources(conn, _sources(names))
        for _ in range(3):
            repo.record_failure(conn, ids["dead"], "HTTP 410 Gone")
        repo.record_failure(conn, ids["held"], "timeout")
        conn.execute(
            sa.text("UPDATE sources SET next_fetch_after = :t WHERE name = 'held'"),
            {"t": datetime.now(UTC) + timedelta(hours=2)},
        )
        conn.execute(
            sa.text("UPDATE sources SET last_success_at = :t WHERE name = 'fine'"),
            {"t": datetime.now(UTC)},
        )
    engine.dispose()
    return settings


def test_source_health_posts_problems_to_ops_channel(tmp_path: Path, fake_slack: FakeSlack) -> None:
    from pipeline.tasks import report_source_health

    settings = _unhealthy_archive(tmp_path).with_(
        slack_bot_token=fake_slack.state.token, slack_api_url=fake_slack.url
    )
    out = report_source_health(settings, channel="#ops")
    assert out["unhealthy"] == {"dead": "failing", "held": "backing off"}
    assert out["posted"] is True
    (msg,) = fake_slack.state.messages
    assert msg.channel == fake_slack.state.channels["#ops"]
    assert "2 of 3 sources" in msg.text
    body = json.dumps(msg.blocks)
    assert "dead" in body and "HTTP 410 Gone" in body and "held" in body and "fine" not in body


def test_source_health_logs_without_token(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    from pipeline.tasks import report_source_health

    settings = _unhealthy_archive(tmp_path)
    with caplog.at_level("WARNING"):
        out = report_source_health(settings, channel="#ops")
    assert out["posted"] is False and set(out["unhealthy"]) == {"dead", "held"}
    assert "2 of 3 sources need attention" in caplog.text and "HTTP 410 Gone" in caplog.text


def test_source_health_quiet_when_all_healthy(tmp_path: Path, fake_slack: FakeSlack) -> None:
    from pipeline.tasks import report_source_health

    settings = Settings.from_env({}).with_(
        database_url=f"sqlite:///{tmp_path / 'ok.db'}",
        sources_file=_write_sources(tmp_path / "s.yaml", ["a"]),
        slack_bot_token=fake_slack.state.token,
        slack_api_url=fake_slack.url,
    )
    assert report_source_health(settings, channel="#ops")["posted"] is False
    assert fake_slack.state.messages == []


# --- retrain promotion -----------------------------------------------------------------------


def _report(tmp_path: Path, better: bool, dry: bool = False) -> dict[str, Any]:
    cand = tmp_path / "run" / "cache" / "models" / "cand123"
    cand.mkdir(parents=True, exist_ok=True)
    (cand / "config.json").write_text("{}")
    return {"run": str(tmp_path / "run"), "candidate": str(cand), "better": better, "dry": dry}


def test_promote_only_when_better(tmp_path: Path) -> None:
    from pipeline.retrain import promote

    cache = tmp_path / "cache"
    (cache / "models").mkdir(parents=True)
    (cache / "models" / "CURRENT").write_text("old\n")
    settings = Settings.from_env({}).with_(cache_dir=cache)
    for better, dry in [(False, False), (True, True)]:
        out = promote(settings, _report(tmp_path, better, dry))
        assert out["promoted"] is False
        assert (cache / "models" / "CURRENT").read_text() == "old\n"
    out = promote(settings, _report(tmp_path, True))
    assert out["promoted"] is True
    assert (cache / "models" / "CURRENT").read_text() == "cand123\n"
    assert (cache / "models" / "cand123" / "config.json").is_file()
    saved = json.loads((tmp_path / "run" / "report.json").read_text())
    assert saved["promoted"] is True


def _airflow(env: dict[str, str], *args: str, timeout: int = 600) -> str:
    airflow = str(Path(sys.executable).parent / "airflow")
    run = subprocess.run(
        [airflow, *args], env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    return run.stdout + run.stderr


@pytest.mark.slow
def test_dags_test_runs_into_postgres_and_slack(
    tmp_path: Path, pg_url: str, demo_feeds: str
) -> None:
    """monitor (3 shards) → source health → digest, each under `airflow dags test`."""
    from pipeline.demo import DEMO_FEEDS

    sources = tmp_path / "sources.yaml"
    sources.write_text(
        "sources:\n"
        + "".join(
            f"  - {{name: '{name}', kind: rss, url: '{demo_feeds}{fname}', allow_private: true}}\n"
            for fname, (name, _, _) in DEMO_FEEDS.items()
        )
        # Nothing listens on port 9: this source fails, and with BACKOFF_AFTER=1 backs off.
        + "  - {name: 'dead feed', kind: rss, url: 'http://127.0.0.1:9/x.xml', allow_private: true}\n"
    )
    home = tmp_path / "airflow"
    with FakeSlack() as slack:
        env = {
            **os.environ,
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
            "SENTINELA_SOURCES": str(sources),
            "SENTINELA_SHARDS": "3",
            "SENTINELA_BACKOFF_AFTER": "1",
            "SENTINELA_FETCH_TIMEOUT": "3",
            "SENTINELA_OPS_CHANNEL": "#ops",
            "SENTINELA_SLACK_CHANNEL": "#sentinela-alerts",
            "HF_HUB_OFFLINE": "1",
            # Secrets through Airflow Connections, as in production.
            "AIRFLOW_CONN_SENTINELA_DB": pg_url,
            "AIRFLOW_CONN_SLACK_API_DEFAULT": json.dumps(
                {
                    "conn_type": "slack",
                    "password": slack.state.token,
                    "extra": {"base_url": slack.url},
                }
            ),
        }
        for key in ("SENTINELA_DATABASE_URL", "SLACK_BOT_TOKEN", "SENTINELA_SLACK_API_URL"):
            env.pop(key, None)
        _airflow(env, "db", "migrate", timeout=300)
        _airflow(env, "pools", "set", "slack", "1", "Slack rate limit")
        _airflow(env, "dags", "test", "sentinela_monitor")

        engine = sa.create_engine(pg_url)
        with engine.connect() as conn:
            items = conn.execute(sa.text("SELECT COUNT(*) FROM items")).scalar()
            matches = conn.execute(sa.text("SELECT COUNT(*) FROM matches")).scalar()
            sent = conn.execute(sa.text("SELECT COUNT(*) FROM alerts WHERE status='sent'")).scalar()
        assert items and items >= 30
        assert matches and sent == matches == len(slack.state.messages)
        assert slack.state.rate_limited == 0  # paced to one post per second
        meta = sa.create_engine(f"sqlite:///{home / 'airflow.db'}")
        with meta.connect() as conn:
            shards = conn.execute(
                sa.text(
                    "SELECT map_index, state FROM task_instance WHERE dag_id='sentinela_monitor' "
                    "AND task_id='ingest_shard' ORDER BY map_index"
                )
            ).all()
        meta.dispose()
        assert shards == [(0, "success"), (1, "success"), (2, "success")]

        alerts_posted = len(slack.state.messages)
        _airflow(env, "dags", "test", "sentinela_source_health")
        ops = [m for m in slack.state.messages if m.channel == slack.state.channels["#ops"]]
        # The demo feeds' stories are old, so those sources also count as silent.
        assert len(ops) == 1 and "of 5 sources need attention" in ops[0].text
        assert "1 backing off" in ops[0].text
        assert "dead feed" in json.dumps(ops[0].blocks)

        # Logical date tomorrow → the digest of today, which holds this run's matches.
        tomorrow = (datetime.now(UTC) + timedelta(days=1)).date().isoformat()
        _airflow(env, "dags", "test", "sentinela_digest", tomorrow)
        digests = [m for m in slack.state.messages[alerts_posted:] if "daily digest" in m.text]
        assert len(digests) == 1 and f"{matches} matches" in digests[0].text
        with engine.connect() as conn:
            assert (
                conn.execute(sa.text("SELECT COUNT(*) FROM digests WHERE status='sent'")).scalar()
                == 1
            )
        engine.dispose()


@pytest.mark.slow
def test_retrain_dag_trains_evaluates_and_keeps_the_better_model(
    tmp_path: Path, pg_url: str
) -> None:
    """Tiny settings: 30 rows per data file, head only (epochs=0), 20 real dev rows."""
    from pipeline.config import default_cache_dir
    from pipeline.storage import repo
    from pipeline.storage.db import make_engine, upgrade

    data = tmp_path / "data"
    data.mkdir()
    for path in sorted((ROOT / "models" / "data").glob("*.jsonl")):
        (data / path.name).write_text("".join(path.read_text().splitlines(True)[:30]))
    dev_real = tmp_path / "dev-real.jsonl"
    real = ROOT.parent / "shared" / "data" / "dev-real.jsonl"
    if real.is_file():
        dev_real.write_text("".join(real.read_text().splitlines(True)[:20]))
    # The run's cache: the shared base weights and the current model, linked read-only.
    shared = Path(os.environ.get("SENTINELA_CACHE_DIR") or default_cache_dir())
    current = (shared / "models" / "CURRENT").read_text().strip()
    cache = tmp_path / "cache"
    (cache / "models").mkdir(parents=True)
    (cache / "base").mkdir()
    (cache / "base" / "e5-small").symlink_to(shared / "base" / "e5-small")
    (cache / "models" / current).symlink_to(shared / "models" / current)
    (cache / "models" / "CURRENT").write_text(current + "\n")
    # One analyst verdict, which must reach the training data.
    engine = make_engine(pg_url)
    upgrade(engine)
    with engine.begin() as conn:
        ids = repo.sync_sources(conn, _sources(["wire"]))
        item = conn.execute(
            sa.text(
                "INSERT INTO items (source_id, url, canonical_url, guid, title, text, lang, "
                "content_hash, fetched_at) VALUES (:s, 'http://x/1', 'http://x/1', 'g1', "
                "'Motín en la cárcel', 'Reos toman el penal.', 'es', 'c1', now()) RETURNING id"
            ),
            {"s": ids["wire"]},
        ).scalar()
        conn.execute(
            sa.text(
                "INSERT INTO feedback (item_id, label_verdict, user_id) VALUES (:i, 'not_relevant', 'U1')"
            ),
            {"i": item},
        )
    engine.dispose()
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(tmp_path / "airflow"),
        "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
        "SENTINELA_DATABASE_URL": pg_url,
        "SENTINELA_CACHE_DIR": str(cache),
        "SENTINELA_RETRAIN_DATA": str(data),
        "SENTINELA_RETRAIN_DEV_REAL": str(dev_real) if real.is_file() else "none",
        "SENTINELA_RETRAIN_EPOCHS": "0",
        "HF_HUB_OFFLINE": "1",
    }
    env.pop("SENTINELA_MODEL_DIR", None)
    _airflow(env, "db", "migrate", timeout=300)
    _airflow(env, "dags", "test", "sentinela_retrain", timeout=900)
    (run,) = (cache / "retrain").iterdir()
    (exported,) = [
        json.loads(x) for x in (run / "data" / "feedback.jsonl").read_text().splitlines()
    ]
    assert (exported["title"], exported["labels"]) == ("Motín en la cárcel", [])  # a hard negative
    report = json.loads((run / "report.json").read_text())
    assert report["current_version"] == current
    sets = report["macro_f1"]
    assert set(sets) == {"dev_split", "combined"} | ({"dev_real"} if real.is_file() else set())
    for row in sets.values():
        assert 0.0 <= row["candidate"] <= 1.0 and 0.0 <= row["current"] <= 1.0
    # The decision follows the scores, and CURRENT follows the decision.
    assert report["better"] == (sets["combined"]["candidate"] > sets["combined"]["current"])
    assert report["promoted"] == report["better"]
    pointer = (cache / "models" / "CURRENT").read_text().strip()
    assert pointer == (Path(report["candidate"]).name if report["promoted"] else current)
