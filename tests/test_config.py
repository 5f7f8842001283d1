from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.config import SLACK_DEFAULT_API_URL, Settings


def test_defaults_without_environment() -> None:
    s = Settings.from_env({})
    assert s.database_url == "sqlite:///data/sentinela.db"
    assert s.sources_file == Path("sources.yaml")
    assert s.slack_bot_token is None
    assert s.slack_api_url == SLACK_DEFAULT_API_URL
    assert s.model_dir is None
    assert s.allow_private_hosts is False


def test_environment_overrides() -> None:
    s = Settings.from_env(
        {
            "SENTINELA_DATABASE_URL": "postgresql+psycopg://u@h/db",
            "SENTINELA_SOURCES": "other.yaml",
            "SLACK_BOT_TOKEN": "xoxb-1",
            "SENTINELA_SLACK_CHANNEL": "#x",
            "SENTINELA_SLACK_API_URL": "http://127.0.0.1:9/api/",
            "SENTINELA_MODEL_DIR": "/models/m1",
            "SENTINELA_ALLOW_PRIVATE_HOSTS": "1",
            "SENTINELA_FETCH_TIMEOUT": "3.5",
        }
    )
    assert s.database_url.startswith("postgresql+psycopg://")
    assert s.sources_file == Path("other.yaml")
    assert s.slack_bot_token == "xoxb-1"
    assert s.slack_channel == "#x"
    assert s.slack_api_url == "http://127.0.0.1:9/api/"
    assert s.model_dir == Path("/models/m1")
    assert s.allow_private_hosts is True
    assert s.fetch_timeout_s == 3.5


def test_bad_number_names_the_variable() -> None:
    with pytest.raises(ValueError, match="SENTINELA_FETCH_TIMEOUT"):
        Settings.from_env({"SENTINELA_FETCH_TIMEOUT": "soon"})


def test_env_example_documents_every_variable() -> None:
    text = (Path(__file__).resolve().parents[1] / ".env.example").read_text()
    for var in (
        "SENTINELA_DATABASE_URL",
        "SENTINELA_SOURCES",
        "SLACK_BOT_TOKEN",
        "SENTINELA_SLACK_CHANNEL",
        "SENTINELA_SLACK_API_URL",
        "SENTINELA_MODEL_DIR",
        "SENTINELA_ALLOW_PRIVATE_HOSTS",
    ):
        assert var in text
