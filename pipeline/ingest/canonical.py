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
    # AMP viewers and caches
    "_amp",
    "usqp",
    "ampshare",
    "aoh",
    # ad and social click ids, newsletter and analytics tags
    "ttclid",
    "twclid",
    "li_fat_id",
    "rb_clickid",
    "s_kwcid",
    "ef_id",
    "srsltid",
    "gclsrc",
    "_hsenc",
    "_hsmi",
    "hsctatracking",
    "_openstat",
    "icid",
    "intcmp",
    "sc_cid",
    "soc_src",
    "soc_trk",
    "sr_share",
    "tbref",
    "rss_source",
}
_TRACKING_PREFIXES = (
    "utm_",
    "pk_",
    "hsa_",
    "oly_",
    "vero_",
    "at_",
    "amp_",
    "__amp_",
    "wt.",
    "ns_",
    "fb_",
    "ga_",
    "trk_",
)
# movil. is the Spanish-language sites' mobile host.
_MOBILE_HOST = re.compile(r"^(m|mobile|movil|amp|www)\.", re.IGNORECASE)
_AMP_PATH = re.compile(
    r"(/amp(?:/index)?\.html?$|/amp/?$|/amp(?=/)|\.amp(?=\.html?$|$)|-amp(?=\.html?$))",
    re.IGNORECASE,
)
# Google's AMP cache (https://www-example-com.cdn.ampproject.org/c/s/www.example.com/a) and
# Google Search's AMP viewer (https://www.google.com/amp/s/www.example.com/a) wrap the
# publisher's URL in their own; `s/` marks an https origin.
_AMP_CACHE_PATH = re.compile(r"^/(?:c|v|i|r|wp)/(s/)?([^/?#]+\.[^/?#]+)(/.*)?$", re.IGNORECASE)
_AMP_VIEWER_PATH = re.compile(r"^/amp/(s/)?([^/?#]+\.[^/?#]+)(/.*)?$", re.IGNORECASE)
_AMP_CACHE_HOSTS = (".cdn.ampproject.org", ".ampproject.net", ".bing-amp.com")
_GOOGLE_HOST = re.compile(r"^(www\.)?google\.[a-z.]{2,6}$")
_DEFAULT_PORTS = {"http": 80, "https": 443}


def canonical_url(url: str) -> str:
    """Return a stable key for `url`.

    Unwraps Google AMP cache and viewer URLs to the publisher's URL, then
    lower-cases scheme and host, strips `www.`/`m.`/`mobile.`/`amp.` host prefixes, default ports,
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
    inner = _unwrap_amp_cache(host, parts.path, parts.query)
    if inner is not None:
        return canonical_url(inner)
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


def _unwrap_amp_cache(host: str, path: str, query: str) -> str | None:
    """The publisher's URL inside an AMP cache or viewer URL, else None."""
    if host.endswith(_AMP_CACHE_HOSTS):
        m = _AMP_CACHE_PATH.match(path)
    elif _GOOGLE_HOST.match(host):
        m = _AMP_VIEWER_PATH.match(path)
    else:
        return None
    if m is None:
        return None
    scheme = "https" if m.group(1) else "http"
    inner_host = m.group(2).lower()
    if inner_host.endswith(_AMP_CACHE_HOSTS) or _GOOGLE_HOST.match(inner_host):
        return None  # a cache of a cache: refuse to recurse
    return f"{scheme}://{inner_host}{m.group(3) or '/'}" + (f"?{query}" if query else "")
