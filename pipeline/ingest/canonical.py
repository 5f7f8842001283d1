"""Canonical URLs: the same story reached through tracking links, AMP or mobile hosts is one URL."""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

_TRACKING_PARAMS = {
    "fbclid",
    "gclid",
    "dclid",
    "gbraid",
    "wbraid",
    "msclkid",
    "yclid",
    "igshid",
    "mc_cid",
    "mc_eid",
    "_ga",
    "_gl",
    "ref",
    "ref_src",
    "ref_url",
    "cmpid",
    "ncid",
    "ocid",
    "spm",
    "share",
    "s_cid",
    "smid",
    "output",
    "amp",
    "outputtype",
    "xtor",
    "at_medium",
    "at_campaign",
    "ito",
    "mbid",
    "cid",
    "__twitter_impression",
    "taid",
    "mkt_tok",
}
_TRACKING_PREFIXES = ("utm_", "pk_", "hsa_", "oly_", "vero_", "at_")
_MOBILE_HOST = re.compile(r"^(m|mobile|amp|www)\.", re.IGNORECASE)
_AMP_PATH = re.compile(r"(/amp/?$|/amp(?=/)|\.amp(?=\.html?$|$))", re.IGNORECASE)
_DEFAULT_PORTS = {"http": 80, "https": 443}


def canonical_url(url: str) -> str:
    """Return a stable key for `url`.

    Lower-cases scheme and host, strips `www.`/`m.`/`amp.` host prefixes, default ports,
    fragments, tracking parameters and AMP path markers, and sorts the remaining query so
    parameter order does not split one story in two. Non-HTTP strings are returned stripped.
    """
    raw = url.strip()
    try:
        parts = urlsplit(raw)
    except ValueError:
        return raw
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.hostname:
        return raw
    host = parts.hostname.lower().rstrip(".")
    while _MOBILE_HOST.match(host) and host.count(".") >= 2:
        host = _MOBILE_HOST.sub("", host, count=1)
    try:
        port = parts.port
    except ValueError:
        port = None
    netloc = host if port in (None, _DEFAULT_PORTS.get(scheme)) else f"{host}:{port}"
    path = _AMP_PATH.sub("", parts.path) or "/"
    path = re.sub(r"/{2,}", "/", path)
    if len(path) > 1 and path.endswith("/"):
        path = path[:-1]
    query = [
        (k, v)
        for k, v in parse_qsl(parts.query, keep_blank_values=True)
        if k.lower() not in _TRACKING_PARAMS and not k.lower().startswith(_TRACKING_PREFIXES)
    ]
    query.sort()
    # https and http copies of one page are the same story.
    return urlunsplit(("https", netloc, path, urlencode(query), ""))
