"""Every shuffle step as a Beam transform: joins, shared keys (line dedup), reference lookups and
MinHash near-duplicates. Each applies a step from :mod:`redpajama.core.records`; the kernels
(hashing, LSH, Jaccard) are in :mod:`redpajama.dedup`."""

from __future__ import annotations

import dataclasses

import apache_beam as beam
import numpy as np
from apache_beam.metrics import Metrics
from redpajama.core import storage
from redpajama.core.records import Drop, Failure, JoinStep, NearDedupStep, ReferenceStep, utf8_len
from redpajama.dedup.minhash import band_keys, bucket_edges, jaccard, lsh_shape, shingle_hashes, signature
from redpajama.pipelines.beam.spill import SpillReader, SpillWriter
from redpajama.pipelines.beam.steps import DROPPED, FAILURES, NAMESPACE, StepDoFn, kept_reject
from redpajama.pipelines.runs.stats import KEPT_DROPPED

PARENTS = "parents"
CHILDREN = "children"
RECORDS = "records"
FOUND = "found"


class Join(beam.PTransform):
    """A :class:`JoinStep` as a shuffle: parents and children meet in ``CoGroupByKey``.

    With ``spill`` (local runs), the records wait in spill files and references travel, through
    the shuffle and through the union of joined and untouched records (which the local runner
    holds in memory), so the runner's memory holds no text; they are read back after it.
    Returns (records, rejects kept with ``keep_dropped``, as sink lines).
    """

    def __init__(self, slice_name: str, step: JoinStep, spill: str | None = None, keep_dropped: float | None = None):
        super().__init__()
        self.slice_name = slice_name
        self.step = step
        self.spill = spill
        self.keep_dropped = keep_dropped

    def expand(self, keyed):
        step = self.step
        routed = keyed | "Route" >> beam.ParDo(_RouteForJoin(self.slice_name, step, self.spill)).with_outputs(
            PARENTS, CHILDREN, main="passthrough"
        )
        joined = {PARENTS: routed[PARENTS], CHILDREN: routed[CHILDREN]} | "CoGroup" >> beam.CoGroupByKey()
        merged = joined | "Merge" >> beam.ParDo(
            _MergeJoined(self.slice_name, step, self.spill, self.keep_dropped)).with_outputs(DROPPED, main="merged")
        rejoined = (routed.passthrough, merged.merged) | "Rejoin" >> beam.Flatten()
        return rejoined | "ReadBack" >> beam.ParDo(_ReadBack()) if self.spill else rejoined, merged[DROPPED]


class _Parking(StepDoFn):
    """A step's DoFn that parks records in spill files when given a folder (local runs)."""

    def __init__(self, slice_name: str, step, spill: str | None = None, keep_dropped: float | None = None):
        super().__init__(slice_name, step, keep_dropped)
        self.spill = spill

    def start_bundle(self):
        self._writer = SpillWriter(self.spill) if self.spill else None

    def finish_bundle(self):
        if self._writer is not None:
            self._writer.close()

    def _parked(self, item):
        return (item[0], self._writer.put_object(item[1])) if self._writer else item


class _ReadBack(beam.DoFn):
    """Parked ``(order key, reference)`` items -> ``(order key, record)``."""

    def start_bundle(self):
        self._spilled = SpillReader()

    def finish_bundle(self):
        self._spilled.close()

    def process(self, item):
        yield item[0], self._spilled.read_object(item[1])


class _RouteForJoin(_Parking):
    def process(self, item):
        _, record = item
        self.count_in(record)
        parent = self.step.parent_key(record)
        if parent is not None:
            yield beam.pvalue.TaggedOutput(PARENTS, (parent, self._parked(item)))
            return
        child = self.step.child_key(record)
        if child is not None:
            yield beam.pvalue.TaggedOutput(CHILDREN, (child, self._parked(item)))
            return
        self.count_out(record)
        yield self._parked(item)


