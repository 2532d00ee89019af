"""Every shuffle step done in memory, with the outcomes and counts of the Beam executor's
(:mod:`redpajama.pipelines.beam.shuffles`): joins, keep-first at the sink, reference lookups and
MinHash near-duplicates. Records are ``(order key, record)`` pairs; each function returns the
records that leave the step and adds what it drops, fails or keeps for inspection to ``out``."""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np
from redpajama.core import storage
from redpajama.core.records import Drop, Failure, JoinStep, KeepFirstStep, NearDedupStep, ReferenceStep, utf8_len
from redpajama.dedup.minhash import band_keys, bucket_edges, jaccard, lsh_shape, shingle_hashes, signature
from redpajama.pipelines.inprocess.counters import Counters, StepCounts
from redpajama.pipelines.runs.recipe import near_duplicate_line, step_failure
from redpajama.pipelines.runs.rejects import kept_reject_line
from redpajama.pipelines.runs.sink import SinkLine
from redpajama.pipelines.runs.stats import KEPT_DROPPED

Keyed = tuple[str, dict]


@dataclass
class Outputs:
    """What leaves a run besides its kept records: failures, kept rejects, near-duplicate samples."""

    failures: list[Failure] = field(default_factory=list)
    rejects: list[SinkLine] = field(default_factory=list)
    samples: list[SinkLine] = field(default_factory=list)


def _reject(counts: StepCounts, step: str, order_key: str, record, drop: Drop, fraction: float | None, out: Outputs):
    """The reject's line, counted, when ``--keep-dropped`` keeps it."""
    if fraction is None:
        return
    line = kept_reject_line(step, order_key, record, drop, fraction)
    if line is not None:
        counts.count(KEPT_DROPPED + drop.reason)
        out.rejects.append(line)


def _count_in(counts: StepCounts, record) -> None:
    counts.docs_in.inc()
    counts.bytes_in.inc(utf8_len(record["text"]))


def _count_out(counts: StepCounts, record) -> None:
    counts.docs_out.inc()
    counts.bytes_out.inc(utf8_len(record["text"]))


def join(records: list[Keyed], step: JoinStep, counters: Counters, fraction: float | None, out: Outputs) -> list[Keyed]:
    """A :class:`JoinStep`: parents and children meet by key (each side sorted by order key)."""
    counts = counters.step(step.name)
    parents: dict = defaultdict(list)
    children: dict = defaultdict(list)
    passed: list[Keyed] = []
    for item in records:
        record = item[1]
        _count_in(counts, record)
        parent = step.parent_key(record)
        if parent is not None:
            parents[parent].append(item)
            continue
        child = step.child_key(record)
        if child is not None:
            children[child].append(item)
            continue
        _count_out(counts, record)
        passed.append(item)
    for key in [*parents, *(key for key in children if key not in parents)]:
        members_p = sorted(parents.get(key, ()), key=lambda item: item[0])
        members_c = sorted(children.get(key, ()), key=lambda item: item[0])
        outcomes = list(step.join([r for _, r in members_p], [r for _, r in members_c]))
        kept = [o for o in outcomes if not isinstance(o, Drop)]
        drops = [o for o in outcomes if isinstance(o, Drop)]
        if len(kept) + len(drops) != len(members_p) + len(members_c):
            raise AssertionError(f"join step {step.name} accounted for {len(kept) + len(drops)} of "
                                 f"{len(members_p) + len(members_c)} records")
        order_key = (members_p or members_c)[0][0]
        order_keys = {id(record): key for key, record in [*members_p, *members_c]}
        for drop in drops:
            counts.dropped(drop.reason)
            if drop.record is not None:  # a drop that names no record cannot be kept
                _reject(counts, step.name, order_keys.get(id(drop.record), order_key), drop.record, drop, fraction, out)
        for index, record in enumerate(kept):
            _count_out(counts, record)
            passed.append((order_key if index == 0 else f"{order_key}/{index}", record))
    return passed


def keep_first_at_sink(records: list[Keyed], step: KeepFirstStep, counters: Counters, out: Outputs) -> list[Keyed]:
    """A :class:`KeepFirstStep` decided where the Beam executor decides it at the sink: of the records
    sharing a key, the first by order key stays; a key that cannot be computed fails its record."""
    counts = counters.step(step.name)
    passed: list[Keyed] = []
    by_key: dict = defaultdict(list)
    for item in records:
        order_key, record = item
        try:
            key = step.key(record)
        except Exception as error:
            counts.failed.inc()
            out.failures.append(step_failure(step.name, order_key, record, error))
            continue
        if key is None:
            _count_in(counts, record)
            _count_out(counts, record)
            passed.append(item)
            continue
        by_key[key].append(item)
    for holders in by_key.values():
        holders.sort(key=lambda item: item[0])
        for index, (_, record) in enumerate(holders):
            _count_in(counts, record)
            if index:
                counts.dropped(step.reason)
            else:
                _count_out(counts, record)
        passed.append(holders[0])
    return passed


