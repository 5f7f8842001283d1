"""`sentinela evaluate`: precision, recall and F1 per label, per language and for "match",
for the model and the keyword baseline side by side."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.classify.base import LABELS, Classifier, Document, Prediction
from pipeline.config import Settings


@dataclass(frozen=True)
class Example:
    doc: Document
    labels: frozenset[str]


@dataclass(frozen=True)
class PRF:
    tp: int
    fp: int
    fn: int
    tn: int

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 0.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 0.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0


def load_examples(path: Path) -> list[Example]:
    out = []
    with path.open(encoding="utf-8") as fh:
        for n, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                example = example_from_row(json.loads(line))
            except (json.JSONDecodeError, KeyError, TypeError) as exc:
                raise ValueError(f"{path}:{n}: not a labelled example ({exc})") from exc
            unknown = example.labels - set(LABELS)
            if unknown:
                raise ValueError(f"{path}:{n}: unknown label(s) {sorted(unknown)}")
            out.append(example)
    return out


def example_from_row(o: dict[str, Any]) -> Example:
    """One labelled row (id, title, text, lang, labels), as in models/data or dev-real."""
    doc = Document(str(o["id"]), str(o.get("title") or ""), str(o["text"]), o.get("lang"))
    return Example(doc, frozenset(o["labels"]))


def prf(gold: Sequence[bool], pred: Sequence[bool]) -> PRF:
    tp = sum(g and p for g, p in zip(gold, pred, strict=True))
    fp = sum((not g) and p for g, p in zip(gold, pred, strict=True))
    fn = sum(g and (not p) for g, p in zip(gold, pred, strict=True))
    return PRF(tp, fp, fn, len(gold) - tp - fp - fn)


def metrics(examples: Sequence[Example], preds: Sequence[Prediction]) -> dict[str, dict[str, PRF]]:
    """{language or 'all': {label or 'match': PRF}}"""
    langs = ["all", *sorted({e.doc.lang or "?" for e in examples})]
    out: dict[str, dict[str, PRF]] = {}
    for lang in langs:
        idx = [i for i, e in enumerate(examples) if lang == "all" or (e.doc.lang or "?") == lang]
        row: dict[str, PRF] = {}
        for label in LABELS:
            row[label] = prf(
                [label in examples[i].labels for i in idx], [label in preds[i].labels for i in idx]
            )
        row["match"] = prf(
            [bool(examples[i].labels) for i in idx], [bool(preds[i].labels) for i in idx]
        )
        out[lang] = row
    return out


def macro_f1(row: dict[str, PRF]) -> float:
    return sum(row[label].f1 for label in LABELS) / len(LABELS)


def format_report(name: str, m: dict[str, dict[str, PRF]]) -> str:
    lines = [
        f"== {name}",
        f"{'lang':<5} {'label':<20} {'P':>6} {'R':>6} {'F1':>6}   TP  FP  FN  TN",
    ]
    for lang, row in m.items():
        for label, r in row.items():
            lines.append(
                f"{lang:<5} {label:<20} {r.precision:6.3f} {r.recall:6.3f} {r.f1:6.3f}  "
                f"{r.tp:3d} {r.fp:3d} {r.fn:3d} {r.tn:3d}"
            )
        lines.append(f"{lang:<5} {'macro-F1 (2 labels)':<20} {'':>6} {'':>6} {macro_f1(row):6.3f}")
    return "\n".join(lines)


def confusion(examples: Sequence[Example], preds: Sequence[Prediction]) -> str:
    """Gold label set × predicted label set."""

    def key(s: Sequence[str] | frozenset[str]) -> str:
        short = {"gang_prison_control": "GPC", "security_operation": "SOP"}
        return "+".join(short[x] for x in LABELS if x in s) or "none"

    cats = ["none", "GPC", "SOP", "GPC+SOP"]
    table = {g: dict.fromkeys(cats, 0) for g in cats}
    for e, p in zip(examples, preds, strict=True):
        table[key(e.labels)][key(p.labels)] += 1
    lines = ["gold \\ predicted " + " ".join(f"{c:>8}" for c in cats)]
    for g in cats:
        lines.append(f"{g:<17} " + " ".join(f"{table[g][c]:>8d}" for c in cats))
    return "\n".join(lines)


def evaluate(
    classifier: Classifier, examples: Sequence[Example]
) -> tuple[dict[str, dict[str, PRF]], list[Prediction]]:
    docs = [e.doc for e in examples]
    # Evidence sentences cost a second encoder pass per match and are not scored here.
    preds = classifier.predict(docs, evidence=False)
    return metrics(examples, preds), preds


def run_evaluate(path: Path, settings: Settings) -> int:
    from pipeline.classify.keywords import KeywordBaseline
    from pipeline.classify.model import load_classifier

    examples = load_examples(path)
    model = load_classifier(settings.model_dir, settings.cache_dir)
    m_model, p_model = evaluate(model, examples)
    m_kw, p_kw = evaluate(KeywordBaseline(), examples)
    print(f"{path}: {len(examples)} examples")
    print(format_report(f"model {model.model_version}", m_model))
    print(confusion(examples, p_model))
    print()
    print(format_report("keyword baseline", m_kw))
    print(confusion(examples, p_kw))
    print()
    print(
        "macro-F1 by language: "
        + ", ".join(
            f"{lang}: model {macro_f1(m_model[lang]):.3f} vs keywords {macro_f1(m_kw[lang]):.3f}"
            for lang in m_model
        )
    )
    return 0
