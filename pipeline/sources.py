"""Load and validate `sources.yaml`.

Schema::

    sources:
      - name: insightcrime          # unique, used as the key in the archive
        kind: rss                   # rss (RSS 2.0 / RSS 1.0 / Atom), or a social kind below
        url: https://insightcrime.org/feed/
        lang: en                    # optional: en | es | pt (detected per item when absent)
        country: VE                 # optional ISO 3166 code or region
        tags: [crime-research]      # optional
        allow_private: false        # optional: may this source live on a private/loopback host
        note: one line for humans   # optional
        fulltext: false             # optional: fetch each new item's page and extract the
                                    # article text when the feed only carries a teaser
        options: {}                 # optional; per kind, see below

Social kinds read one platform through its public API (pipeline/ingest/social/). Their
`url` is the API base and may be omitted: it defaults to the platform's real host (tests
point it at a local server). What to read goes in `options`, exactly one of the listed
alternatives; every social kind also takes `max_pages` (default
SENTINELA_SOCIAL_MAX_PAGES). Where the last run stopped is kept per source in the
archive's `sources.cursor` column.

    kind: mastodon    url: instance, default https://mastodon.social
        options: {hashtag: TrenDeAragua}     hashtag timeline (no `#` needed)
              or {account_id: "10912…"}      an account's statuses
              or {account: username}         the same, looked up on the instance
    kind: bluesky     url: AppView, default https://public.api.bsky.app
        options: {query: "Tren de Aragua"}   post search, newest first; optional `lang: es`.
                                             Needs SENTINELA_BLUESKY_HANDLE and
                                             SENTINELA_BLUESKY_APP_PASSWORD, else skipped
              or {actor: handle.bsky.social} an account's posts (no login needed)
        optional `pds_url` overrides SENTINELA_BLUESKY_PDS_URL for the login
    kind: reddit      url: default https://www.reddit.com
        options: {subreddit: venezuela}      newest posts
              or {subreddit: brasil, query: "presídio"}   search within the subreddit
        with SENTINELA_REDDIT_CLIENT_ID/SECRET: app-only OAuth; optional `oauth_url`
        (default https://oauth.reddit.com) and `token_url` (default …/api/v1/access_token)
    kind: telegram    url: default https://t.me
        options: {channel: name}             a public channel's web preview (t.me/s/name)
    kind: x           url: API, default https://api.x.com
        options: {query: '"Tren de Aragua" -is:retweet'}  v2 recent search; needs
                                             SENTINELA_X_BEARER_TOKEN, else skipped
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from pipeline.items import Source


@dataclass(frozen=True)
class SocialKind:
    default_url: str
    one_of: tuple[str, ...]  # exactly one of these options says what to read
    optional: tuple[str, ...] = ()


SOCIAL_KINDS = {
    "mastodon": SocialKind("https://mastodon.social", ("hashtag", "account_id", "account")),
    "bluesky": SocialKind("https://public.api.bsky.app", ("query", "actor"), ("lang", "pds_url")),
    "reddit": SocialKind(
        "https://www.reddit.com", ("subreddit",), ("query", "oauth_url", "token_url")
    ),
    "telegram": SocialKind("https://t.me", ("channel",)),
    "x": SocialKind("https://api.x.com", ("query",)),
}
_SOCIAL_COMMON = ("max_pages",)
KNOWN_KINDS = {"rss", *SOCIAL_KINDS}
# Sources that `sentinela archive import` creates: never fetched, never alerted, and not
# allowed in sources.yaml (not in KNOWN_KINDS).
IMPORT_KIND = "import"
_OPTIONAL = {"lang", "country", "tags", "allow_private", "note", "options", "fulltext"}


class SourcesError(ValueError):
    """The sources file cannot be used; the message says where and why."""


def _entry(raw: Any, index: int, path: Path) -> Source:
    where = f"{path}: sources[{index}]"
    if not isinstance(raw, dict):
        raise SourcesError(f"{where}: each source must be a mapping, got {type(raw).__name__}")
    social = SOCIAL_KINDS.get(str(raw.get("kind") or "").lower())
    required = ("name", "kind") if social else ("name", "kind", "url")
    missing = [k for k in required if not raw.get(k)]
    if missing:
        raise SourcesError(f"{where}: missing required key(s): {', '.join(missing)}")
    unknown = set(raw) - {"name", "kind", "url"} - _OPTIONAL
    if unknown:
        raise SourcesError(f"{where} ({raw['name']}): unknown key(s): {', '.join(sorted(unknown))}")
    kind = str(raw["kind"]).lower()
    if kind not in KNOWN_KINDS:
        raise SourcesError(
            f"{where} ({raw['name']}): unknown kind {kind!r}; expected one of {sorted(KNOWN_KINDS)}"
        )
    tags = raw.get("tags") or []
    if isinstance(tags, str):
        tags = [tags]
    options = raw.get("options") or {}
    if not isinstance(options, dict):
        raise SourcesError(f"{where} ({raw['name']}): options must be a mapping")
    url = str(raw.get("url") or (social.default_url if social else ""))
    if social:
        _check_social_options(f"{where} ({raw['name']})", kind, social, options)
    if "fulltext" in raw:
        if not isinstance(raw["fulltext"], bool):
            raise SourcesError(f"{where} ({raw['name']}): fulltext must be true or false")
        # Kept with the options so Source needs no new field; read by ingest.fulltext.
        options = {**options, "fulltext": "true" if raw["fulltext"] else "false"}
    return Source(
        name=str(raw["name"]),
        kind=kind,
        url=url,
        lang=str(raw["lang"]).lower() if raw.get("lang") else None,
        country=str(raw["country"]) if raw.get("country") else None,
        tags=tuple(str(t) for t in tags),
        allow_private=bool(raw.get("allow_private", False)),
        note=str(raw["note"]) if raw.get("note") else None,
        options={str(k): str(v) for k, v in options.items()},
    )


def _check_social_options(where: str, kind: str, spec: SocialKind, options: dict[Any, Any]) -> None:
    allowed = {*spec.one_of, *spec.optional, *_SOCIAL_COMMON}
    unknown = {str(k) for k in options} - allowed
    if unknown:
        raise SourcesError(
            f"{where}: unknown option(s) for kind {kind}: {', '.join(sorted(unknown))}; "
            f"expected {', '.join(sorted(allowed))}"
        )
    chosen = [k for k in spec.one_of if options.get(k) not in (None, "")]
    if len(chosen) != 1:
        raise SourcesError(
            f"{where}: kind {kind} needs exactly one of options {', '.join(spec.one_of)}"
            + (f" (got {', '.join(chosen)})" if chosen else "")
        )
    pages = options.get("max_pages")
    if pages is not None and (not str(pages).isdigit() or int(str(pages)) < 1):
        raise SourcesError(f"{where}: options.max_pages must be a positive integer")


def load_sources(path: Path | str) -> list[Source]:
    path = Path(path)
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise SourcesError(f"{path}: sources file not found") from exc
    except yaml.YAMLError as exc:
        raise SourcesError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(doc, dict) or not isinstance(doc.get("sources"), list):
        raise SourcesError(f"{path}: expected a top-level key 'sources:' holding a list")
    sources = [_entry(raw, i, path) for i, raw in enumerate(doc["sources"])]
    seen: set[str] = set()
    for s in sources:
        if s.name in seen:
            raise SourcesError(f"{path}: duplicate source name {s.name!r}")
        seen.add(s.name)
    return sources


def shard_of(name: str, of: int) -> int:
    """The shard (0 ≤ shard < `of`) a source belongs to: a hash of its name, stable across
    processes and machines (Python's hash() is salted per process) and across edits of
    other sources, so adding a feed never moves the others."""
    if of < 1:
        raise ValueError(f"shard count must be at least 1, got {of}")
    return int.from_bytes(hashlib.sha1(name.encode("utf-8")).digest()[:8], "big") % of


def select_shard(srcs: Sequence[Source], shard: int, of: int) -> list[Source]:
    """The sources of one shard, in file order."""
    if not 0 <= shard < of:
        raise ValueError(f"shard must be in 0..{of - 1}, got {shard}")
    return [s for s in srcs if shard_of(s.name, of) == shard]
