"""Shared fixtures: a real PostgreSQL database per test session, SQLite files, local feed
servers, the fake Slack server, and the real classifier built by `make model`."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from pipeline.config import Settings
from pipeline.feedserver import serve_directory
from pipeline.storage.db import make_engine, upgrade
from tests.fakes.slack import FakeSlack

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).parent / "fixtures"
PG_ADMIN_URL = os.environ.get(
    "SENTINELA_TEST_PG_ADMIN_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)


@pytest.fixture(scope="session")
def pg_server_url() -> Iterator[str]:
    """A fresh PostgreSQL database for this test session, dropped at the end."""
    name = f"sentinela_test_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    try:
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _fresh_pg_db(server_url: str) -> str:
    """Each test gets its own database on the session's server (cheap: CREATE DATABASE)."""
    name = f"sentinela_t_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"


def _drop_pg_db(url: str) -> None:
    name = url.rsplit("/", 1)[1]
    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path, pg_server_url: str) -> Iterator[str]:
    """The same tests run on the embedded SQLite default and on real PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'archive.db'}"
        return
    url = _fresh_pg_db(pg_server_url)
    try:
        yield url
    finally:
        _drop_pg_db(url)


@pytest.fixture
def pg_url(pg_server_url: str) -> Iterator[str]:
    url = _fresh_pg_db(pg_server_url)
    try:
        yield url
    finally:
        _drop_pg_db(url)


@pytest.fixture
def engine(db_url: str) -> Iterator[sa.Engine]:
    eng = make_engine(db_url)
    upgrade(eng)
    yield eng
    eng.dispose()


@pytest.fixture(scope="session")
def demo_feeds() -> Iterator[str]:
    with serve_directory(ROOT / "pipeline" / "demo_data") as base:
        yield base


@pytest.fixture(scope="session")
def fixture_feeds() -> Iterator[str]:
    with serve_directory(FIXTURES / "feeds") as base:
        yield base


@pytest.fixture
def fake_slack() -> Iterator[FakeSlack]:
    with FakeSlack() as slack:
        yield slack


@pytest.fixture(scope="session")
def classifier():  # type: ignore[no-untyped-def]
    """The real classifier from the cache. `make test` builds it first (`make model`); a
    missing model is a failure, not a skip."""
    from pipeline.classify.model import load_classifier

    settings = Settings.from_env()
    return load_classifier(settings.model_dir, settings.cache_dir)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings.from_env({}).with_(
        allow_private_hosts=True,
        slack_min_interval_s=0.0,
        fetch_timeout_s=5.0,
        cache_dir=Settings.from_env().cache_dir,
    )
