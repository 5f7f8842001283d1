from __future__ import annotations

from urllib.parse import parse_qsl, urlsplit

from hypothesis import given
from hypothesis import strategies as st

from pipeline.ingest.canonical import canonical_url


def test_tracking_parameters_fragments_and_hosts_are_dropped() -> None:
    a = canonical_url(
        "https://www.Example.com/2026/11/story/?utm_source=rss&utm_medium=feed&id=7#comments"
    )
    b = canonical_url("http://m.example.com/2026/11/story?id=7&fbclid=XYZ&gclid=1")
    c = canonical_url("https://amp.example.com/2026/11/story/amp?id=7")
    assert a == b == c == "https://example.com/2026/11/story?id=7"


def test_meaningful_query_is_kept_and_sorted() -> None:
    assert canonical_url("https://example.com/a?b=2&a=1") == "https://example.com/a?a=1&b=2"


def test_non_http_is_left_alone() -> None:
    assert canonical_url("  tag:example.com,2026:1 ") == "tag:example.com,2026:1"


segment = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-_", min_size=1, max_size=12)
param = st.tuples(segment, segment)


@given(
    host=st.lists(segment, min_size=2, max_size=3).map(".".join),
    path=st.lists(segment, max_size=4).map(lambda p: "/" + "/".join(p)),
    params=st.lists(param, max_size=4),
    tracking=st.lists(
        st.sampled_from(["utm_source", "utm_campaign", "fbclid", "gclid"]), max_size=3
    ),
)
def test_canonicalisation_is_idempotent_and_strips_tracking(host, path, params, tracking) -> None:
    query = "&".join(f"{k}={v}" for k, v in params + [(t, "x") for t in tracking])
    url = f"https://{host}{path}" + (f"?{query}" if query else "")
    once = canonical_url(url)
    assert canonical_url(once) == once
    keys = {k for k, _ in parse_qsl(urlsplit(once).query)}
    assert not keys & {"utm_source", "utm_campaign", "fbclid", "gclid"}


@given(st.text(max_size=200))
def test_never_raises_on_arbitrary_text(text: str) -> None:
    assert isinstance(canonical_url(text), str)


# --- AMP and mobile variants, more tracking parameters -------------------------------------

AMP_AND_MOBILE_VARIANTS = [
    "https://www-primicias-ec.cdn.ampproject.org/c/s/www.primicias.ec/noticias/seguridad/litoral-carcel/",
    "https://www-primicias-ec.cdn.ampproject.org/v/s/www.primicias.ec/noticias/seguridad/litoral-carcel/amp/?amp_js_v=0.1&usqp=mq331AQ",
    "https://www.google.com/amp/s/www.primicias.ec/noticias/seguridad/litoral-carcel/amp/",
    "https://www.google.com.ec/amp/s/amp.primicias.ec/noticias/seguridad/litoral-carcel",
    "https://www.primicias.ec/amp/noticias/seguridad/litoral-carcel",
    "https://www.primicias.ec/noticias/seguridad/litoral-carcel/amp.html",
    "https://www.primicias.ec/noticias/seguridad/litoral-carcel?outputType=amp",
    "https://www.primicias.ec/noticias/seguridad/litoral-carcel?_amp=true&ampshare=x",
    "https://m.primicias.ec/noticias/seguridad/litoral-carcel",
    "https://mobile.primicias.ec/noticias/seguridad/litoral-carcel",
    "https://movil.primicias.ec/noticias/seguridad/litoral-carcel",
    "https://amp.primicias.ec/noticias/seguridad/litoral-carcel",
]


def test_amp_cache_viewer_amp_paths_and_mobile_hosts_collapse() -> None:
    want = "https://primicias.ec/noticias/seguridad/litoral-carcel"
    for url in AMP_AND_MOBILE_VARIANTS:
        assert canonical_url(url) == want, url


def test_amp_suffixed_pages_and_plain_http_cache() -> None:
    assert canonical_url("https://g1.globo.com/sp/noticia/2026/11/24/rebeliao.ghtml") == (
        "https://g1.globo.com/sp/noticia/2026/11/24/rebeliao.ghtml"
    )
    assert (
        canonical_url("https://example.com/news/story.amp.html")
        == "https://example.com/news/story.html"
    )
    assert (
        canonical_url("https://example.com/news/story-amp.html")
        == "https://example.com/news/story.html"
    )
    # no `s/`: the origin is plain http, and http/https copies are one story anyway
    assert (
        canonical_url("https://example-com.cdn.ampproject.org/c/example.com/a/b")
        == "https://example.com/a/b"
    )


def test_words_that_merely_contain_amp_are_kept() -> None:
    for url in (
        "https://example.com/news/campamento-amplio",
        "https://example.com/amparo/story",
        "https://example.com/news/guitar-amp",
        "https://example.com/news/example",
    ):
        assert canonical_url(url) == url


def test_more_tracking_parameters_are_dropped() -> None:
    url = (
        "https://example.com/s?id=4&at_medium=x&WT.mc_id=1&ns_campaign=n&_hsenc=h&_hsmi=m&ttclid=t"
        "&twclid=w&fb_action_ids=3&li_fat_id=l&srsltid=s&icid=i&__amp_source_origin=o&amp_gsa=1"
    )
    assert canonical_url(url) == "https://example.com/s?id=4"


def test_unrelated_google_and_nested_caches_are_not_unwrapped() -> None:
    assert (
        canonical_url("https://www.google.com/search?q=tocoron")
        == "https://google.com/search?q=tocoron"
    )
    nested = "https://x.cdn.ampproject.org/c/s/y.cdn.ampproject.org/c/s/e.com/a"
    assert canonical_url(nested) == nested


@given(
    host=st.lists(segment, min_size=2, max_size=3).map(".".join),
    path=st.lists(segment, min_size=1, max_size=4).map(lambda p: "/" + "/".join(p)),
    params=st.lists(param, max_size=3),
    variant=st.sampled_from(["cache", "viewer", "amp_dir", "amp_html", "amp_query", "m", "mobile"]),
)
def test_amp_and_mobile_variant_equals_the_original(host, path, params, variant) -> None:
    query = "&".join(f"{k}={v}" for k, v in params)
    q = f"?{query}" if query else ""
    original = f"https://{host}{path}{q}"
    dashed = host.replace("-", "--").replace(".", "-")
    url = {
        "cache": f"https://{dashed}.cdn.ampproject.org/c/s/{host}{path}{q}",
        "viewer": f"https://www.google.com/amp/s/{host}{path}{q}",
        "amp_dir": f"https://{host}{path}/amp/{q}",
        "amp_html": f"https://{host}{path}/amp.html{q}",
        "amp_query": f"https://{host}{path}?" + "&".join(filter(None, [query, "outputType=amp"])),
        "m": f"https://m.{host}{path}{q}",
        "mobile": f"https://mobile.{host}{path}{q}",
    }[variant]
    assert canonical_url(url) == canonical_url(original)
