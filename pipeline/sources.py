"""Load and validate `sources.yaml`.

Schema::

    sources:
      - name: insightcrime          # unique, used as the key in the archive
        kind: rss                   # rss (RSS 2.0 / RSS 1.0 / Atom); social kinds come later
        url: https://insightcrime.org/feed/
        lang: en                    # optional: en | es | pt (detected per item when absent)
        country: VE                 # optional ISO 3166 code or region
        tags: [crime-research]      # optional
        allow_private: false        # optional: may this source live on a private/loopback host
        note: one line for humans   # optional
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from pipeline.items import Source

KNOWN_KINDS = {"rss"}
_OPTIONAL = {"lang", "country", "tags", "allow_private", "note", "options"}


class SourcesError(ValueError):
    """The sources file cannot be used; the message says where and why."""


def _entry(raw: Any, index: int, path: Path) -> Source:
    where = f"{path}: sources[{index}]"
    if not isinstance(raw, dict):
        raise SourcesError(f"{where}: each source must be a mapping, got {type(raw).__name__}")
    missing = [k for k in ("name", "kind", "url") if not raw.get(k)]
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
    return Source(
        name=str(raw["name"]),
        kind=kind,
        url=str(raw["url"]),
        lang=str(raw["lang"]).lower() if raw.get("lang") else None,
        country=str(raw["country"]) if raw.get("country") else None,
        tags=tuple(str(t) for t in tags),
        allow_private=bool(raw.get("allow_private", False)),
        note=str(raw["note"]) if raw.get("note") else None,
        options={str(k): str(v) for k, v in options.items()},
    )


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
