"""Near-duplicate detection with MinHash LSH: the kernels (the shuffles are in
:mod:`redpajama.pipelines.beam.shuffles`).

Shingles are word 5-grams of the lower-cased text (words = ``\\w+``), hashed to 64 bits.
Signatures come from rensa's R-MinHash, fed the shingle hashes directly (the benchmark in
``bench/minhash_speed.py`` measures it against datasketch on the same shingles). The LSH
bands and rows minimise datasketch's weighted false-positive and false-negative areas for
the threshold; misses weigh 0.95 when candidates are checked exactly (at 0.8 with 128
permutations: 16 bands of 8 rows, a 95 % chance to pair books at Jaccard 0.8).
Then, all as shuffles: band buckets -> candidate pairs (star edges to the bucket's first
document; buckets over ``max_bucket`` are capped and counted) -> optional exact Jaccard
check -> connected components by min-label propagation -> keep the lowest order key of
each component, drop the rest as ``near_duplicate``.
"""

from __future__ import annotations

import hashlib
import heapq
import re

import numpy as np
from redpajama.core.records import NearDedupStep

WORD = re.compile(r"\w+")
_MIX = np.uint64(1_000_003)



def words(text: str) -> list[str]:
    return WORD.findall(text.lower())


def shingle_hashes(text: str, ngram: int = 5) -> np.ndarray:
    """64-bit hashes of every word ``ngram``-gram of the text (repeats included; none if too short)."""
    import rensa

    tokens = words(text)
    if len(tokens) < ngram:
        return np.zeros(0, dtype=np.uint64)
    hashed = np.asarray(rensa.RMinHash.hash_token_sets([tokens])[0], dtype=np.uint64)
    count = len(hashed) - ngram + 1
    combined = np.zeros(count, dtype=np.uint64)
    with np.errstate(over="ignore"):
        for offset in range(ngram):
            combined = combined * _MIX + hashed[offset : offset + count]
    return combined


def signature(hashes: np.ndarray, num_perm: int, seed: int) -> np.ndarray:
    """The R-MinHash signature (``num_perm`` uint32 values) of a set of shingle hashes."""
    import rensa

    matrix = rensa.RMinHash.digest_matrix_from_flat_token_hashes(hashes, [0, len(hashes)], num_perm, seed)
    return np.asarray(matrix.to_rows()[0], dtype=np.uint32)


def band_params(threshold: float, num_perm: int, fp_weight: float = 0.5, fn_weight: float = 0.5) -> tuple[int, int]:
    """(bands, rows) minimising the weighted false-positive and false-negative areas (datasketch)."""
    from datasketch.lsh import _optimal_param

    return _optimal_param(threshold, num_perm, fp_weight, fn_weight)


def lsh_shape(step: NearDedupStep) -> tuple[int, int]:
    """Bands and rows for the step. With the exact Jaccard check, false positives cost only
    a comparison while false negatives are lost duplicates: misses weigh 0.95. Without it,
    both errors weigh the same."""
    weights = (0.05, 0.95) if step.verify else (0.5, 0.5)
    return band_params(step.threshold, step.num_perm, *weights)


def band_keys(sig: np.ndarray, bands: int, rows: int) -> list[bytes]:
    """One bucket key per band: the band's number and a hash of its rows."""
    return [
        band.to_bytes(2, "big") + hashlib.blake2b(sig[band * rows : (band + 1) * rows].tobytes(), digest_size=8).digest()
        for band in range(bands)
    ]


def jaccard(a: np.ndarray, b: np.ndarray) -> float:
    """Exact Jaccard similarity of two shingle-hash sets."""
    if not len(a) and not len(b):
        return 1.0
    inter = len(np.intersect1d(a, b, assume_unique=True))
    return inter / (len(a) + len(b) - inter)


def collision_probability(similarity: float, bands: int, rows: int) -> float:
    """Probability that two documents of this Jaccard similarity share at least one bucket."""
    return 1.0 - (1.0 - similarity**rows) ** bands


def bucket_edges(bucket, counters, cap: int):
    """Star edges from the bucket's first member; only the ``cap`` first members take part
    (``counters.inc(name, value)`` hears how many were left out)."""
    _, members = bucket
    count = 0
    smallest: list[str] = []
    for member in members:
        count += 1
        if len(smallest) < cap:
            heapq.heappush(smallest, _Reversed(member))
        elif member < smallest[0].value:
            heapq.heapreplace(smallest, _Reversed(member))
    if count > cap:
        counters.inc("capped_buckets")
        counters.inc("capped_members", count - cap)
    ordered = sorted(entry.value for entry in smallest)
    for other in ordered[1:]:
        yield ordered[0], other


class _Reversed:
    """Max-heap entry, so the heap keeps the ``cap`` smallest order keys."""

    __slots__ = ("value",)

    def __init__(self, value: str):
        self.value = value

    def __lt__(self, other: _Reversed) -> bool:
        return self.value > other.value
