"""A real Airflow end to end: `airflow db migrate` on a fresh PostgreSQL database,
`airflow standalone` on a free port, a token from the simple auth manager, sentinela_monitor
unpaused and triggered through the REST API, and the archive and the fake Slack checked."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.airflow_stack import AirflowStack, airflow_db_url
from tests.conftest import _drop_pg_db, _fresh_pg_db
from tests.fakes.slack import FakeSlack

pytestmark = pytest.mark.slow


@pytest.fixture
def airflow_meta_url(pg_server_url: str) -> Iterator[str]:
    url = _fresh_pg_db(pg_server_url)
    try:
        yield airflow_db_url(url)
    finally:
        _drop_pg_db(url)


def _sources(path: Path, demo_feeds: str) -> Path:
    from pipeline.demo import DEMO_FEEDS

    path.write_text(
        "sources:\n"
        + "".join(
            f"  - {{name: '{name}', kind: rss, url: '{demo_feeds}{fname}', allow_private: true}}\n"
            for fname, (name, _, _) in DEMO_FEEDS.items()
        )
    )
    return path


def test_monitor_under_airflow_standalone(
    tmp_path: Path, pg_url: str, airflow_meta_url: str, demo_feeds: str
) -> None:
    with FakeSlack() as slack:
        stack = AirflowStack(
            tmp_path / "airflow",
            airflow_meta_url,
            {
                "SENTINELA_SOURCES": str(_sources(tmp_path / "sources.yaml", demo_feeds)),
                "SENTINELA_SHARDS": "2",
                "SENTINELA_SLACK_CHANNEL": "#sentinela-alerts",
                # Secrets from Airflow Connections, as a deployment would set them.
                "AIRFLOW_CONN_SENTINELA_DB": pg_url,
                "AIRFLOW_CONN_SLACK_API_DEFAULT": json.dumps(
                    {
                        "conn_type": "slack",
                        "password": slack.state.token,
                        "extra": {"base_url": slack.url},
                    }
                ),
                "SENTINELA_DATABASE_URL": "",
                "SLACK_BOT_TOKEN": "",
                "SENTINELA_SLACK_API_URL": "",
            },
        )
        try:
            stack.cli("db", "migrate")
            stack.cli("pools", "set", "slack", "1", "Slack rate limit")
            stack.start("standalone", ["standalone"])
            stack.wait_healthy(components=("scheduler", "dag_processor", "triggerer"))
            stack.wait_for_dag("sentinela_monitor")
            run_id = stack.trigger("sentinela_monitor")
            run = stack.wait_for_run("sentinela_monitor", run_id, timeout=360)
            tis = stack.task_instances("sentinela_monitor", run_id)
            assert run["state"] == "success", json.dumps(tis, indent=1)[:3000] + stack.logs()
            shards = sorted(t["map_index"] for t in tis if t["task_id"] == "ingest_shard")
            assert shards == [0, 1]
            assert all(t["state"] == "success" for t in tis)
            alert_ti = next(t for t in tis if t["task_id"] == "alert")
            assert alert_ti["pool"] == "slack"
            ingested = [stack.xcom("sentinela_monitor", run_id, "ingest_shard", i) for i in shards]
            classified = stack.xcom("sentinela_monitor", run_id, "classify")
            sent = stack.xcom("sentinela_monitor", run_id, "alert")
        finally:
            stack.stop()
        engine = sa.create_engine(pg_url)
        with engine.connect() as conn:
            items = conn.execute(sa.text("SELECT COUNT(*) FROM items")).scalar()
            matches = conn.execute(sa.text("SELECT COUNT(*) FROM matches")).scalar()
            alerts_sent = conn.execute(
                sa.text("SELECT COUNT(*) FROM alerts WHERE status='sent'")
            ).scalar()
        engine.dispose()
        assert items and items >= 30
        assert sum(x["new_items"] for x in ingested) == items == classified["new_items"]
        assert matches and classified["matched"] == matches
        assert sent["sent"] == alerts_sent == matches == len(slack.state.messages)
        assert slack.state.rate_limited == 0


HOSTNAME_MODULE = """
def hostname() -> str:
    return "{name}"
"""


def test_monitor_shards_spread_over_two_celery_workers(
    tmp_path: Path, pg_url: str, airflow_meta_url: str, demo_feeds: str
) -> None:
    """CeleryExecutor with the Redis on 127.0.0.1:6379 (database 5): scheduler, dag-processor
    and api-server, plus two `airflow celery worker`s (concurrency 2, queue default). Both
    run on this machine, so each reports its own name through [core] hostname_callable."""
    mods = tmp_path / "hostnames"
    mods.mkdir()
    for name in ("worker-a", "worker-b"):
        (mods / f"sentinela_host_{name.replace('-', '_')}.py").write_text(
            HOSTNAME_MODULE.format(name=name)
        )
    with FakeSlack() as slack:
        stack = AirflowStack(
            tmp_path / "airflow",
            airflow_meta_url,
            {
                "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
                "AIRFLOW__CELERY__BROKER_URL": "redis://127.0.0.1:6379/5",
                "AIRFLOW__CELERY__RESULT_BACKEND": "db+"
                + airflow_meta_url.replace("+psycopg2", ""),
                "AIRFLOW__CELERY__WORKER_CONCURRENCY": "2",
                "SENTINELA_SOURCES": str(_sources(tmp_path / "sources.yaml", demo_feeds)),
                "SENTINELA_SHARDS": "6",
                "SENTINELA_DATABASE_URL": pg_url,
                "SLACK_BOT_TOKEN": slack.state.token,
                "SENTINELA_SLACK_API_URL": slack.url,
                "SENTINELA_SLACK_CHANNEL": "#sentinela-alerts",
            },
        )
        try:
            stack.cli("db", "migrate")
            stack.cli("pools", "set", "slack", "1", "Slack rate limit")
            stack.start("api-server", ["api-server"])
            stack.start("scheduler", ["scheduler"])
            stack.start("dag-processor", ["dag-processor"])
            for name in ("worker-a", "worker-b"):
                module = f"sentinela_host_{name.replace('-', '_')}"
                stack.start(
                    name,
                    [
                        "celery",
                        "worker",
                        "--celery-hostname",
                        f"{name}@%h",
                        "--concurrency",
                        "2",
                        "--queues",
                        "default",
                        "--skip-serve-logs",  # both would bind the same log port
                        "--pid",  # and share one pid file
                        str(tmp_path / f"{name}.pid"),
                    ],
                    env={
                        "AIRFLOW__CORE__HOSTNAME_CALLABLE": f"{module}.hostname",
                        "PYTHONPATH": f"{mods}:{stack.env['PYTHONPATH']}",
                    },
                )
            stack.wait_healthy(components=("scheduler", "dag_processor"))
            stack.wait_for_dag("sentinela_monitor")
            run_id = stack.trigger("sentinela_monitor")
            run = stack.wait_for_run("sentinela_monitor", run_id, timeout=420)
            tis = stack.task_instances("sentinela_monitor", run_id)
        finally:
            stack.stop()
        assert run["state"] == "success", json.dumps(tis, indent=1)[:3000]
        shard_hosts = {t["hostname"] for t in tis if t["task_id"] == "ingest_shard"}
        assert len([t for t in tis if t["task_id"] == "ingest_shard"]) == 6
        assert shard_hosts == {"worker-a", "worker-b"}, shard_hosts
        assert slack.state.messages and slack.state.rate_limited == 0
