"""One typed settings object, read from environment variables.

Every knob the pipeline has lives here so that the CLI, the DAGs and the tests agree on
names and defaults. `.env.example` and the README's configuration table mirror this file.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

SLACK_DEFAULT_API_URL = "https://slack.com/api/"
BLUESKY_DEFAULT_PDS_URL = "https://bsky.social"
_TRUE = {"1", "true", "yes", "on"}


def default_cache_dir() -> Path:
    """Where derived model weights are built: outside the work tree, shared by clones."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "sentinela"


def default_parse_workers() -> int:
    """Feed parsing is CPU-bound: one process per core, at most four."""
    return min(4, os.cpu_count() or 1)


def _flag(value: str | None) -> bool:
    return (value or "").strip().lower() in _TRUE


def _float(env: Mapping[str, str], key: str, default: float) -> float:
    raw = env.get(key)
    if raw is None or raw.strip() == "":
        return default
    try:
        return float(raw)
    except ValueError as exc:
        raise ValueError(f"{key} must be a number, got {raw!r}") from exc


def _int(env: Mapping[str, str], key: str, default: int) -> int:
    raw = env.get(key)
    if raw is None or raw.strip() == "":
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise ValueError(f"{key} must be an integer, got {raw!r}") from exc


@dataclass(frozen=True)
class Settings:
    database_url: str = "sqlite:///data/sentinela.db"
    sources_file: Path = Path("sources.yaml")
    slack_bot_token: str | None = None
    slack_channel: str = "#sentinela-alerts"
    slack_api_url: str = SLACK_DEFAULT_API_URL
    model_dir: Path | None = None
    allow_private_hosts: bool = False
    fetch_timeout_s: float = 20.0
    fetch_concurrency: int = 32
    per_host_concurrency: int = 4
    # Processes that parse feeds in parallel (1 = in the run's own process).
    parse_workers: int = field(default_factory=default_parse_workers)
    max_body_bytes: int = 10 * 1024 * 1024
    user_agent: str = "Sentinela/0.1 (+https://github.com/sentinela-monitor/sentinela)"
    slack_min_interval_s: float = 1.0
    cache_dir: Path = field(default_factory=default_cache_dir)
    routing_file: Path | None = None
    slack_app_token: str | None = None
    # Source back-off: after this many consecutive failures a source is fetched again only
    # after backoff_base_s, doubling per further failure, at most backoff_max_s.
    backoff_after: int = 5
    backoff_base_s: float = 1800.0
    backoff_max_s: float = 86400.0
    # Social connectors. Secrets stay out of repr() so they never reach a log line.
    x_bearer_token: str | None = field(default=None, repr=False)
    bluesky_handle: str | None = None
    bluesky_app_password: str | None = field(default=None, repr=False)
    bluesky_pds_url: str = BLUESKY_DEFAULT_PDS_URL
    # A Reddit "script" or "web app" (reddit.com/prefs/apps): with both set, Reddit sources
    # read through app-only OAuth instead of the heavily throttled anonymous JSON endpoints.
    reddit_client_id: str | None = field(default=None, repr=False)
    reddit_client_secret: str | None = field(default=None, repr=False)
    social_max_pages: int = 5
    social_max_wait_s: float = 30.0

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        model_dir = env.get("SENTINELA_MODEL_DIR")
        token = env.get("SLACK_BOT_TOKEN") or None
        cache = env.get("SENTINELA_CACHE_DIR")
        return cls(
            database_url=env.get("SENTINELA_DATABASE_URL") or cls.database_url,
            sources_file=Path(env.get("SENTINELA_SOURCES") or cls.sources_file),
            slack_bot_token=token,
            slack_channel=env.get("SENTINELA_SLACK_CHANNEL") or cls.slack_channel,
            slack_api_url=env.get("SENTINELA_SLACK_API_URL") or cls.slack_api_url,
            model_dir=Path(model_dir) if model_dir else None,
            allow_private_hosts=_flag(env.get("SENTINELA_ALLOW_PRIVATE_HOSTS")),
            fetch_timeout_s=_float(env, "SENTINELA_FETCH_TIMEOUT", cls.fetch_timeout_s),
            fetch_concurrency=_int(env, "SENTINELA_FETCH_CONCURRENCY", cls.fetch_concurrency),
            per_host_concurrency=_int(
                env, "SENTINELA_PER_HOST_CONCURRENCY", cls.per_host_concurrency
            ),
            parse_workers=_int(env, "SENTINELA_PARSE_WORKERS", default_parse_workers()),
            max_body_bytes=_int(env, "SENTINELA_MAX_BODY_BYTES", cls.max_body_bytes),
            slack_min_interval_s=_float(
                env, "SENTINELA_SLACK_MIN_INTERVAL", cls.slack_min_interval_s
            ),
            cache_dir=Path(cache) if cache else default_cache_dir(),
            routing_file=Path(env["SENTINELA_ROUTING"]) if env.get("SENTINELA_ROUTING") else None,
            slack_app_token=env.get("SLACK_APP_TOKEN") or None,
            backoff_after=_int(env, "SENTINELA_BACKOFF_AFTER", cls.backoff_after),
            backoff_base_s=_float(env, "SENTINELA_BACKOFF_BASE", cls.backoff_base_s),
            backoff_max_s=_float(env, "SENTINELA_BACKOFF_MAX", cls.backoff_max_s),
            x_bearer_token=env.get("SENTINELA_X_BEARER_TOKEN") or None,
            bluesky_handle=env.get("SENTINELA_BLUESKY_HANDLE") or None,
            bluesky_app_password=env.get("SENTINELA_BLUESKY_APP_PASSWORD") or None,
            bluesky_pds_url=env.get("SENTINELA_BLUESKY_PDS_URL") or cls.bluesky_pds_url,
            reddit_client_id=env.get("SENTINELA_REDDIT_CLIENT_ID") or None,
            reddit_client_secret=env.get("SENTINELA_REDDIT_CLIENT_SECRET") or None,
            social_max_pages=_int(env, "SENTINELA_SOCIAL_MAX_PAGES", cls.social_max_pages),
            social_max_wait_s=_float(env, "SENTINELA_SOCIAL_MAX_WAIT", cls.social_max_wait_s),
        )

    def with_(self, **changes: object) -> Settings:
        return replace(self, **changes)  # type: ignore[arg-type]
