"""A real Airflow on 127.0.0.1 for end-to-end tests and bench/dag_run.py: its own AIRFLOW_HOME,
a PostgreSQL metadata database, the project's DAGs, the simple auth manager with a known user,
and a small client for the REST API (/auth/token, /api/v2).

`airflow standalone` (LocalExecutor) or separate components (for the CeleryExecutor) are
started in their own process groups; `stop()` ends every group it started, so nothing
outlives a test even when Airflow forks task runners.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
USER, PASSWORD = "sentinela", "e2e-password"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def airflow_db_url(sentinela_pg_url: str) -> str:
    """Airflow's metadata DB speaks psycopg2; the archive's URL speaks psycopg 3."""
    return sentinela_pg_url.replace("postgresql+psycopg://", "postgresql+psycopg2://", 1)


@dataclass
class AirflowStack:
    home: Path
    metadata_url: str
    extra_env: Mapping[str, str] = field(default_factory=dict)
    port: int = field(default_factory=free_port)
    procs: list[tuple[str, subprocess.Popen[bytes]]] = field(default_factory=list)
    token: str | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def env(self) -> dict[str, str]:
        self.home.mkdir(parents=True, exist_ok=True)
        passwords = self.home / "passwords.json"
        if not passwords.exists():
            passwords.write_text(json.dumps({USER: PASSWORD}))
        env = {
            **os.environ,
            "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
            "AIRFLOW_HOME": str(self.home),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": self.metadata_url,
            "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
            "AIRFLOW__CORE__PARALLELISM": "4",
            "AIRFLOW__CORE__AUTH_MANAGER": (
                "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
            ),
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{USER}:admin",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.base}/execution/",
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(self.port),
            "AIRFLOW__API__WORKERS": "1",
            # Every component must sign and check task tokens with the same secret.
            "AIRFLOW__API_AUTH__JWT_SECRET": "sentinela-e2e-jwt-secret-not-for-production",
            # Pick new DAG files up quickly; the defaults suit production, not a test.
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
            "AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME": "0.5",
            # Only the runs a test triggers: unpausing must not add a scheduled run that
            # would do the work first (max_active_runs=1) and leave the triggered one idle.
            "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",
            "HF_HUB_OFFLINE": "1",
            "TRANSFORMERS_OFFLINE": "1",
            "TOKENIZERS_PARALLELISM": "false",
            "PYTHONPATH": str(ROOT),
        }
        env.update(self.extra_env)
        return env

    def cli(self, *args: str, timeout: float = 300) -> str:
        run = subprocess.run(
            [str(BIN / "airflow"), *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            cwd=ROOT,
        )
        if run.returncode != 0:
            raise RuntimeError(
                f"airflow {' '.join(args)}: {run.stdout[-2000:]}{run.stderr[-2000:]}"
            )
        return run.stdout

    def start(self, name: str, args: Sequence[str], env: Mapping[str, str] | None = None) -> None:
        log = (self.home / f"{name}.log").open("wb")
        proc = subprocess.Popen(
            [str(BIN / "airflow"), *args],
            env={**self.env, **(env or {})},
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
            start_new_session=True,  # its own process group: stop() ends its children too
        )
        self.procs.append((name, proc))

    def stop(self) -> None:
        for _, proc in reversed(self.procs):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + 20
        for _, proc in self.procs:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)  # stragglers in the group
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=5)
        self.procs.clear()

    def logs(self, tail: int = 3000) -> str:
        out = []
        for name, _ in self.procs:
            path = self.home / f"{name}.log"
            if path.exists():
                out.append(f"--- {name}\n{path.read_text(errors='replace')[-tail:]}")
        return "\n".join(out)

    def _check_alive(self) -> None:
        for name, proc in self.procs:
            if proc.poll() is not None:
                raise RuntimeError(f"airflow {name} exited with {proc.returncode}\n{self.logs()}")

    def wait_healthy(
        self, timeout: float = 180, components: Sequence[str] = ("scheduler",)
    ) -> None:
        deadline = time.monotonic() + timeout
        last = ""
        while time.monotonic() < deadline:
            self._check_alive()
            try:
                r = httpx.get(f"{self.base}/api/v2/monitor/health", timeout=5)
                if r.status_code == 200:
                    health = r.json()
                    last = json.dumps(health)
                    if all((health.get(c) or {}).get("status") == "healthy" for c in components):
                        self.login()
                        return
            except httpx.HTTPError as exc:
                last = str(exc)
            time.sleep(1)
        raise TimeoutError(f"Airflow not healthy after {timeout}s: {last}\n{self.logs()}")

    def login(self) -> str:
        r = httpx.post(
            f"{self.base}/auth/token", json={"username": USER, "password": PASSWORD}, timeout=10
        )
        r.raise_for_status()
        self.token = str(r.json()["access_token"])
        return self.token

    def api(self, method: str, path: str, body: Any = None) -> Any:
        r = httpx.request(
            method,
            f"{self.base}/api/v2/{path.lstrip('/')}",
            json=body,
            headers={"Authorization": f"Bearer {self.token}"},
            timeout=30,
        )
        if r.status_code >= 400:
            raise RuntimeError(f"{method} {path}: HTTP {r.status_code}: {r.text[:500]}")
        return r.json() if r.content else None

    def wait_for_dag(self, dag_id: str, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._check_alive()
            with contextlib.suppress(RuntimeError):
                self.api("GET", f"dags/{dag_id}")
                return
            time.sleep(1)
        raise TimeoutError(f"DAG {dag_id} not parsed after {timeout}s\n{self.logs()}")

    def trigger(self, dag_id: str, conf: Mapping[str, Any] | None = None) -> str:
        run = self.api(
            "POST", f"dags/{dag_id}/dagRuns", {"logical_date": None, "conf": dict(conf or {})}
        )
        self.api("PATCH", f"dags/{dag_id}", {"is_paused": False})
        return str(run["dag_run_id"])

    def wait_for_run(self, dag_id: str, run_id: str, timeout: float = 360) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        state = None
        while time.monotonic() < deadline:
            self._check_alive()
            run = self.api("GET", f"dags/{dag_id}/dagRuns/{run_id}")
            state = run["state"]
            if state in ("success", "failed"):
                return dict(run)
            time.sleep(2)
        raise TimeoutError(f"{dag_id} {run_id} still {state} after {timeout}s\n{self.logs()}")

    def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        out = self.api("GET", f"dags/{dag_id}/dagRuns/{run_id}/taskInstances?limit=1000")
        return list(out["task_instances"])

    def xcom(self, dag_id: str, run_id: str, task_id: str, map_index: int = -1) -> Any:
        entry = self.api(
            "GET",
            f"dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/xcomEntries/return_value"
            f"?map_index={map_index}&deserialize=true",
        )
        value = entry["value"]
        return json.loads(value) if isinstance(value, str) else value
