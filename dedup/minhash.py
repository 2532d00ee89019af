"""Near-duplicate removal with MinHash LSH, as Beam shuffles any slice can use.

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

import apache_beam as beam
import numpy as np
from apache_beam.metrics import Metrics
from redpajama.filters.base import Drop, NearDedupStep, utf8_len

WORD = re.compile(r"\w+")
_MIX = np.uint64(1_000_003)
NAMESPACE = "redpajama"
RECORDS, BANDS, SHINGLES, VERDICT = "records", "bands", "shingles", "verdict"


# --- pure functions ------------------------------------------------------------------------


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


# --- Beam ---------------------------------------------------------------------------------


class NearDuplicates(beam.PTransform):
    """A :class:`NearDedupStep` over keyed records; returns (kept, failures, dropped samples)."""

    def __init__(self, slice_name: str, step: NearDedupStep):
        super().__init__()
        self.slice_name = slice_name
        self.step = step

    def expand(self, keyed):
        step = self.step
        bands, rows = lsh_shape(step)
        signed = keyed | "Signatures" >> beam.ParDo(_Sign(self.slice_name, step, bands, rows)).with_outputs(
            BANDS, SHINGLES, main=RECORDS
        )
        edges = (
            signed[BANDS]
            | "Buckets" >> beam.GroupByKey()
            | "CandidatePairs" >> beam.FlatMap(_bucket_edges, counters=_Counters(self.slice_name, step.name),
                                               cap=step.max_bucket)
            | "DistinctPairs" >> beam.Distinct()
        )
        if step.verify:
            edges = _verify(edges, signed[SHINGLES], step.threshold, _Counters(self.slice_name, step.name))
        roots = _components(edges, step.rounds)
        sizes = (
            roots
            | "Roots" >> beam.Map(lambda node_root: (node_root[1], 1))
            | "ComponentSizes" >> beam.CombinePerKey(sum)
        )
        verdicts = (
            (
                roots | "Followers" >> beam.Filter(lambda node_root: node_root[0] != node_root[1])
                | "DropVerdict" >> beam.Map(lambda node_root: (node_root[0], ("drop", node_root[1]))),
                sizes | "KeepVerdict" >> beam.Map(lambda root_size: (root_size[0], ("keep", root_size[1]))),
            )
            | "Verdicts" >> beam.Flatten()
        )
        joined = {RECORDS: signed[RECORDS], VERDICT: verdicts} | "Rejoin" >> beam.CoGroupByKey()
        applied = joined | "Apply" >> beam.ParDo(_Apply(self.slice_name, step)).with_outputs("dropped", main="kept")
        return applied.kept, applied.dropped


class _Counters:
    """Counters of the step, created on first use on the worker and kept."""

    def __init__(self, slice_name: str, step: str):
        self.prefix = f"{slice_name}/{step}/"
        self._made: dict = {}

    def __getstate__(self):
        return {"prefix": self.prefix}

    def __setstate__(self, state):
        self.prefix, self._made = state["prefix"], {}

    def inc(self, name: str, value: int = 1) -> None:
        counter = self._made.get(name)
        if counter is None:
            counter = self._made[name] = Metrics.counter(NAMESPACE, self.prefix + name)
        counter.inc(value)


class _Sign(beam.DoFn):
    def __init__(self, slice_name: str, step: NearDedupStep, bands: int, rows: int):
        self.counters = _Counters(slice_name, step.name)
        self.step, self.bands, self.rows = step, bands, rows

    def process(self, item):
        order_key, record = item
        self.counters.inc("in")
        self.counters.inc("bytes_in", utf8_len(record["text"]))
        hashes = shingle_hashes(self.step.text(record), self.step.ngram)
        if len(hashes):
            sig = signature(hashes, self.step.num_perm, self.step.seed)
            for key in band_keys(sig, self.bands, self.rows):
                yield beam.pvalue.TaggedOutput(BANDS, (key, order_key))
            if self.step.verify:
                yield beam.pvalue.TaggedOutput(SHINGLES, (order_key, np.unique(hashes).tobytes()))
        yield order_key, record


def _bucket_edges(bucket, counters: _Counters, cap: int):
    """Star edges from the bucket's first member; only the ``cap`` first members take part."""
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


def _verify(edges, shingles, threshold: float, counters: _Counters):
    """Keep candidate pairs whose exact Jaccard similarity reaches the threshold."""
    by_first = {"edge": edges, "set": shingles} | "WithFirstSet" >> beam.CoGroupByKey()
    carried = by_first | "CarryFirst" >> beam.FlatMap(
        lambda grouped: [(b, (grouped[0], s)) for b in grouped[1]["edge"] for s in grouped[1]["set"]]
    )
    by_second = {"edge": carried, "set": shingles} | "WithSecondSet" >> beam.CoGroupByKey()

    def check(grouped):
        second, members = grouped
        for second_set in members["set"]:
            other = np.frombuffer(second_set, dtype=np.uint64)
            for first, first_set in members["edge"]:
                if jaccard(np.frombuffer(first_set, dtype=np.uint64), other) >= threshold:
                    yield first, second
                else:
                    counters.inc("rejected_pairs")

    return by_second | "ExactJaccard" >> beam.FlatMap(check)


def _components(edges, rounds: int):
    """(node, root) for every node on an edge: min-label propagation, ``rounds`` shuffles deep."""
    adjacency = edges | "BothWays" >> beam.FlatMap(lambda edge: [edge, (edge[1], edge[0])])
    labels = (
        adjacency
        | "Nodes" >> beam.Keys()
        | "DistinctNodes" >> beam.Distinct()
        | "OwnLabel" >> beam.Map(lambda node: (node, node))
    )
    for round_number in range(rounds):
        labels = (
            {"label": labels, "next": adjacency}
            | f"Round{round_number}" >> beam.CoGroupByKey()
            | f"Spread{round_number}" >> beam.FlatMap(_spread)
            | f"Min{round_number}" >> beam.CombinePerKey(min)
        )
    return labels


def _spread(grouped):
    node, members = grouped
    label = min(members["label"])
    yield node, label
    for neighbour in members["next"]:
        yield neighbour, label


class _Apply(beam.DoFn):
    def __init__(self, slice_name: str, step: NearDedupStep):
        self.counters = _Counters(slice_name, step.name)
        self.step = step

    def process(self, grouped):
        order_key, members = grouped
        verdicts = sorted(members[VERDICT])  # "drop" before "keep": a node that lost its label is dropped
        for record in members[RECORDS]:
            verdict = verdicts[0] if verdicts else ("keep", 1)
            if verdict[0] == "drop":
                self.counters.inc(f"dropped:{Drop('near_duplicate').reason}")
                sample = {"text": record["text"][: self.step.sample_chars],
                          "meta": dict(record["meta"], cluster=verdict[1])}
                yield beam.pvalue.TaggedOutput("dropped", (order_key, sample))
                continue
            record["meta"]["cluster_size"] = verdict[1]
            self.counters.inc("out")
            self.counters.inc("bytes_out", utf8_len(record["text"]))
            yield order_key, record