class _MergeJoined(_Parking):
    def start_bundle(self):
        super().start_bundle()
        self._spilled = SpillReader()

    def finish_bundle(self):
        super().finish_bundle()
        self._spilled.close()

    def process(self, grouped):
        _, members = grouped
        # Shuffles deliver values in no fixed order: sort so the join sees a stable one.
        parents = sorted(members[PARENTS], key=lambda item: item[0])
        children = sorted(members[CHILDREN], key=lambda item: item[0])
        read = self._spilled.read_object
        parent_records, child_records = [read(r) for _, r in parents], [read(r) for _, r in children]
        outcomes = list(self.step.join(parent_records, child_records))
        kept = [o for o in outcomes if not isinstance(o, Drop)]
        drops = [o for o in outcomes if isinstance(o, Drop)]
        if len(kept) + len(drops) != len(parents) + len(children):
            raise AssertionError(
                f"join step {self.step.name} accounted for {len(kept) + len(drops)} of "
                f"{len(parents) + len(children)} records"
            )
        order_key = (parents or children)[0][0]
        order_keys = {id(record): key for (key, _), record in zip([*parents, *children],
                                                                   [*parent_records, *child_records], strict=True)}
        for drop in drops:
            self.counters.dropped(drop.reason)
            if drop.record is not None:  # a drop that names no record cannot be kept
                yield from self.reject(order_keys.get(id(drop.record), order_key), drop.record, drop)
        for index, record in enumerate(kept):
            self.count_out(record)
            yield self._parked(((order_key if index == 0 else f"{order_key}/{index}"), record))


class ReferenceLookup(beam.PTransform):
    """A :class:`ReferenceStep`: reference keys (read on the workers) meet records in ``CoGroupByKey``.
    Returns (records, failures, rejects kept with ``keep_dropped``, as sink lines)."""

    def __init__(self, slice_name: str, step: ReferenceStep, keep_dropped: float | None = None):
        super().__init__()
        self.slice_name = slice_name
        self.step = step
        self.keep_dropped = keep_dropped

    def expand(self, keyed):
        step = self.step
        read = (
            keyed.pipeline
            | "References" >> beam.Create(sorted(step.references))
            | "ExpandReferences" >> beam.FlatMap(storage.expand)
            | "SpreadReferences" >> beam.Reshuffle()
            | "ReadKeys" >> beam.ParDo(_ReadReferenceKeys(self.slice_name, step)).with_outputs(FAILURES, main="keys")
        )
        found = (
            read.keys
            | "DistinctKeys" >> beam.Distinct()
            | "MarkFound" >> beam.Map(lambda key: (key, True))
        )
        by_key = keyed | "KeyRecords" >> beam.ParDo(_KeyForLookup(self.slice_name, step))
        joined = {RECORDS: by_key, FOUND: found} | "CoGroup" >> beam.CoGroupByKey()
        applied = joined | "Apply" >> beam.ParDo(_ApplyLookup(self.slice_name, step, self.keep_dropped)).with_outputs(
            FAILURES, DROPPED, main="kept"
        )
        return applied.kept, [applied[FAILURES], read[FAILURES]], applied[DROPPED]


class _ReadReferenceKeys(beam.DoFn):
    """One reference file -> its keys; what cannot be read is counted and dead-lettered, not fatal.
    A reference file holds no document of the slice: its failures stand for none (``units`` 0)."""

    def __init__(self, slice_name: str, step: ReferenceStep):
        self.slice_name = slice_name
        self.step = step

    def setup(self):
        self.failures = Metrics.counter(NAMESPACE, f"{self.slice_name}/{self.step.name}/reference_failures")

    def process(self, path: str):
        try:
            for key in self.step.read_keys(path):
                if isinstance(key, Failure):
                    yield self._failed(dataclasses.replace(key, step=self.step.name, units=0))
                else:
                    yield key
        except Exception as error:  # a reference file that breaks its reader: the rest of it is lost, counted
            yield self._failed(Failure(path, "reference file", "unreadable_reference",
                                       f"{type(error).__name__}: {error}", self.step.name, 0))

    def _failed(self, failure: Failure):
        self.failures.inc()
        return beam.pvalue.TaggedOutput(FAILURES, failure)


class _KeyForLookup(StepDoFn):
    def process(self, item):
        self.count_in(item[1])
        key = self.step.key(item[1])
        # Records without a key still pass through apply, under a key no reference has.
        yield (key if key is not None else f"\x00{item[0]}"), item


class _ApplyLookup(StepDoFn):
    def setup(self):
        super().setup()
        self.matched = Metrics.counter(NAMESPACE, f"{self.slice_name}/{self.step.name}/matched")

    def process(self, grouped):
        _, members = grouped
        found = bool(list(members[FOUND]))
        for order_key, record in members[RECORDS]:
            if found:
                self.matched.inc()
            yield from self.apply_counted(order_key, record, found)


# --- near-duplicates ----------------------------------------------------------------------

BANDS, SHINGLES, VERDICT = "bands", "shingles", "verdict"


