"""SSRF guard: a feed URL must not reach into the machine or its private network."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from urllib.parse import urlsplit

from pipeline.errors import BlockedAddressError, PermanentError, TransientError


def is_public_ip(ip: str) -> bool:
    addr = ipaddress.ip_address(ip)
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    return not (
        addr.is_private
        or addr.is_loopback
        or addr.is_link_local
        or addr.is_multicast
        or addr.is_reserved
        or addr.is_unspecified
    )


async def check_url(url: str, allow_private: bool) -> None:
    """Raise unless `url` is http(s) and (when private hosts are not allowed) every address
    its host resolves to is public. Called for the first URL and again for every redirect."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise PermanentError(f"refusing non-HTTP URL {url!r}")
    host = parts.hostname
    if not host:
        raise PermanentError(f"URL has no host: {url!r}")
    if allow_private:
        return
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(
            host, parts.port or (443 if parts.scheme == "https" else 80), type=socket.SOCK_STREAM
        )
    except socket.gaierror as exc:
        raise TransientError(f"cannot resolve {host}: {exc}") from exc
    for info in infos:
        ip = str(info[4][0])
        if not is_public_ip(ip):
            raise BlockedAddressError(
                f"{host} resolves to non-public address {ip}; set allow_private: true on the "
                "source or SENTINELA_ALLOW_PRIVATE_HOSTS=1 to allow it"
            )
