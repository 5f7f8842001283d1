from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.sources import SourcesError, load_sources

ROOT = Path(__file__).resolve().parents[1]


def _write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "sources.yaml"
    p.write_text(text)
    return p


def test_default_sources_file_is_valid() -> None:
    srcs = load_sources(ROOT / "sources.yaml")
    assert len(srcs) >= 10
    assert {s.lang for s in srcs} >= {"en", "es", "pt"}
    assert all(s.url.startswith(("http://", "https://")) for s in srcs)


def test_full_entry(tmp_path: Path) -> None:
    p = _write(
        tmp_path,
        """
sources:
  - name: a
    kind: rss
    url: http://127.0.0.1:1/feed.xml
    lang: ES
    country: VE
    tags: [local, prisons]
    allow_private: true
    note: test
""",
    )
    (s,) = load_sources(p)
    assert (s.name, s.kind, s.lang, s.country, s.tags, s.allow_private) == (
        "a",
        "rss",
        "es",
        "VE",
        ("local", "prisons"),
        True,
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("- name: a", "top-level key 'sources:'"),
        ("sources:\n  - name: a\n    kind: rss\n", "missing required key"),
        ("sources:\n  - {name: a, kind: fax, url: http://x}\n", "unknown kind 'fax'"),
        ("sources:\n  - {name: a, kind: rss, url: http://x, colour: red}\n", "unknown key"),
        (
            "sources:\n  - {name: a, kind: rss, url: http://x}\n  - {name: a, kind: rss, url: http://y}\n",
            "duplicate",
        ),
        ("sources: [\n", "not valid YAML"),
    ],
)
def test_bad_files_get_clear_errors(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(SourcesError, match=message):
        load_sources(_write(tmp_path, text))


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(SourcesError, match="not found"):
        load_sources(tmp_path / "nope.yaml")
