"""One sentinela_monitor run over 500 local feeds under a real Airflow scheduler, against the
same work done by `sentinela run --once`.

    .venv/bin/python bench/dag_run.py [--feeds 500] [--items 5] [--per-shard 50]

The feeds come from bench/ingest.py's generator and feed server. Both runs start from a
fresh PostgreSQL archive and send alerts to the console sink (no Slack token): Slack's one
post per second per channel would otherwise measure Slack's rate limit, not the pipeline.

Airflow: `airflow db migrate` on a fresh metadata database, `airflow standalone`
(LocalExecutor, parallelism 4) on a free port, the run triggered through the REST API and
timed from the POST until the run is `success`. Each task reports its pipeline function's own
duration in its XCom (`seconds`); Airflow's overhead (scheduling, task start-up, XCom) is the
wall time minus the pipeline's critical path (the slowest ingest shard + classify + alert;
shards run in parallel), and also given against the plain sum of task durations. Targets: at
most 3 min end to end and under 30 % overhead; measured, not asserted.
Results go to bench/results/dag_run.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from ingest import SERVER, _drop_pg, _fresh_pg, make_feeds  # type: ignore[import-not-found]  # noqa: E402

from tests.airflow_stack import AirflowStack, airflow_db_url  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "dag_run.json"
PG_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
BIN = Path(sys.executable).parent


def _pipeline_env(sources: Path, db_url: str) -> dict[str, str]:
    return {
        "SENTINELA_SOURCES": str(sources),
        "SENTINELA_DATABASE_URL": db_url,
        "SENTINELA_ALLOW_PRIVATE_HOSTS": "1",
        # Every feed is on 127.0.0.1: the per-host limit would serialise the run.
        "SENTINELA_FETCH_CONCURRENCY": "32",
        "SENTINELA_PER_HOST_CONCURRENCY": "32",
        "SENTINELA_FETCH_TIMEOUT": "30",
        "SLACK_BOT_TOKEN": "",
        "HF_HUB_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "false",
    }


def _counts(db_url: str) -> dict[str, int]:
    import sqlalchemy as sa

    engine = sa.create_engine(db_url)
    with engine.connect() as conn:
        out = {
            t: int(conn.execute(sa.text(f"SELECT COUNT(*) FROM {t}")).scalar() or 0)
            for t in ("items", "matches", "alerts")
        }
    engine.dispose()
    return out


def baseline(sources: Path) -> dict[str, Any]:
    db = _fresh_pg(PG_ADMIN)
    try:
        env = {**os.environ, **_pipeline_env(sources, db)}
        subprocess.run(
            [str(BIN / "sentinela"), "db", "upgrade"], env=env, check=True, capture_output=True
        )
        walls: list[float] = []
        counts: dict[str, int] = {}
        for _ in range(2):  # a cold run, then a warm one (every feed 304), as under Airflow
            t0 = time.perf_counter()
            run = subprocess.run(
                [str(BIN / "sentinela"), "run", "--once"],
                env=env,
                capture_output=True,
                text=True,
                check=False,
                cwd=ROOT,
            )
            walls.append(time.perf_counter() - t0)
            if run.returncode not in (0, 1):  # 1: some source had an error; still a full run
                raise RuntimeError(run.stderr[-2000:])
            if len(walls) == 1:
                counts = _counts(db)
        return {"wall_s": round(walls[0], 1), **counts, "warm_run_wall_s": round(walls[1], 1)}
    finally:
        _drop_pg(db, PG_ADMIN)


def under_airflow(sources: Path, tmp: Path, per_shard: int) -> dict[str, Any]:
    db = _fresh_pg(PG_ADMIN)
    meta = _fresh_pg(PG_ADMIN)
    stack = AirflowStack(
        tmp / "airflow",
        airflow_db_url(meta),
        {**_pipeline_env(sources, db), "SENTINELA_SOURCES_PER_SHARD": str(per_shard)},
    )
    try:
        subprocess.run(
            [str(BIN / "sentinela"), "db", "upgrade"],
            env={**os.environ, **_pipeline_env(sources, db)},
            check=True,
            capture_output=True,
        )
        t0 = time.perf_counter()
        stack.cli("db", "migrate")
        stack.cli("pools", "set", "slack", "1", "Slack rate limit")
        stack.start("standalone", ["standalone"])
        stack.wait_healthy(components=("scheduler", "dag_processor", "triggerer"))
        stack.wait_for_dag("sentinela_monitor")
        startup = time.perf_counter() - t0
        first = _timed_run(stack)
        counts = _counts(db)
        # The next run a few minutes later: every feed answers 304, nothing new to classify,
        # so nearly all of its wall time is Airflow's own.
        warm = _timed_run(stack)
    finally:
        stack.stop()
        _drop_pg(db, PG_ADMIN)
        _drop_pg(meta, PG_ADMIN)
    return {"airflow_startup_s": round(startup, 1), **first, **counts, "warm_run": warm}


def _timed_run(stack: AirflowStack) -> dict[str, Any]:
    t1 = time.perf_counter()
    run_id = stack.trigger("sentinela_monitor")
    run = stack.wait_for_run("sentinela_monitor", run_id, timeout=1200)
    wall = time.perf_counter() - t1
    tis = stack.task_instances("sentinela_monitor", run_id)
    if run["state"] != "success":
        raise RuntimeError(json.dumps(tis, indent=1)[:3000] + stack.logs())
    shards = sorted(t["map_index"] for t in tis if t["task_id"] == "ingest_shard")
    ingest = [stack.xcom("sentinela_monitor", run_id, "ingest_shard", i) for i in shards]
    classify = stack.xcom("sentinela_monitor", run_id, "classify")
    alert = stack.xcom("sentinela_monitor", run_id, "alert")
    task_s = {
        f"{t['task_id']}[{t['map_index']}]" if t["map_index"] >= 0 else t["task_id"]: round(
            float(t.get("duration") or 0.0), 2
        )
        for t in tis
    }
    ingest_s = [float(x["seconds"]) for x in ingest]
    critical = max(ingest_s) + float(classify["seconds"]) + float(alert["seconds"])
    total = sum(ingest_s) + float(classify["seconds"]) + float(alert["seconds"])
    return {
        "wall_s": round(wall, 1),
        "shards": len(shards),
        "new_items": sum(int(x["new_items"]) for x in ingest),
        "pipeline_critical_path_s": round(critical, 1),
        "pipeline_sum_s": round(total, 1),
        "overhead_s": round(wall - critical, 1),
        "overhead_pct_of_wall": round(100 * (wall - critical) / wall, 1),
        "overhead_vs_sum_s": round(wall - total, 1),
        "ingest_shard_s": [round(s, 1) for s in ingest_s],
        "classify_s": classify["seconds"],
        "alert_s": alert["seconds"],
        "task_instance_durations_s": task_s,
        "dag_run_start": run.get("start_date"),
        "dag_run_end": run.get("end_date"),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--feeds", type=int, default=500)
    ap.add_argument(
        "--items", type=int, default=5, help="items per feed (every new item is classified)"
    )
    ap.add_argument("--per-shard", type=int, default=50, help="SENTINELA_SOURCES_PER_SHARD")
    ap.add_argument("--out", default=str(RESULTS))
    ap.add_argument("--before", help="an earlier results file to embed as `before`")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="sentinela-dagbench-") as tmp_s:
        tmp = Path(tmp_s)
        feeds = tmp / "feeds"
        feeds.mkdir()
        make_feeds(feeds, args.feeds, args.items)
        server = subprocess.Popen(
            [sys.executable, "-c", SERVER, str(feeds)],
            stdout=subprocess.PIPE,
            text=True,
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        try:
            assert server.stdout is not None
            base = f"http://127.0.0.1:{server.stdout.readline().strip()}/"
            sources = tmp / "sources.yaml"
            sources.write_text(
                "sources:\n"
                + "".join(
                    f"  - {{name: outlet{f}, kind: rss, url: '{base}feed{f:04d}.xml', "
                    "allow_private: true}\n"
                    for f in range(args.feeds)
                )
            )
            airflow = under_airflow(sources, tmp, args.per_shard)
            cli = baseline(sources)
        finally:
            server.terminate()
            server.wait(timeout=10)
    results = {
        "feeds": args.feeds,
        "items_per_feed": args.items,
        "airflow": airflow,
        "sentinela_run_once": cli,
        "airflow_vs_cli": round(airflow["wall_s"] / cli["wall_s"], 2),
        "targets": {"wall_s_max": 180, "overhead_pct_max": 30},
        "met": {
            "wall": airflow["wall_s"] <= 180,
            "overhead": airflow["overhead_pct_of_wall"] < 30,
        },
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "when": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "load_average_1m": round(os.getloadavg()[0], 2),
        },
    }
    if args.before:
        results["before"] = json.loads(Path(args.before).read_text(encoding="utf-8"))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    _table(results)
    return 0


def _table(r: dict[str, Any]) -> None:
    a, c = r["airflow"], r["sentinela_run_once"]
    print(f"{r['feeds']} feeds x {r['items_per_feed']} items; {a['shards']} shards")
    print(f"{'':32} {'wall s':>8} {'items':>7} {'matches':>8}")
    print(f"{'sentinela run --once':32} {c['wall_s']:8.1f} {c['items']:7d} {c['matches']:8d}")
    print(
        f"{'sentinela_monitor (Airflow)':32} {a['wall_s']:8.1f} {a['items']:7d} {a['matches']:8d}"
    )
    w = a["warm_run"]
    print(f"{'run --once, warm (all 304)':32} {c['warm_run_wall_s']:8.1f}")
    print(f"{'sentinela_monitor, warm':32} {w['wall_s']:8.1f} {w['new_items']:7d}")
    for name, x in (("cold", a), ("warm", w)):
        print(
            f"{name}: pipeline critical path {x['pipeline_critical_path_s']} s (sum "
            f"{x['pipeline_sum_s']} s; classify {x['classify_s']} s); Airflow overhead "
            f"{x['overhead_s']} s = {x['overhead_pct_of_wall']} % of wall (target < 30 %)"
        )
    print(f"Airflow start-up (not in wall): {a['airflow_startup_s']} s")


if __name__ == "__main__":
    sys.exit(main())
