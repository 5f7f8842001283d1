"""Dataclasses at the boundary: whatever a feed or platform sends becomes one of these."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True)
class Source:
    name: str
    kind: str
    url: str
    lang: str | None = None
    country: str | None = None
    tags: tuple[str, ...] = ()
    allow_private: bool = False
    note: str | None = None
    options: dict[str, str] = field(default_factory=dict, hash=False, compare=False)


@dataclass(frozen=True)
class Item:
    source: str
    url: str
    canonical_url: str
    title: str
    text: str
    lang: str | None = None
    published_at: datetime | None = None
    guid: str | None = None
    author: str | None = None

    @property
    def content_hash(self) -> str:
        """Hash of the normalised words, so a re-published story with a new URL is caught."""
        words = " ".join(f"{self.title} {self.text}".lower().split())
        return hashlib.sha256(words.encode("utf-8")).hexdigest()


@dataclass
class SourceReport:
    """What one source did in one run: the row of the summary table."""

    source: str
    fetched: int = 0
    new: int = 0
    matched: int = 0
    alerted: int = 0
    errors: list[str] = field(default_factory=list)
    not_modified: bool = False
    # Why the source did not run at all (e.g. a platform token is not configured).
    skipped: str | None = None
