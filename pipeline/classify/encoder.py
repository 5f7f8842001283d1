"""The encoder half of the classifier: tokenizer + ONNX Runtime session, batched and
length-bucketed. Training (models/train.py) embeds its data through this same code, so the
head is fitted on exactly what inference computes."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

ENCODER_NAME = "encoder.onnx"


class Encoder:
    """Tokenizer + ONNX Runtime session, batched and length-bucketed."""

    def __init__(
        self, directory: Path, max_length: int, prefix: str, threads: int | None = None
    ) -> None:
        import onnxruntime as ort
        from transformers import AutoTokenizer

        # fix_mistral_regex=False: transformers mistakes our config.json (no
        # transformers_version) for an old Mistral checkpoint and warns; the flag says no.
        self.tokenizer = AutoTokenizer.from_pretrained(str(directory), fix_mistral_regex=False)
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

    def encode(self, texts: Sequence[str], batch_size: int = 8) -> np.ndarray:
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