def reference_lookup(records: list[Keyed], step: ReferenceStep, counters: Counters, fraction: float | None,
                     out: Outputs) -> list[Keyed]:
    """A :class:`ReferenceStep`: every reference file's keys read, each record looked up among them."""
    counts = counters.step(step.name)
    found: set = set()
    for path in [path for reference in sorted(step.references) for path in storage.expand(reference)]:
        try:
            for key in step.read_keys(path):
                if isinstance(key, Failure):
                    counts.count("reference_failures")
                    out.failures.append(dataclasses.replace(key, step=step.name, units=0))
                else:
                    found.add(key)
        except Exception as error:  # a reference file that breaks its reader: the rest of it is lost, counted
            counts.count("reference_failures")
            out.failures.append(Failure(path, "reference file", "unreadable_reference",
                                        f"{type(error).__name__}: {error}", step.name, 0))
    passed: list[Keyed] = []
    for order_key, record in records:
        _count_in(counts, record)
        key = step.key(record)
        hit = key is not None and key in found
        if hit:
            counts.count("matched")
        try:
            result = step.apply(record, hit)
        except Exception as error:
            counts.failed.inc()
            out.failures.append(step_failure(step.name, order_key, record, error))
            continue
        if isinstance(result, Drop):
            counts.dropped(result.reason)
            _reject(counts, step.name, order_key, record, result, fraction, out)
            continue
        _count_out(counts, result)
        passed.append((order_key, result))
    return passed


class _StepCounter:
    """``counters.inc(name, value)`` as :func:`~redpajama.dedup.minhash.bucket_edges` calls it."""

    def __init__(self, counts: StepCounts):
        self.counts = counts

    def inc(self, name: str, value: int = 1) -> None:
        self.counts.count(name, value)


def near_duplicates(records: list[Keyed], step: NearDedupStep, counters: Counters, fraction: float | None,
                    out: Outputs) -> list[Keyed]:
    """A :class:`NearDedupStep`: MinHash LSH buckets, candidate pairs checked by exact Jaccard, and
    ``step.rounds`` rounds of min-label propagation, as the Beam executor runs them."""
    counts = counters.step(step.name)
    bands, rows = lsh_shape(step)
    buckets: dict[bytes, list[str]] = defaultdict(list)
    shingles: dict[str, list[np.ndarray]] = defaultdict(list)
    for order_key, record in records:
        counts.count("in")
        counts.count("bytes_in", utf8_len(record["text"]))
        hashes = shingle_hashes(step.text(record), step.ngram)
        if len(hashes):
            for key in band_keys(signature(hashes, step.num_perm, step.seed), bands, rows):
                buckets[key].append(order_key)
            if step.verify:
                shingles[order_key].append(np.unique(hashes))
    edges: set[tuple[str, str]] = set()
    counter = _StepCounter(counts)
    for key, members in buckets.items():
        edges.update(bucket_edges((key, members), counters=counter, cap=step.max_bucket))
    if step.verify:
        checked = set()
        for first, second in edges:
            for first_set in shingles[first]:
                for second_set in shingles[second]:
                    if jaccard(first_set, second_set) >= step.threshold:
                        checked.add((first, second))
                    else:
                        counter.inc("rejected_pairs")
        edges = checked
    verdicts = _verdicts(edges, step.rounds)
    passed: list[Keyed] = []
    for order_key, record in records:
        found = sorted(verdicts.get(order_key, ()))  # "drop" before "keep": a node that lost its label is dropped
        verdict = found[0] if found else ("keep", 1)
        if verdict[0] == "drop":
            drop = Drop("near_duplicate", scores={"cluster": verdict[1]})
            counts.dropped(drop.reason)
            if fraction is None:
                sample = {"text": record["text"][: step.sample_chars], "meta": dict(record["meta"], cluster=verdict[1])}
                out.samples.append(near_duplicate_line(order_key, sample))
            else:
                _reject(counts, step.name, order_key, record, drop, fraction, out)
            continue
        record["meta"]["cluster_size"] = verdict[1]
        _count_out(counts, record)
        passed.append((order_key, record))
    return passed


def _verdicts(edges: set[tuple[str, str]], rounds: int) -> dict[str, list[tuple]]:
    """Every node on an edge -> its verdicts: ``("drop", root)`` for a node labelled by another,
    ``("keep", size)`` for a label (a root) with the number of nodes it labels."""
    adjacency: dict[str, list[str]] = defaultdict(list)
    for first, second in edges:
        adjacency[first].append(second)
        adjacency[second].append(first)
    labels = {node: node for node in adjacency}
    for _ in range(rounds):
        spread = dict(labels)
        for node, neighbours in adjacency.items():
            label = labels[node]
            for neighbour in neighbours:
                if label < spread[neighbour]:
                    spread[neighbour] = label
        labels = spread
    verdicts: dict[str, list[tuple]] = defaultdict(list)
    sizes: dict[str, int] = defaultdict(int)
    for node, root in labels.items():
        sizes[root] += 1
        if node != root:
            verdicts[node].append(("drop", root))
    for root, size in sizes.items():
        verdicts[root].append(("keep", size))
    return verdicts
