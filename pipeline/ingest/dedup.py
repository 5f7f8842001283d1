"""Near-duplicate clustering: one wire story syndicated by ten outlets is one cluster.

Exact duplicates (same canonical URL or same normalised words) never reach the archive
twice; this module catches the rest: the same story re-edited by each outlet, with a new
headline, a different lede or a trimmed last paragraph. Each item gets a MinHash signature
over word 3-shingles of its normalised title and text; LSH banding turns the signature into
bucket keys, and two items that share a bucket and whose signatures agree on at least
`THRESHOLD` of their positions (the estimated Jaccard similarity) share a cluster.

Signatures and bucket keys are stored (`item_signatures`, `item_buckets`), so a story
published tomorrow joins the cluster of today's copy, across runs and processes. The
cluster id is the id of the cluster's first item.

Tuning (tests/test_dedup.py holds the examples): rewrites of one wire story with their own
headline and lede and small edits score 0.44-0.66 (3-shingle Jaccard); different stories
about the same prison on the same day share names and phrases but score at most 0.05.
The merge threshold is 0.3. 42 bands of 3 rows make a pair at 0.44 a candidate with
probability 0.98 (0.3: 0.68, and single-link clustering gives a copy several chances),
while a pair at 0.05 becomes a candidate with probability 0.005, so lookups stay cheap as
the archive grows.
"""

from __future__ import annotations

import re
import unicodedata
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from pipeline.items import Item
from pipeline.storage.schema import item_buckets, item_signatures, items

BANDS = 42
ROWS = 3
NUM_PERM = BANDS * ROWS
SHINGLE = 3
THRESHOLD = 0.3
_LOOKUP_CHUNK = 900  # stays under SQLite's bound-parameter limit on old builds

_MERSENNE = np.uint64((1 << 61) - 1)
_MAX32 = np.uint64((1 << 32) - 1)
# Fixed seeds: signatures stored by one run must compare with those computed by the next.
_RNG = np.random.RandomState(20261120)
_A = _RNG.randint(1, (1 << 61) - 1, size=NUM_PERM, dtype=np.uint64)
_B = _RNG.randint(0, (1 << 61) - 1, size=NUM_PERM, dtype=np.uint64)
_BAND_MIX = _RNG.randint(1, (1 << 62), size=(1, ROWS), dtype=np.uint64) | np.uint64(1)
_BAND_SALT = _RNG.randint(1, (1 << 62), size=BANDS, dtype=np.uint64)
_WORD = re.compile(r"\w+", re.UNICODE)
_COMBINING = re.compile(r"[\u0300-\u036f]")
_MIX = (np.uint64(0x9E3779B1), np.uint64(0x85EBCA77))


def normalise_words(title: str, text: str) -> list[str]:
    """Lower-cased, accent-folded words: "Cárcel" and "carcel" are one word, punctuation
    and spacing differences between outlets disappear."""
    folded = _COMBINING.sub("", unicodedata.normalize("NFKD", f"{title} {text}".lower()))
    return _WORD.findall(folded)


def shingles(title: str, text: str, k: int = SHINGLE) -> set[str]:
    """The word k-shingles (for inspection and tests; `signature` hashes the same set)."""
    words = normalise_words(title, text)
    if len(words) < k:
        return {" ".join(words)} if words else set()
    return {" ".join(words[i : i + k]) for i in range(len(words) - k + 1)}


def _shingle_hashes(words: list[str]) -> np.ndarray:
    """32-bit hashes of the word 3-shingles, combined from per-word hashes in numpy (the
    hot path of ingest: no per-shingle strings)."""
    wh = np.fromiter((zlib.crc32(w.encode("utf-8")) for w in words), np.uint64, len(words))
    if len(words) < SHINGLE:
        combined = np.array([zlib.crc32(" ".join(words).encode("utf-8"))], dtype=np.uint64)
    else:
        with np.errstate(over="ignore"):
            combined = wh[: 1 - SHINGLE] * _MIX[0] + wh[1 : 2 - SHINGLE] * _MIX[1] + wh[2:]
    return np.unique((combined ^ (combined >> np.uint64(29))) & _MAX32)


def signature(title: str, text: str) -> np.ndarray | None:
    """MinHash signature (NUM_PERM uint32 values), or None when there are no words."""
    words = normalise_words(title, text)
    if not words:
        return None
    hv = _shingle_hashes(words)
    # Universal hashing (a*x + b) mod p; the uint64 product wraps, which is still a fixed
    # pseudo-random permutation for our purpose and keeps the whole thing vectorised.
    with np.errstate(over="ignore"):
        phv = ((hv[:, None] * _A[None, :] + _B[None, :]) % _MERSENNE) & _MAX32
    return phv.min(axis=0).astype(np.uint32)


def similarity(a: np.ndarray, b: np.ndarray) -> float:
    """Estimated Jaccard similarity of the two shingle sets."""
    return float(np.count_nonzero(a == b)) / len(a)


def bucket_keys(sig: np.ndarray) -> list[int]:
    """One signed 63-bit key per band; equal bands give equal keys."""
    bands = sig.astype(np.uint64).reshape(BANDS, ROWS)
    with np.errstate(over="ignore"):
        mixed = (bands * _BAND_MIX).sum(axis=1, dtype=np.uint64) ^ _BAND_SALT
        mixed = mixed * np.uint64(0x9E3779B97F4A7C15)
    return [int(k) for k in (mixed >> np.uint64(1)).astype(np.int64)]


def to_bytes(sig: np.ndarray) -> bytes:
    return sig.astype("<u4").tobytes()


def from_bytes(raw: bytes) -> np.ndarray:
    return np.frombuffer(raw, dtype="<u4").astype(np.uint32)


