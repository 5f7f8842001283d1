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
