"""Secrets for Airflow tasks from Airflow Connections, so DAG code never holds them.

Two connections are read, and only when the environment does not already say:

- `sentinela_db` → SENTINELA_DATABASE_URL (the archive). Any Airflow form works: a URI
  (`postgresql+psycopg://user:pw@host:5432/sentinela`), JSON, or a Connection made in the UI
  with conn_type `postgres`.
- `slack_api_default` (conn_type `slack`, the Slack provider's default; password = bot
  token, optional extra `base_url`) → SLACK_BOT_TOKEN and SENTINELA_SLACK_API_URL.

Environment variables win: a deployment that sets SENTINELA_DATABASE_URL or SLACK_BOT_TOKEN
gets exactly that. Connections are looked up through Airflow's own secrets chain
(AIRFLOW_CONN_* variables, a secrets backend, the metadata DB / execution API), and only when
Airflow is already loaded (inside a task) or an AIRFLOW_CONN_* variable names the connection,
so the `sentinela` CLI never pays for importing Airflow.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Mapping
from typing import Any

log = logging.getLogger(__name__)

DB_CONN_ID = "sentinela_db"
SLACK_CONN_ID = "slack_api_default"
# Airflow's names for PostgreSQL; the archive speaks psycopg 3.
_POSTGRES_TYPES = {"postgres", "postgresql"}


def _connection(conn_id: str, env: Mapping[str, str]) -> Any | None:
    """Airflow's Connection `conn_id`, or None when it is not defined (or Airflow is absent)."""
    named = f"AIRFLOW_CONN_{conn_id.upper()}" in env
    if not named and "airflow.sdk" not in sys.modules:
        return None
    try:
        from airflow.sdk import BaseHook
    except ImportError:
        return None
    try:
        return BaseHook.get_connection(conn_id)
    except Exception as exc:  # not defined, or no secrets backend reachable: env only
        log.debug("Airflow connection %s not available: %s", conn_id, exc)
        return None


def database_url(conn: Any) -> str:
    """A SQLAlchemy URL for an Airflow Connection."""
    import sqlalchemy as sa

    conn_type = str(conn.conn_type or "").lower()
    if conn_type == "sqlite":
        return f"sqlite:///{conn.host or conn.schema}"
    driver = "postgresql+psycopg" if conn_type in _POSTGRES_TYPES else conn_type
    if not driver:
        raise ValueError("connection sentinela_db has no conn_type")
    return sa.URL.create(
        driver,
        username=conn.login or None,
        password=conn.password or None,
        host=conn.host or None,
        port=int(conn.port) if conn.port else None,
        database=conn.schema or None,
    ).render_as_string(hide_password=False)


def slack_base_url(conn: Any) -> str | None:
    extra = conn.extra_dejson or {}
    # The provider has used both spellings over its versions.
    url = extra.get("base_url") or extra.get("extra__slack__base_url")
    if not url:
        return None
    return url if str(url).endswith("/") else f"{url}/"


def resolve_env(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """`env` (default os.environ) with the gaps filled from Airflow Connections."""
    out = dict(os.environ if env is None else env)
    if not out.get("SENTINELA_DATABASE_URL"):
        conn = _connection(DB_CONN_ID, out)
        if conn is not None:
            out["SENTINELA_DATABASE_URL"] = database_url(conn)
    if not out.get("SLACK_BOT_TOKEN"):
        conn = _connection(SLACK_CONN_ID, out)
        if conn is not None and conn.password:
            out["SLACK_BOT_TOKEN"] = str(conn.password)
            base = slack_base_url(conn)
            if base and not out.get("SENTINELA_SLACK_API_URL"):
                out["SENTINELA_SLACK_API_URL"] = base
    return out