@dataclass(frozen=True)
class _Known:
    item_id: int
    cluster_id: int
    sig: np.ndarray


def _chunks(values: Sequence[int], n: int = _LOOKUP_CHUNK) -> Iterable[Sequence[int]]:
    for i in range(0, len(values), n):
        yield values[i : i + n]


def _archive_candidates(conn: Connection, keys: set[int]) -> dict[int, list[_Known]]:
    """bucket key -> archived items in that bucket (with their signatures and clusters)."""
    by_key: dict[int, list[int]] = {}
    mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    for chunk in _chunks(sorted(keys)):
        # Driver SQL: rendering an expanding IN of 900 parameters through the compiler, three
        # times per feed, cost more than the index lookups themselves.
        lookup = (
            f"SELECT bucket, item_id FROM {item_buckets.name} "
            f"WHERE bucket IN ({', '.join([mark] * len(chunk))})"
        )
        for bucket, item_id in conn.exec_driver_sql(lookup, tuple(chunk)):
            by_key.setdefault(int(bucket), []).append(int(item_id))
    ids = sorted({i for v in by_key.values() for i in v})
    known: dict[int, _Known] = {}
    for chunk in _chunks(ids):
        q = (
            sa.select(item_signatures.c.item_id, item_signatures.c.signature, items.c.cluster_id)
            .join(items, items.c.id == item_signatures.c.item_id)
            .where(item_signatures.c.item_id.in_(list(chunk)))
        )
        for row in conn.execute(q):
            item_id, cluster = int(row[0]), int(row[2] or row[0])
            known[item_id] = _Known(item_id, cluster, from_bytes(bytes(row[1])))
    return {k: [known[i] for i in v if i in known] for k, v in by_key.items()}


def assign_clusters(conn: Connection, inserted: Sequence[tuple[int, Item]]) -> dict[int, int]:
    """Give every newly inserted item a cluster (its own id, or the cluster of the most
    similar archived or earlier item), store its signature and bucket keys. Returns
    item id -> cluster id. Runs inside the caller's transaction."""
    if not inserted:
        return {}
    sigs: dict[int, np.ndarray] = {}
    keys: dict[int, list[int]] = {}
    for item_id, it in inserted:
        sig = signature(it.title, it.text)
        if sig is not None:
            sigs[item_id] = sig
            keys[item_id] = bucket_keys(sig)
    archive = _archive_candidates(conn, {k for ks in keys.values() for k in ks})
    batch: dict[int, list[_Known]] = {}
    clusters: dict[int, int] = {}
    for item_id, _ in sorted(inserted, key=lambda p: p[0]):
        sig = sigs.get(item_id)
        if sig is None:
            clusters[item_id] = item_id
            continue
        best: _Known | None = None
        best_score = (THRESHOLD, 0)
        seen: set[int] = set()
        for key in keys[item_id]:
            for cand in (*archive.get(key, ()), *batch.get(key, ())):
                if cand.item_id in seen:
                    continue
                seen.add(cand.item_id)
                # Ties go to the older cluster so the choice is stable across runs.
                score = (similarity(sig, cand.sig), -cand.cluster_id)
                if score[0] >= THRESHOLD and (best is None or score > best_score):
                    best, best_score = cand, score
        cluster = best.cluster_id if best is not None else item_id
        clusters[item_id] = cluster
        me = _Known(item_id, cluster, sig)
        for key in keys[item_id]:
            batch.setdefault(key, []).append(me)
    if sigs:
        _store_signatures(conn, sigs, keys)
    own = [i for i, c in clusters.items() if c == i]
    for chunk in _chunks(own):
        conn.execute(
            sa.update(items).where(items.c.id.in_(list(chunk))).values(cluster_id=items.c.id)
        )
    joined = [{"b_id": i, "b_cluster": c} for i, c in clusters.items() if c != i]
    if joined:
        conn.execute(
            sa.update(items)
            .where(items.c.id == sa.bindparam("b_id"))
            .values(cluster_id=sa.bindparam("b_cluster")),
            joined,
        )
    return clusters


def _store_signatures(
    conn: Connection, sigs: dict[int, np.ndarray], keys: dict[int, list[int]]
) -> None:
    """Plain DBAPI executemany of positional tuples: 42 bucket rows per item made the
    per-row parameter processing of a Core executemany the larger part of ingest's write
    time (bench/ingest.py). Rows go in key order, so consecutive inserts land on
    neighbouring pages of the bucket index."""
    mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    conn.exec_driver_sql(
        f"INSERT INTO {item_signatures.name} (item_id, signature) VALUES ({mark}, {mark})",
        [(i, to_bytes(s)) for i, s in sigs.items()],
    )
    conn.exec_driver_sql(
        f"INSERT INTO {item_buckets.name} (bucket, item_id) VALUES ({mark}, {mark})",
        sorted((k, i) for i, ks in keys.items() for k in set(ks)),
    )


def backfill(conn: Connection, batch_size: int = 500) -> int:
    """Sign and cluster archived items that have no signature yet (items stored before
    clustering existed), oldest first. Returns how many were processed."""
    done = 0
    last = 0
    while True:
        signed = sa.select(item_signatures.c.item_id).where(item_signatures.c.item_id == items.c.id)
        rows = conn.execute(
            sa.select(items.c.id, items.c.title, items.c.text)
            .where(~signed.exists(), items.c.id > last)
            .order_by(items.c.id)
            .limit(batch_size)
        ).all()
        if not rows:
            return done
        last = int(rows[-1][0])
        fake = [
            (int(r[0]), Item(source="", url="", canonical_url="", title=r[1], text=r[2]))
            for r in rows
        ]
        assign_clusters(conn, fake)
        done += len(rows)
