"""Run every social source of one pass concurrently; one source's failure is its own."""

from __future__ import annotations

import asyncio
import collections
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx

from pipeline.config import Settings
from pipeline.errors import PermanentError, SentinelaError, TransientError, kind_of
from pipeline.ingest.social.base import (
    ConnectorContext,
    ConnectorResult,
    PayloadError,
    max_pages,
    registry,
)
from pipeline.ingest.social.http import SocialHttp
from pipeline.items import Source

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SocialOutcome:
    source: str
    result: ConnectorResult | None = None
    error: str | None = None
    error_kind: str | None = None
    # For payload errors: what to keep in the quarantine table.
    bad_url: str | None = None
    bad_excerpt: bytes | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def is_social(kind: str) -> bool:
    return kind in registry()


async def _one(
    client: httpx.AsyncClient,
    ctx: ConnectorContext,
    source: Source,
    cursor: str | None,
    host_locks: dict[str, asyncio.Semaphore],
) -> SocialOutcome:
    settings = ctx.settings
    connector = registry()[source.kind]
    http = SocialHttp(client, settings, source)
    pages = max_pages(source, settings)
    # A total deadline per source: each page may take a full timeout, plus allowed waits.
    deadline = settings.fetch_timeout_s * (pages + 2) + settings.social_max_wait_s * 2
    async with host_locks[urlsplit(source.url).hostname or ""]:
        try:
            result = await asyncio.wait_for(
                connector.fetch(http, ctx, source, cursor), timeout=deadline
            )
        except PayloadError as exc:
            return SocialOutcome(
                source.name,
                error=f"{source.name}: {exc}",
                error_kind="permanent",
                bad_url=exc.url,
                bad_excerpt=exc.excerpt,
            )
        except SentinelaError as exc:
            return SocialOutcome(source.name, error=str(exc), error_kind=kind_of(exc))
        except (TimeoutError, httpx.TimeoutException) as exc:
            err = TransientError(f"timed out reading {source.name}: {type(exc).__name__}")
            return SocialOutcome(source.name, error=str(err), error_kind="transient")
        except httpx.HTTPError as exc:
            err = TransientError(f"{type(exc).__name__} reading {source.name}: {exc}")
            return SocialOutcome(source.name, error=str(err), error_kind="transient")
        except Exception as exc:  # a connector bug on an odd payload stays with its source
            log.exception("%s: unexpected error", source.name)
            bug = PermanentError(f"{source.name}: unexpected {type(exc).__name__}: {exc}")
            return SocialOutcome(source.name, error=str(bug), error_kind="permanent")
    return SocialOutcome(source.name, result=result)


async def collect_async(
    sources: Sequence[Source], cursors: dict[str, str | None], settings: Settings
) -> list[SocialOutcome]:
    timeout = httpx.Timeout(settings.fetch_timeout_s, connect=min(10.0, settings.fetch_timeout_s))
    host_locks: dict[str, asyncio.Semaphore] = collections.defaultdict(
        lambda: asyncio.Semaphore(settings.per_host_concurrency)
    )
    ctx = ConnectorContext(settings)
    async with httpx.AsyncClient(
        timeout=timeout,
        follow_redirects=False,
        headers={"User-Agent": settings.user_agent, "Accept-Encoding": "gzip, deflate"},
        trust_env=False,
    ) as client:
        return list(
            await asyncio.gather(
                *(_one(client, ctx, s, cursors.get(s.name), host_locks) for s in sources)
            )
        )


def collect(
    sources: Sequence[Source], cursors: dict[str, str | None], settings: Settings
) -> list[SocialOutcome]:
    """Read every social source; returns one outcome per source, in order."""
    return asyncio.run(collect_async(sources, cursors, settings))
