"""DAGs: import cleanly, cheaply, follow the house policy, and run for real under
`airflow dags test` into PostgreSQL and the fake Slack."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.fakes.slack import FakeSlack

ROOT = Path(__file__).resolve().parents[1]
DAGS = ROOT / "dags"
HEAVY = ("torch", "transformers", "onnxruntime", "numpy", "feedparser", "slack_sdk", "pipeline")


@pytest.fixture(scope="module")
def dagbag():  # type: ignore[no-untyped-def]
    from airflow.models.dagbag import DagBag

    return DagBag(dag_folder=str(DAGS))


def test_no_import_errors(dagbag) -> None:
    assert dagbag.import_errors == {}
    assert "sentinela_monitor" in dagbag.dags


def test_each_file_parses_fast(dagbag) -> None:
    for stat in dagbag.dagbag_stats:
        assert stat.duration.total_seconds() < 1.0, stat


def test_parsing_imports_nothing_heavy() -> None:
    # A fresh interpreter, so nothing imported by the test session leaks in.
    code = (
        "import sys, runpy\n"
        "import airflow.sdk\n"
        "before = set(sys.modules)\n"
        f"runpy.run_path({str(DAGS / 'sentinela_monitor.py')!r})\n"
        "new = set(sys.modules) - before\n"
        f"print('HEAVY:' + ','.join(m for m in new if m.split('.')[0] in {HEAVY + ('pipeline',)!r}))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    (line,) = [x for x in out.stdout.splitlines() if x.startswith("HEAVY:")]
    assert line == "HEAVY:"


def test_policies(dagbag) -> None:
    for dag_id, dag in dagbag.dags.items():
        assert dag.tags, dag_id
        assert dag.doc_md, dag_id
        assert dag.catchup is False, dag_id
        for t in dag.tasks:
            assert t.retries >= 1, (dag_id, t.task_id)
            assert t.owner and t.owner != "airflow", (dag_id, t.task_id)
    monitor = dagbag.dags["sentinela_monitor"]
    assert monitor.max_active_runs == 1


@pytest.mark.slow
def test_dag_test_run_into_postgres_and_slack(tmp_path: Path, pg_url: str, demo_feeds: str) -> None:
    from pipeline.demo import DEMO_FEEDS

    sources = tmp_path / "sources.yaml"
    sources.write_text(
        "sources:\n"
        + "".join(
            f"  - {{name: '{name}', kind: rss, url: '{demo_feeds}{fname}', allow_private: true}}\n"
            for fname, (name, _, _) in DEMO_FEEDS.items()
        )
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
            "SENTINELA_DATABASE_URL": pg_url,
            "SLACK_BOT_TOKEN": slack.state.token,
            "SENTINELA_SLACK_API_URL": slack.url,
            "SENTINELA_SLACK_CHANNEL": "#sentinela-alerts",
            "HF_HUB_OFFLINE": "1",
        }
        airflow = str(Path(sys.executable).parent / "airflow")
        subprocess.run(
            [airflow, "db", "migrate"], env=env, check=True, capture_output=True, timeout=300
        )
        run = subprocess.run(
            [airflow, "dags", "test", "sentinela_monitor"],
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
        engine = sa.create_engine(pg_url)
        with engine.connect() as conn:
            items = conn.execute(sa.text("SELECT COUNT(*) FROM items")).scalar()
            matches = conn.execute(sa.text("SELECT COUNT(*) FROM matches")).scalar()
            sent = conn.execute(sa.text("SELECT COUNT(*) FROM alerts WHERE status='sent'")).scalar()
        engine.dispose()
        assert items and items >= 30
        assert matches and sent == matches == len(slack.state.messages)
        assert slack.state.rate_limited == 0  # paced to one post per second
