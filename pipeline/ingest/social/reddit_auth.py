"""Reddit app-only OAuth (the client_credentials grant) for the Reddit connector.

    POST {token_url}   basic auth client_id:client_secret, grant_type=client_credentials
                       -> {"access_token": ..., "token_type": "bearer", "expires_in": 86400}
    GET  {oauth_url}/r/<sub>/new   Authorization: bearer <access_token>

One token per run and app, shared by every Reddit source of the run. A 401 from the API host
means the token expired or was revoked: a new one is fetched once and the request retried.
"""

from __future__ import annotations

import asyncio
import base64
import time
from dataclasses import dataclass
from typing import Any

from pipeline.config import Settings
from pipeline.errors import PermanentError
from pipeline.ingest.social.base import ConnectorContext, PayloadError, RateLimitedError
from pipeline.ingest.social.http import Response, SocialHttp, retry_after_s

TOKEN_URL = "https://www.reddit.com/api/v1/access_token"
OAUTH_URL = "https://oauth.reddit.com"
CHECK = "check SENTINELA_REDDIT_CLIENT_ID and SENTINELA_REDDIT_CLIENT_SECRET"
# Renew a little before the stated expiry so a request never leaves with a dying token.
_EXPIRY_MARGIN_S = 60.0
_DEFAULT_EXPIRES_S = 3600.0


class CredentialsError(PermanentError):
    """Reddit rejected the app's id/secret: no retry in this run will change that."""


def has_app_credentials(settings: Settings) -> bool:
    return bool(settings.reddit_client_id and settings.reddit_client_secret)


def half_configured(settings: Settings) -> str | None:
    """A note when only one of the two variables is set (the source then reads anonymously)."""
    if has_app_credentials(settings) or not (
        settings.reddit_client_id or settings.reddit_client_secret
    ):
        return None
    present, missing = (
        ("SENTINELA_REDDIT_CLIENT_ID", "SENTINELA_REDDIT_CLIENT_SECRET")
        if settings.reddit_client_id
        else ("SENTINELA_REDDIT_CLIENT_SECRET", "SENTINELA_REDDIT_CLIENT_ID")
    )
    return f"{present} is set but {missing} is not; read anonymously"


def is_status(exc: BaseException, status: int) -> bool:
    # error_for_status() words every HTTP failure as "HTTP <status> from <url>".
    return str(exc).startswith(f"HTTP {status} ")


@dataclass(frozen=True)
class _Token:
    value: str
    expires_at: float  # time.monotonic()


async def _request_token(http: SocialHttp, settings: Settings, token_url: str) -> _Token:
    pair = f"{settings.reddit_client_id}:{settings.reddit_client_secret}".encode()
    try:
        resp = await http.request(
            "POST",
            token_url,
            headers={
                "Authorization": f"Basic {base64.b64encode(pair).decode('ascii')}",
                "Accept": "application/json",
            },
            form={"grant_type": "client_credentials"},
        )
    except PermanentError as exc:
        if any(is_status(exc, s) for s in (400, 401, 403)):
            raise CredentialsError(f"Reddit refused the app credentials ({exc}); {CHECK}") from exc
        raise
    data = resp.json()
    if isinstance(data, dict) and isinstance(data.get("access_token"), str):
        expires = data.get("expires_in")
        lifetime = float(expires) if isinstance(expires, int | float) else _DEFAULT_EXPIRES_S
        return _Token(data["access_token"], time.monotonic() + lifetime - _EXPIRY_MARGIN_S)
    if isinstance(data, dict) and data.get("error"):
        # Reddit answers some refusals (a wrong grant for this app type) with 200 + error.
        raise CredentialsError(
            f"Reddit refused the app credentials at {resp.url}: {data['error']!r:.100}; {CHECK}"
        )
    raise PayloadError(
        f"unexpected payload from {resp.url}: no access_token", resp.url, resp.body[:2000]
    )


async def access_token(
    http: SocialHttp, ctx: ConnectorContext, token_url: str, stale: str | None = None
) -> str:
    """The run's token for this app; `stale` is one the API just refused, so a new one is
    fetched unless another source has already replaced it."""
    key = f"reddit-token:{token_url}:{ctx.settings.reddit_client_id}"
    async with ctx.lock(key):
        cached = ctx.shared.get(key)
        if isinstance(cached, str):
            # Rejected credentials stay rejected for the run: the other Reddit sources get
            # the same error without asking the token endpoint again.
            raise CredentialsError(cached)
        if (
            isinstance(cached, _Token)
            and cached.value != stale
            and cached.expires_at > time.monotonic()
        ):
            return cached.value
        try:
            token = await _request_token(http, ctx.settings, token_url)
        except CredentialsError as exc:
            ctx.shared[key] = str(exc)
            raise
        ctx.shared[key] = token
        return token.value


class AppSession:
    """One source's OAuth requests: bearer header, one token refresh on 401."""

    def __init__(self, http: SocialHttp, ctx: ConnectorContext, token_url: str) -> None:
        self.http = http
        self.ctx = ctx
        self.token_url = token_url

    async def get_json(
        self, url: str, params: dict[str, str] | None = None
    ) -> tuple[Any, Response]:
        token = await access_token(self.http, self.ctx, self.token_url)
        try:
            return await self._get(url, params, token)
        except PermanentError as exc:
            if not is_status(exc, 401):
                raise
        token = await access_token(self.http, self.ctx, self.token_url, stale=token)
        try:
            return await self._get(url, params, token)
        except PermanentError as exc:
            if is_status(exc, 401):
                raise CredentialsError(
                    f"{exc} even with a fresh access token from {self.token_url}; {CHECK}"
                ) from exc
            raise

    async def _get(
        self, url: str, params: dict[str, str] | None, token: str
    ) -> tuple[Any, Response]:
        return await self.http.get_json(url, params, {"Authorization": f"bearer {token}"})


async def respect_budget(http: SocialHttp, resp: Response) -> None:
    """Before the next request: with X-Ratelimit-Remaining at 0, wait for X-Ratelimit-Reset
    as a 429 would be waited for, or raise RateLimitedError when that is too long."""
    raw = resp.headers.get("x-ratelimit-remaining")
    try:
        remaining = float(raw) if raw else None
    except ValueError:
        return
    # Reddit sends the count as a float ("599.0"); below one whole request is none left.
    if remaining is None or remaining >= 1:
        return
    wait = retry_after_s(resp.headers)
    if wait is None or wait > http.settings.social_max_wait_s:
        raise RateLimitedError(resp.url, wait)
    await asyncio.sleep(wait)
