"""The `sentinela` command as a user runs it (subprocesses of the installed console script)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SENTINELA = str(Path(sys.executable).parent / "sentinela")


def _run(
    args: list[str], env: dict[str, str] | None = None, cwd: Path = ROOT, timeout: int = 300
) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, "HF_HUB_OFFLINE": "1", **(env or {})}
    full_env.pop("SLACK_BOT_TOKEN", None) if env is None or "SLACK_BOT_TOKEN" not in env else None
    return subprocess.run(
        [SENTINELA, *args],
        capture_output=True,
        text=True,
        env=full_env,
        cwd=cwd,
        timeout=timeout,
        check=False,
    )


def test_classify_jsonl_contract_and_bad_lines(tmp_path: Path) -> None:
    inp = tmp_path / "in.jsonl"
    lines = [
        {
            "id": "a",
            "title": "Tren de Aragua ran Tocorón prison like a resort, with a pool and a zoo",
            "text": "Gang leaders controlled the Venezuelan prison for years, running extortion from inside.",
            "lang": "en",
        },
        "not json at all",
        {
            "id": "b",
            "title": "Chuvas fortes atingem o litoral paulista",
            "text": "A Defesa Civil emitiu alerta para o fim de semana.",
        },
        {"id": "c", "text": "no title"},
        {"id": "d", "title": "", "text": ""},
        {
            "id": 5,
            "title": "Militares toman el control de la cárcel de Tocorón",
            "text": "Unos 11.000 efectivos de seguridad participaron en la operación contra el Tren de Aragua.",
            "lang": "es",
        },
    ]
    inp.write_text(
        "\n".join(x if isinstance(x, str) else json.dumps(x, ensure_ascii=False) for x in lines)
        + "\n"
    )
    out = tmp_path / "out.jsonl"
    r = _run(["classify", "--input", str(inp), "--output", str(out)])
    assert r.returncode == 1, r.stderr
    assert f"{inp}:2: not valid JSON" in r.stderr
    assert f"{inp}:4: missing required key(s): title" in r.stderr
    assert "Traceback" not in r.stderr
    rows = [json.loads(x) for x in out.read_text().splitlines()]
    assert [row["id"] for row in rows] == ["a", "b", "d", 5]
    for row in rows:
        assert set(row) >= {"id", "labels", "scores", "model_version"}
        assert set(row["scores"]) == {"gang_prison_control", "security_operation"}
        assert all(0.0 <= v <= 1.0 for v in row["scores"].values())
        assert set(row["labels"]) <= {"gang_prison_control", "security_operation"}
    by = {row["id"]: row for row in rows}
    assert "gang_prison_control" in by["a"]["labels"]
    assert by["b"]["labels"] == [] and by["d"]["labels"] == []
    assert "security_operation" in by[5]["labels"]


def test_classify_missing_input_is_a_clear_error(tmp_path: Path) -> None:
    r = _run(["classify", "--input", str(tmp_path / "nope.jsonl"), "--output", "-"])
    assert r.returncode == 2 and "cannot read" in r.stderr and "Traceback" not in r.stderr


def test_db_upgrade_and_sources_check(tmp_path: Path, pg_url: str) -> None:
    for url in (f"sqlite:///{tmp_path / 'a.db'}", pg_url):
        r = _run(["db", "upgrade", "--db", url])
        assert r.returncode == 0 and "archive at revision 00" in r.stdout, r.stderr
        assert "revision 0001" not in r.stdout  # 0002 onwards chain on 0001
    r = _run(["sources", "check", "--db", f"sqlite:///{tmp_path / 'a.db'}"])
    assert r.returncode == 0, r.stderr
    assert "valid source(s)" in r.stdout and "insightcrime-en" in r.stdout


def test_bad_sources_file_is_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "s.yaml"
    bad.write_text("sources:\n  - {name: x, kind: fax, url: http://x}\n")
    r = _run(["run", "--once", "--sources", str(bad), "--db", f"sqlite:///{tmp_path / 'a.db'}"])
    assert r.returncode == 2 and "unknown kind 'fax'" in r.stderr and "Traceback" not in r.stderr


def test_run_once_offline_reports_unreachable_sources(tmp_path: Path) -> None:
    srcs = tmp_path / "sources.yaml"
    srcs.write_text(
        "sources:\n"
        "  - {name: nowhere, kind: rss, url: 'http://127.0.0.1:9/feed.xml', allow_private: true}\n"
        "  - {name: private, kind: rss, url: 'http://127.0.0.1:9/x.xml'}\n"
    )
    r = _run(["run", "--once", "--sources", str(srcs), "--db", f"sqlite:///{tmp_path / 'a.db'}"])
    assert r.returncode == 0, r.stderr
    assert "nowhere" in r.stdout and "private" in r.stdout and "TOTAL" in r.stdout
    assert "non-public address" in r.stdout


def test_demo_alerts_then_stays_quiet(tmp_path: Path) -> None:
    env = {
        "SENTINELA_DATABASE_URL": f"sqlite:///{tmp_path / 'demo.db'}",
        "SENTINELA_ALLOW_PRIVATE_HOSTS": "1",
    }
    first = _run(["demo"], env=env)
    assert first.returncode == 0, first.stderr
    assert "🚨" in first.stdout and "alert(s) sent, produced by the transformer" in first.stdout
    assert "labels: " in first.stdout and "why " in first.stdout
    second = _run(["demo"], env=env)
    assert second.returncode == 0, second.stderr
    assert "🚨" not in second.stdout and "No new alerts" in second.stdout
