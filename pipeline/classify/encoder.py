"""The encoder half of the classifier: tokenizer + an inference session, batched and
length-bucketed. Training (models/train.py) embeds its data through this same code, so the
head is fitted on exactly what inference computes.

Two runtimes read the same exported graph (mean pooling and L2 norm inside it):

* OpenVINO (`encoder.xml`, what `make model` builds): weights stored fp16, computed in bf16
  where the CPU has bf16 units (AMX / AVX512-BF16), else fp32. Every item's embedding depends
  on that item alone.
* ONNX Runtime with dynamic int8 (`encoder.onnx`, models built before 2026-11-25). Dynamic
  quantization picks one activation scale per batch, so an item's score moved with the other
  items of its batch: on dev-real, English macro-F1 ranged 0.84-0.92 over six orderings of the
  same items. That is why new models use OpenVINO.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

ENCODER_NAME = "encoder.onnx"  # ONNX Runtime int8 (older models)
OPENVINO_NAME = "encoder.xml"  # OpenVINO IR (+ encoder.bin)
ENCODER_FILES = (OPENVINO_NAME, ENCODER_NAME)

_Run = Callable[[dict[str, np.ndarray]], np.ndarray]


def has_encoder(directory: Path) -> bool:
    return any((directory / name).is_file() for name in ENCODER_FILES)


def _threads(threads: int | None) -> int:
    return threads or int(os.environ.get("SENTINELA_THREADS", "0")) or (os.cpu_count() or 2)


def _openvino(path: Path, threads: int) -> tuple[_Run, set[str], str]:
    import openvino as ov

    core = ov.Core()
    config: dict[str, object] = {"INFERENCE_NUM_THREADS": threads, "PERFORMANCE_HINT": "LATENCY"}
    precision = "f32"
    if "BF16" in core.get_property("CPU", "OPTIMIZATION_CAPABILITIES"):
        # bf16 keeps fp32's range, so no calibration and no per-batch scales: embeddings stay
        # within cosine 0.9999 of fp32 and run ~2.7x faster than fp32 here.
        config["INFERENCE_PRECISION_HINT"] = "bf16"
        precision = "bf16"
    compiled = core.compile_model(core.read_model(str(path)), "CPU", config)
    request = compiled.create_infer_request()
    output = compiled.output(0)
    names = {name for port in compiled.inputs for name in port.get_names()}

    def run(feeds: dict[str, np.ndarray]) -> np.ndarray:
        return np.asarray(request.infer(feeds)[output], dtype=np.float32)

    return run, names, f"openvino-{precision}"


def _onnxruntime(path: Path, threads: int) -> tuple[_Run, set[str], str]:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    session = ort.InferenceSession(
        str(path), sess_options=opts, providers=["CPUExecutionProvider"]
    )

    def run(feeds: dict[str, np.ndarray]) -> np.ndarray:
        return np.asarray(session.run(None, feeds)[0], dtype=np.float32)

    return run, {i.name for i in session.get_inputs()}, "onnxruntime-int8"


class Encoder:
    """Tokenizer + inference session, batched and length-bucketed."""

    def __init__(
        self, directory: Path, max_length: int, prefix: str, threads: int | None = None
    ) -> None:
        from transformers import AutoTokenizer

        # fix_mistral_regex=False: transformers mistakes our config.json (no
        # transformers_version) for an old Mistral checkpoint and warns; the flag says no.
        self.tokenizer = AutoTokenizer.from_pretrained(str(directory), fix_mistral_regex=False)
        if (directory / OPENVINO_NAME).is_file():
            self._run, self.input_names, self.runtime = _openvino(
                directory / OPENVINO_NAME, _threads(threads)
            )
        else:
            self._run, self.input_names, self.runtime = _onnxruntime(
                directory / ENCODER_NAME, _threads(threads)
            )
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
            emb = self._run(feeds)
            if out is None:
                out = np.zeros((len(ids), emb.shape[1]), dtype=np.float32)
            out[chunk] = emb
        assert out is not None
        return out
