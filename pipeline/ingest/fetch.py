"""Polite, bounded, concurrent HTTP fetching of feeds.

We fetch bytes ourselves (feedparser never sees a URL) so that every request goes through
one place with conditional GET, a body cap, a total deadline, per-host limits and the SSRF
guard re-checked on every redirect.
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

import httpx

from pipeline.config import Settings
from pipeline.errors import (
    BodyTooLargeError,
    PermanentError,
    SentinelaError,
    TransientError,
    error_for_status,
    kind_of,
)
from pipeline.ingest.netguard import check_url
from pipeline.items import Source

MAX_REDIRECTS = 5


@dataclass(frozen=True)
class FetchState:
    """Validators remembered from the previous successful fetch."""

    etag: str | None = None
    last_modified: str | None = None


@dataclass(frozen=True)
class FetchResult:
    source: str
    url: str
    status: int | None = None
    body: bytes | None = None
    content_type: str | None = None
    etag: str | None = None
    last_modified: str | None = None
    not_modified: bool = False
    error: str | None = None
    error_kind: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


async def _read_capped(response: httpx.Response, cap: int) -> bytes:
    declared = response.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > cap:
        raise BodyTooLargeError(f"declared body of {declared} bytes exceeds cap of {cap}")
    chunks: list[bytes] = []
    size = 0
    # aiter_bytes yields decoded bytes, so the cap also stops gzip bombs.
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size > cap:
            raise BodyTooLargeError(f"body exceeds cap of {cap} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


async def _fetch_one(
    client: httpx.AsyncClient, source: Source, state: FetchState, settings: Settings
) -> FetchResult:
    allow_private = source.allow_private or settings.allow_private_hosts
    headers = {
        "Accept": "application/rss+xml, application/atom+xml, application/xml;q=0.9, */*;q=0.5"
    }
    if state.etag:
        headers["If-None-Match"] = state.etag
    if state.last_modified:
        headers["If-Modified-Since"] = state.last_modified
    url = source.url
    for _ in range(MAX_REDIRECTS + 1):
        await check_url(url, allow_private)
        async with client.stream("GET", url, headers=headers) as response:
            if response.status_code in (301, 302, 303, 307, 308):
                location = response.headers.get("location")
                if not location:
                    raise PermanentError(f"redirect without Location from {url}")
                url = urljoin(url, location)
                continue
            if response.status_code == 304:
                return FetchResult(
                    source.name,
                    url,
                    304,
                    not_modified=True,
                    etag=state.etag,
                    last_modified=state.last_modified,
                )
            if response.status_code >= 400:
                raise error_for_status(response.status_code, url)
            body = await _read_capped(response, settings.max_body_bytes)
            return FetchResult(
                source.name,
                url,
                response.status_code,
                body=body,
                content_type=response.headers.get("content-type"),
                etag=response.headers.get("etag"),
                last_modified=response.headers.get("last-modified"),
            )
    raise PermanentError(f"more than {MAX_REDIRECTS} redirects starting at {source.url}")


async def _guarded(
    client: httpx.AsyncClient,
    source: Source,
    state: FetchState,
    settings: Settings,
    host_locks: dict[str, asyncio.Semaphore],
    global_lock: asyncio.Semaphore,
) -> FetchResult:
    host = urlsplit(source.url).hostname or ""
    async with global_lock, host_locks[host]:
        try:
            # A total deadline: read timeouts alone do not stop a server that drips a byte
            # every few seconds.
            return await asyncio.wait_for(
                _fetch_one(client, source, state, settings), timeout=settings.fetch_timeout_s * 2
            )
        except SentinelaError as exc:
            return FetchResult(source.name, source.url, error=str(exc), error_kind=kind_of(exc))
        except (TimeoutError, httpx.TimeoutException) as exc:
            err = TransientError(f"timed out fetching {source.url}: {type(exc).__name__}")
            return FetchResult(source.name, source.url, error=str(err), error_kind="transient")
        except httpx.HTTPError as exc:
            err = TransientError(f"{type(exc).__name__} fetching {source.url}: {exc}")
            return FetchResult(source.name, source.url, error=str(err), error_kind="transient")


async def fetch_all_async(
    sources: Sequence[Source], states: dict[str, FetchState], settings: Settings
) -> list[FetchResult]:
    timeout = httpx.Timeout(settings.fetch_timeout_s, connect=min(10.0, settings.fetch_timeout_s))
    limits = httpx.Limits(max_connections=settings.fetch_concurrency, max_keepalive_connections=20)
    host_locks: dict[str, asyncio.Semaphore] = collections.defaultdict(
        lambda: asyncio.Semaphore(settings.per_host_concurrency)
    )
    global_lock = asyncio.Semaphore(settings.fetch_concurrency)
    async with httpx.AsyncClient(
        timeout=timeout,
        limits=limits,
        follow_redirects=False,
        headers={"User-Agent": settings.user_agent, "Accept-Encoding": "gzip, deflate"},
        trust_env=False,
    ) as client:
        tasks = [
            _guarded(client, s, states.get(s.name, FetchState()), settings, host_locks, global_lock)
            for s in sources
        ]
        return list(await asyncio.gather(*tasks))


def fetch_all(
    sources: Sequence[Source], states: dict[str, FetchState], settings: Settings
) -> list[FetchResult]:
    return asyncio.run(fetch_all_async(sources, states, settings))