class NearDuplicates(beam.PTransform):
    """A :class:`NearDedupStep` over keyed records; returns (kept, dropped samples): ``(order key,
    sample)``, or with ``keep_dropped`` the rejects it keeps, whole, as sink lines.

    With ``spill`` (local runs), records and shingle sets wait in spill files while their
    signatures are compared: the shuffles carry references, not whole books.
    """

    def __init__(self, slice_name: str, step: NearDedupStep, spill: str | None = None,
                 keep_dropped: float | None = None):
        super().__init__()
        self.slice_name = slice_name
        self.step = step
        self.spill = spill
        self.keep_dropped = keep_dropped

    def expand(self, keyed):
        step = self.step
        bands, rows = lsh_shape(step)
        signed = keyed | "Signatures" >> beam.ParDo(_Sign(self.slice_name, step, bands, rows, self.spill)).with_outputs(
            BANDS, SHINGLES, main=RECORDS
        )
        edges = (
            signed[BANDS]
            | "Buckets" >> beam.GroupByKey()
            | "CandidatePairs" >> beam.FlatMap(bucket_edges, counters=_Counters(self.slice_name, step.name),
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
        applied = joined | "Apply" >> beam.ParDo(_Apply(self.slice_name, step, self.keep_dropped)).with_outputs(
            DROPPED, main="kept")
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
    def __init__(self, slice_name: str, step: NearDedupStep, bands: int, rows: int, spill: str | None = None):
        self.counters = _Counters(slice_name, step.name)
        self.step, self.bands, self.rows, self.spill = step, bands, rows, spill

    def start_bundle(self):
        self._writer = SpillWriter(self.spill) if self.spill else None

    def finish_bundle(self):
        if self._writer is not None:
            self._writer.close()

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
                shingles = np.unique(hashes).tobytes()
                yield beam.pvalue.TaggedOutput(SHINGLES, (order_key, self._writer.put(shingles) if self._writer else shingles))
        yield order_key, self._writer.put_object(record) if self._writer else record


def _verify(edges, shingles, threshold: float, counters: _Counters):
    """Keep candidate pairs whose exact Jaccard similarity reaches the threshold."""
    by_first = {"edge": edges, "set": shingles} | "WithFirstSet" >> beam.CoGroupByKey()
    carried = by_first | "CarryFirst" >> beam.FlatMap(
        lambda grouped: [(b, (grouped[0], s)) for b in grouped[1]["edge"] for s in grouped[1]["set"]]
    )
    by_second = {"edge": carried, "set": shingles} | "WithSecondSet" >> beam.CoGroupByKey()

    def check(grouped):
        second, members = grouped
        spilled = SpillReader()  # shingle sets may wait in spill files
        try:
            for second_set in members["set"]:
                other = np.frombuffer(spilled.read(second_set), dtype=np.uint64)
                for first, first_set in members["edge"]:
                    if jaccard(np.frombuffer(spilled.read(first_set), dtype=np.uint64), other) >= threshold:
                        yield first, second
                    else:
                        counters.inc("rejected_pairs")
        finally:
            spilled.close()

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
    def __init__(self, slice_name: str, step: NearDedupStep, keep_dropped: float | None = None):
        self.counters = _Counters(slice_name, step.name)
        self.step = step
        self.keep_dropped = keep_dropped

    def start_bundle(self):
        self._spilled = SpillReader()

    def finish_bundle(self):
        self._spilled.close()

    def process(self, grouped):
        order_key, members = grouped
        verdicts = sorted(members[VERDICT])  # "drop" before "keep": a node that lost its label is dropped
        for parked in members[RECORDS]:
            record = self._spilled.read_object(parked)
            verdict = verdicts[0] if verdicts else ("keep", 1)
            if verdict[0] == "drop":
                drop = Drop("near_duplicate", scores={"cluster": verdict[1]})
                self.counters.inc(f"dropped:{drop.reason}")
                if self.keep_dropped is None:
                    sample = {"text": record["text"][: self.step.sample_chars],
                              "meta": dict(record["meta"], cluster=verdict[1])}
                    yield beam.pvalue.TaggedOutput(DROPPED, (order_key, sample))
                    continue
                kept = kept_reject(self.step.name, order_key, record, drop, self.keep_dropped)
                if kept is not None:
                    self.counters.inc(KEPT_DROPPED + drop.reason)
                    yield kept
                continue
            record["meta"]["cluster_size"] = verdict[1]
            self.counters.inc("out")
            self.counters.inc("bytes_out", utf8_len(record["text"]))
            yield order_key, record
