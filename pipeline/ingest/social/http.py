"""HTTP for connectors: the same guards as feed fetching (SSRF check on every hop, body cap,
no proxies from the environment) plus the platforms' rate-limit conventions.

A 429 is retried here when the platform asks for a short wait (up to
`settings.social_max_wait_s`); a longer wait raises RateLimitedError so the connector can
stop this source for this run and keep its cursor.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urljoin

import httpx

from pipeline.config import Settings
from pipeline.errors import PermanentError, error_for_status
from pipeline.ingest.fetch import _read_capped
from pipeline.ingest.netguard import check_url
from pipeline.ingest.social.base import PayloadError, RateLimitedError
from pipeline.items import Source

log = logging.getLogger(__name__)
MAX_REDIRECTS = 5
MAX_429_RETRIES = 2
# Header names are case-insensitive in httpx. X sends x-rate-limit-reset (epoch seconds),
# Bluesky ratelimit-reset (epoch seconds), Reddit x-ratelimit-reset (seconds from now),
# Mastodon X-RateLimit-Reset (an ISO 8601 time).
_RESET_HEADERS = ("x-rate-limit-reset", "ratelimit-reset", "x-ratelimit-reset")


@dataclass(frozen=True)
class Response:
    url: str
    status: int
    headers: httpx.Headers
    body: bytes

    def json(self) -> Any:
        try:
            return json.loads(self.body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise PayloadError(
                f"response from {self.url} is not JSON: {exc}", self.url, self.body[:2000]
            ) from exc

    def text(self) -> str:
        return self.body.decode("utf-8", "replace")


def retry_after_s(headers: httpx.Headers, now: datetime | None = None) -> float | None:
    """Seconds the server asks us to wait, from Retry-After or a rate-limit reset header;
    None when it does not say."""
    now = now or datetime.now(UTC)
    raw = headers.get("retry-after")
    if raw:
        raw = raw.strip()
        try:
            return max(0.0, float(raw))
        except ValueError:
            pass
        try:
            when = parsedate_to_datetime(raw)
        except (TypeError, ValueError):
            when = None
        if when is not None:
            if when.tzinfo is None:
                when = when.replace(tzinfo=UTC)
            return max(0.0, (when - now).total_seconds())
    for name in _RESET_HEADERS:
        raw = headers.get(name)
        if not raw:
            continue
        raw = raw.strip()
        try:
            value = float(raw)
        except ValueError:
            try:
                when = datetime.fromisoformat(raw.replace("Z", "+00:00"))
            except ValueError:
                continue
            if when.tzinfo is None:
                when = when.replace(tzinfo=UTC)
            return max(0.0, (when - now).total_seconds())
        # Epoch timestamps are large; "seconds until reset" values are small.
        return max(0.0, value - now.timestamp()) if value > 1_000_000_000 else max(0.0, value)
    return None


class SocialHttp:
    """One source's view of the shared client: knows whether private hosts are allowed."""

    def __init__(self, client: httpx.AsyncClient, settings: Settings, source: Source) -> None:
        self.client = client
        self.settings = settings
        self.source = source
        self.allow_private = source.allow_private or settings.allow_private_hosts
        self.requests = 0

    async def get(
        self,
        url: str,
        params: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
    ) -> Response:
        return await self.request("GET", url, params=params, headers=headers)

    async def get_json(
        self,
        url: str,
        params: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[Any, Response]:
        resp = await self.get(url, params, {"Accept": "application/json", **(headers or {})})
        return resp.json(), resp

    async def request(
        self,
        method: str,
        url: str,
        params: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
        json_body: Any = None,
        form: dict[str, str] | None = None,
    ) -> Response:
        for attempt in range(MAX_429_RETRIES + 1):
            resp = await self._once(method, url, params, headers, json_body, form)
            if resp.status != 429:
                return resp
            wait = retry_after_s(resp.headers)
            if wait is None or wait > self.settings.social_max_wait_s or attempt == MAX_429_RETRIES:
                raise RateLimitedError(resp.url, wait)
            log.info("%s: 429 from %s, waiting %.1fs", self.source.name, resp.url, wait)
            await asyncio.sleep(wait)
        raise AssertionError("unreachable")

    async def _once(
        self,
        method: str,
        url: str,
        params: dict[str, str] | None,
        headers: dict[str, str] | None,
        json_body: Any,
        form: dict[str, str] | None = None,
    ) -> Response:
        request_url = str(httpx.URL(url, params=params)) if params else url
        for _ in range(MAX_REDIRECTS + 1):
            await check_url(request_url, self.allow_private)
            self.requests += 1
            async with self.client.stream(
                method, request_url, headers=headers, json=json_body, data=form
            ) as response:
                status = response.status_code
                if status in (301, 302, 303, 307, 308):
                    location = response.headers.get("location")
                    if not location:
                        raise PermanentError(f"redirect without Location from {request_url}")
                    request_url = urljoin(request_url, location)
                    if status == 303:
                        method, json_body, form = "GET", None, None
                    continue
                if status == 429:
                    return Response(request_url, status, response.headers, b"")
                if status >= 400:
                    raise error_for_status(status, request_url)
                body = await _read_capped(response, self.settings.max_body_bytes)
                return Response(request_url, status, response.headers, body)
        raise PermanentError(f"more than {MAX_REDIRECTS} redirects starting at {url}")
