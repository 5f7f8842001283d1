"""Text preparation shared by training, inference and evidence extraction."""

from __future__ import annotations

import re

_SENTENCE_END = re.compile(r"(?<=[.!?…])[\"'”»)]*\s+(?=[\"'“«(¿¡]*[A-ZÁÉÍÓÚÂÊÔÃÕÇÑÜ0-9])")
_WS = re.compile(r"\s+")
MAX_CHARS = 2000


def doc_text(title: str, text: str) -> str:
    """Title and lede as the model sees them. The title carries most of the signal, so it
    comes first; long bodies are cut to the lede (the tokenizer truncates again by tokens)."""
    title = _WS.sub(" ", title or "").strip()
    body = _WS.sub(" ", text or "").strip()[:MAX_CHARS]
    if title and body:
        sep = " " if title.endswith((".", "!", "?", ":")) else ". "
        return f"{title}{sep}{body}"
    return title or body


def sentences(title: str, text: str, max_sentences: int = 12) -> list[str]:
    """Candidate evidence sentences: the title and the first sentences of the text."""
    out: list[str] = []
    if title and title.strip():
        out.append(_WS.sub(" ", title).strip())
    body = _WS.sub(" ", text or "").strip()[:MAX_CHARS]
    for s in _SENTENCE_END.split(body):
        s = s.strip()
        if len(s) >= 15:
            out.append(s)
        if len(out) >= max_sentences:
            break
    return out
