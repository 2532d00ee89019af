"""The generic DAG: inputs -> plan -> read -> recipe steps -> sorted shards, and dead letters.

Nothing here knows a slice's rules: the slice supplies ``plan``, ``read`` and ``steps``.
Every outcome increments a Beam counter ``"{slice}/{step}/{outcome}"`` in the
``redpajama`` namespace; ``redpajama.pipelines.stats`` turns them into ``stats.json``.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass

import apache_beam as beam
from apache_beam.metrics import Metrics
from apache_beam.transforms.window import GlobalWindow
from apache_beam.utils.timestamp import MIN_TIMESTAMP
from apache_beam.utils.windowed_value import WindowedValue
from redpajama.filters.base import Drop, Failure, JoinStep, NearDedupStep, ReferenceStep, SharedKeyStep, Step, utf8_len
from redpajama.pipelines import io, sources
from redpajama.pipelines.progress import UnitProgress
from redpajama.slices.base import Slice, WorkUnit

NAMESPACE = "redpajama"
FAILURES = "failures"
UNIT_YIELD = "_unit-yield"  # per-unit kept documents and bytes, read into stats.json and not kept
YIELDS = "yields"
PARENTS = "parents"
CHILDREN = "children"
RECORDS = "records"
SHARED = "shared"
FOUND = "found"


@dataclass(frozen=True)
class Layout:
    """Where one run of one slice writes."""

    slice_dir: str
    shard_bytes: int = 256 << 20
    num_shards: int | None = None
    spill: str | None = None  # a local folder every worker sees: lines wait there, not in the shuffle

    @property
    def temporary(self) -> str:
        return io.join(self.slice_dir, io.TEMPORARY)


class StepCounters:
    """Counters of one step, created once per DoFn instance."""

    def __init__(self, slice_name: str, step: str):
        self._prefix = f"{slice_name}/{step}/"
        self.docs_in = Metrics.counter(NAMESPACE, self._prefix + "in")
        self.docs_out = Metrics.counter(NAMESPACE, self._prefix + "out")
        self.bytes_in = Metrics.counter(NAMESPACE, self._prefix + "bytes_in")
        self.bytes_out = Metrics.counter(NAMESPACE, self._prefix + "bytes_out")
        self.failed = Metrics.counter(NAMESPACE, self._prefix + "failed")
        self._dropped: dict[str, object] = {}

    def dropped(self, reason: str, count: int = 1) -> None:
        if reason not in self._dropped:
            self._dropped[reason] = Metrics.counter(NAMESPACE, f"{self._prefix}dropped:{reason}")
        self._dropped[reason].inc(count)


class Tally:
    """A batch's counts for one step, added to its Beam counters once per batch."""

    __slots__ = ("docs_in", "docs_out", "bytes_in", "bytes_out", "failed", "dropped")

    def __init__(self):
        self.docs_in = self.docs_out = self.bytes_in = self.bytes_out = self.failed = 0
        self.dropped: dict[str, int] = {}

    def flush(self, counters: StepCounters) -> None:
        for name in ("docs_in", "docs_out", "bytes_in", "bytes_out", "failed"):
            value = getattr(self, name)
            if value:
                getattr(counters, name).inc(value)
        for reason, count in self.dropped.items():
            counters.dropped(reason, count)


# Records move between the map-only stages in lists of this many (Beam's cost is per element).
BATCH_RECORDS = 256
BATCH_BYTES = 16 << 20


def unbatch(item):
    """A batch's records one by one (a single record passes through): before a shuffle."""
    return item if isinstance(item, list) else [item]


def _progress(message: str) -> None:
    print(f"  {message}", file=sys.stderr, flush=True)


class ExpandInputs(beam.DoFn):
    """A path, glob or URL -> the files it names (a missing one is a counted failure)."""

    def __init__(self, slice_name: str):
        self.slice_name = slice_name

    def setup(self):
        self.counters = StepCounters(self.slice_name, "plan")

    def process(self, pattern: str):
        try:
            paths = sources.expand(pattern)
        except Exception as error:  # a filesystem refusing the pattern
            paths, detail = [], str(error)
        else:
            detail = "no file matches"
        if not paths:
            self.counters.failed.inc()
            yield beam.pvalue.TaggedOutput(FAILURES, Failure(pattern, "input", "missing_input", detail, "plan"))
        yield from paths


class PlanUnits(beam.DoFn):
    """One input file -> the units of work the slice splits it into."""

    def __init__(self, slc: Slice):
        self.slice = slc

    def setup(self):
        self.counters = StepCounters(self.slice.name, "plan")

    def process(self, path: str):
        for unit in self.slice.plan(path):
            if isinstance(unit, Failure):
                self.counters.failed.inc(unit.units)
                yield beam.pvalue.TaggedOutput(FAILURES, unit)
            else:
                self.counters.docs_out.inc()
                yield unit


class ReadUnits(beam.DoFn):
    """One unit -> keyed records, counted as documents read; failures go to the dead letter."""

    def __init__(self, slc: Slice):
        self.slice = slc

    def setup(self):
        self.counters = StepCounters(self.slice.name, "read")

    def process(self, unit: WorkUnit):
        """Yields lists of up to ``BATCH_RECORDS`` keyed records (failures one by one)."""
        started = time.monotonic()
        documents = failed = 0
        self.counters.docs_in.inc()
        label = f"{self.slice.name}: reading {unit.source} ({unit.location})"
        unit_id = unit_name(unit)
        batch: list = []
        batch_bytes = 0
        with UnitProgress(label, _unit_bytes(unit)) as progress:
            for item in self._items(unit):
                if isinstance(item, Failure):
                    failed += item.units
                    self.counters.failed.inc(item.units)
                    yield beam.pvalue.TaggedOutput(FAILURES, item)
                    continue
                documents += 1
                progress.documents = documents
                item[1]["meta"]["_unit"] = unit_id
                # a reader that keeps the source beside the text (arXiv's files) says how big it is
                batch_bytes += item[1]["meta"].get("_source_bytes") or utf8_len(item[1]["text"])
                batch.append(item)
                if len(batch) >= BATCH_RECORDS or batch_bytes >= BATCH_BYTES:
                    self._count(batch, batch_bytes)
                    yield batch
                    batch, batch_bytes = [], 0
        if batch:
            self._count(batch, batch_bytes)
            yield batch
        whole = unit.start == 0 and unit.end is None  # a range of a file may rightly hold nothing
        if documents == 0 and failed == 0 and whole:  # an empty input is a counted failure, not a silent nothing
            self.counters.failed.inc()
            yield beam.pvalue.TaggedOutput(FAILURES, Failure(unit.source, unit.location, "empty_input",
                                                             "the input holds no documents"))
            failed = 1
        _progress(
            f"{self.slice.name}: read {unit.source} ({unit.location}): {documents} documents, "
            f"{failed} failed, {time.monotonic() - started:.1f}s"
        )

    def _count(self, batch: list, size: int) -> None:
        self.counters.docs_out.inc(len(batch))
        self.counters.bytes_out.inc(size)

    def _items(self, unit: WorkUnit):
        """The reader's items; a reader that breaks fails the rest of its unit, not the job."""
        try:
            yield from self.slice.read(unit)
        except Exception as error:
            yield Failure(unit.source, unit.location, "reader_failed", f"{type(error).__name__}: {error}")


class ApplySteps(beam.DoFn):
    """Consecutive per-record steps, fused; each outcome counted under its step's name."""

    def __init__(self, slice_name: str, steps: list[Step]):
        self.slice_name = slice_name
        self.steps = steps

    def setup(self):
        for step in self.steps:
            step.setup()
        self.counters = [StepCounters(self.slice_name, step.name) for step in self.steps]

    def process(self, item):
        """A batch in, the batch of its kept records out (a single record: the same, unbatched)."""
        tallies = [Tally() for _ in self.steps]
        if isinstance(item, list):
            kept = []
            for single in item:
                result = self._apply(single, tallies)
                if isinstance(result, tuple):
                    kept.append(result)
                elif result is not None:
                    yield result
            if kept:
                yield kept
        else:
            result = self._apply(item, tallies)
            if result is not None:
                yield result
        for tally, counters in zip(tallies, self.counters, strict=True):
            tally.flush(counters)

    def _apply(self, item, tallies: list[Tally]):
        """The record after every step, None if dropped, or a tagged failure."""
        key, record = item
        text = record["text"]
        size = utf8_len(text)  # measured again only when a step rewrites the text
        for step, tally in zip(self.steps, tallies, strict=True):
            tally.docs_in += 1
            tally.bytes_in += size
            try:
                result = step.apply(record)
            except Exception as error:
                tally.failed += 1
                return beam.pvalue.TaggedOutput(FAILURES, _step_failure(step.name, key, record, error))
            if isinstance(result, Drop):
                tally.dropped[result.reason] = tally.dropped.get(result.reason, 0) + 1
                return None
            record = result
            if record["text"] is not text:
                text = record["text"]
                size = utf8_len(text)
            tally.docs_out += 1
            tally.bytes_out += size
        return key, record


def _unit_bytes(unit: WorkUnit) -> int | None:
    """The unit's size in raw bytes, where it is cheap to know (for the time left in progress lines)."""
    if unit.end is not None:
        return unit.end - unit.start
    try:
        return os.path.getsize(unit.source) - unit.start if "://" not in unit.source else None
    except OSError:
        return None


class _StepDoFn(beam.DoFn):
    """A DoFn serving one recipe step: its counters exist once per worker."""

    def __init__(self, slice_name: str, step):
        self.slice_name = slice_name
        self.step = step

    def setup(self):
        self.counters = StepCounters(self.slice_name, self.step.name)

    def count_in(self, record) -> None:
        self.counters.docs_in.inc()
        self.counters.bytes_in.inc(utf8_len(record["text"]))

    def count_out(self, record) -> None:
        self.counters.docs_out.inc()
        self.counters.bytes_out.inc(utf8_len(record["text"]))

    def apply_counted(self, order_key: str, record, *context):
        """``step.apply(record, *context)``, each outcome counted; yields what leaves the step."""
        try:
            result = self.step.apply(record, *context)
        except Exception as error:
            self.counters.failed.inc()
            yield beam.pvalue.TaggedOutput(FAILURES, _step_failure(self.step.name, order_key, record, error))
            return
        if isinstance(result, Drop):
            self.counters.dropped(result.reason)
            return
        self.count_out(result)
        yield order_key, result


class Join(beam.PTransform):
    """A :class:`JoinStep` as a shuffle: parents and children meet in ``CoGroupByKey``."""

    def __init__(self, slice_name: str, step: JoinStep):
        super().__init__()
        self.slice_name = slice_name
        self.step = step

    def expand(self, keyed):
        step = self.step
        routed = keyed | "Route" >> beam.ParDo(_RouteForJoin(self.slice_name, step)).with_outputs(
            PARENTS, CHILDREN, main="passthrough"
        )
        joined = {PARENTS: routed[PARENTS], CHILDREN: routed[CHILDREN]} | "CoGroup" >> beam.CoGroupByKey()
        merged = joined | "Merge" >> beam.ParDo(_MergeJoined(self.slice_name, step))
        return (routed.passthrough, merged) | "Rejoin" >> beam.Flatten()


class _RouteForJoin(_StepDoFn):
    def process(self, item):
        _, record = item
        self.count_in(record)
        parent = self.step.parent_key(record)
        if parent is not None:
            yield beam.pvalue.TaggedOutput(PARENTS, (parent, item))
            return
        child = self.step.child_key(record)
        if child is not None:
            yield beam.pvalue.TaggedOutput(CHILDREN, (child, item))
            return
        self.count_out(record)
        yield item


class _MergeJoined(_StepDoFn):
    def process(self, grouped):
        _, members = grouped
        # Shuffles deliver values in no fixed order: sort so the join sees a stable one.
        parents = sorted(members[PARENTS], key=lambda item: item[0])
        children = sorted(members[CHILDREN], key=lambda item: item[0])
        outcomes = list(self.step.join([r for _, r in parents], [r for _, r in children]))
        kept = [o for o in outcomes if not isinstance(o, Drop)]
        drops = [o for o in outcomes if isinstance(o, Drop)]
        if len(kept) + len(drops) != len(parents) + len(children):
            raise AssertionError(
                f"join step {self.step.name} accounted for {len(kept) + len(drops)} of "
                f"{len(parents) + len(children)} records"
            )
        for drop in drops:
            self.counters.dropped(drop.reason)
        order_key = (parents or children)[0][0]
        for index, record in enumerate(kept):
            self.count_out(record)
            yield (order_key if index == 0 else f"{order_key}/{index}"), record


class SharedKeys(beam.PTransform):
    """A :class:`SharedKeyStep` as two shuffles: keys -> the records holding them, then back.

    Only (key, order key) pairs travel through the first shuffle, and a key's records are
    streamed, never collected, so a key held by millions of records (a boilerplate line)
    costs no memory. Records then meet their shared keys in ``CoGroupByKey`` by order key.
    """

    def __init__(self, slice_name: str, step: SharedKeyStep):
        super().__init__()
        self.slice_name = slice_name
        self.step = step

    def expand(self, keyed):
        emitted = keyed | "Keys" >> beam.ParDo(_EmitKeys(self.slice_name, self.step)).with_outputs(
            SHARED, FAILURES, main=RECORDS
        )
        shared = (
            emitted[SHARED]
            | "GroupByKey" >> beam.GroupByKey()
            | "HeldByMany" >> beam.FlatMap(_holders_of_shared_key, minimum=self.step.min_records)
        )
        joined = {RECORDS: emitted[RECORDS], SHARED: shared} | "CoGroup" >> beam.CoGroupByKey()
        applied = joined | "Apply" >> beam.ParDo(_ApplyShared(self.slice_name, self.step)).with_outputs(
            FAILURES, main="kept"
        )
        return applied.kept, [emitted[FAILURES], applied[FAILURES]]


def _holders_of_shared_key(grouped, minimum: int):
    """(key, holder ids) -> (holder id, key) for every holder, if at least ``minimum`` hold it."""
    key, holders = grouped
    waiting = []
    for holder in holders:
        if waiting is None:
            yield holder, key
            continue
        waiting.append(holder)
        if len(waiting) >= minimum:
            for held in waiting:
                yield held, key
            waiting = None


class ReferenceLookup(beam.PTransform):
    """A :class:`ReferenceStep`: reference keys (read on the workers) meet records in ``CoGroupByKey``."""

    def __init__(self, slice_name: str, step: ReferenceStep):
        super().__init__()
        self.slice_name = slice_name
        self.step = step

    def expand(self, keyed):
        step = self.step
        found = (
            keyed.pipeline
            | "References" >> beam.Create(sorted(step.references))
            | "ExpandReferences" >> beam.FlatMap(sources.expand)
            | "SpreadReferences" >> beam.Reshuffle()
            | "ReadKeys" >> beam.FlatMap(step.read_keys)
            | "DistinctKeys" >> beam.Distinct()
            | "MarkFound" >> beam.Map(lambda key: (key, True))
        )
        by_key = keyed | "KeyRecords" >> beam.ParDo(_KeyForLookup(self.slice_name, step))
        joined = {RECORDS: by_key, FOUND: found} | "CoGroup" >> beam.CoGroupByKey()
        applied = joined | "Apply" >> beam.ParDo(_ApplyLookup(self.slice_name, step)).with_outputs(
            FAILURES, main="kept"
        )
        return applied.kept, [applied[FAILURES]]


class _KeyForLookup(_StepDoFn):
    def process(self, item):
        self.count_in(item[1])
        key = self.step.key(item[1])
        # Records without a key still pass through apply, under a key no reference has.
        yield (key if key is not None else f"\x00{item[0]}"), item


class _ApplyLookup(_StepDoFn):
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


def _holder_id(order_key: str) -> bytes:
    """A short stand-in for an order key in the key shuffle (order keys are long strings)."""
    return hashlib.blake2b(order_key.encode("utf-8"), digest_size=8).digest()


class _EmitKeys(_StepDoFn):
    def process(self, item):
        order_key, record = item
        self.count_in(record)
        try:
            keys = list(self.step.keys(record))
        except Exception as error:
            self.counters.failed.inc()
            yield beam.pvalue.TaggedOutput(FAILURES, _step_failure(self.step.name, order_key, record, error))
            return
        holder = _holder_id(order_key)
        for key in keys:
            yield beam.pvalue.TaggedOutput(SHARED, (key, holder))
        yield holder, (order_key, record)


class _ApplyShared(_StepDoFn):
    def process(self, grouped):
        _, members = grouped
        shared = set(members[SHARED])
        for order_key, record in members[RECORDS]:
            yield from self.apply_counted(order_key, record, shared)


def _step_failure(step: str, order_key: str, record, error: Exception) -> Failure:
    meta = record.get("meta", {})
    return Failure(
        source=str(meta.get("url") or meta.get("id") or "?"),
        location=order_key,
        reason=f"{step}_failed",
        detail=f"{type(error).__name__}: {error}",
        step=step,
    )


def _to_line(item, slc: Slice) -> tuple[str, str, str, bytes]:
    key, record = item
    line = record["text"].encode("utf-8") if slc.output_format == "lines" else io.encode_record(record)
    return slc.partition(record), record["meta"]["id"], key, line


def unit_name(unit: WorkUnit) -> str:
    """Names a unit in the per-unit yields (a split file's units by their start)."""
    return unit.source if unit.start == 0 else f"{unit.source}#@{unit.start}"


def _yield_line(item) -> tuple[str, str, str, bytes]:
    unit, (documents, size) = item
    return UNIT_YIELD, unit, unit, f"{unit}\t{documents}\t{size}".encode()


def _add_pairs(pairs) -> tuple[int, int]:
    documents = size = 0
    for first, second in pairs:
        documents += first
        size += second
    return documents, size


class CountBy(beam.PTransform):
    """Kept records counted by ``key(record)``: lines ``key<TAB>count`` of ``<name>-counts``, most first."""

    def __init__(self, name: str, key):
        super().__init__()
        self.name = name
        self.key = key

    def expand(self, keyed):
        name, key = self.name, self.key
        return (
            keyed
            | "Key" >> beam.Map(lambda item: (key(item[1]), 1))
            | "Sum" >> beam.CombinePerKey(sum)
            | "Line" >> beam.Map(lambda kv: (f"{name}-counts", kv[0], f"{10**15 - kv[1]:015d}|{kv[0]}",
                                             f"{kv[0]}\t{kv[1]}".encode()))
        )


class SeededSample(beam.PTransform):
    """A uniform sample of ``n`` kept records without replacement: those whose seeded hash of
    the text is smallest (the same sample for the same seed, whatever the runner did)."""

    def __init__(self, n: int, seed: int):
        super().__init__()
        self.n = n
        self.seed = seed

    def expand(self, keyed):
        seed = self.seed
        return (
            keyed
            | "Text" >> beam.Map(lambda item: item[1]["text"])
            | "Smallest" >> beam.combiners.Top.Of(self.n, key=lambda text: sample_hash(seed, text), reverse=True)
            | "Lines" >> beam.FlatMap(lambda texts: [("sample", text, text, text.encode("utf-8")) for text in texts])
        )


def sample_hash(seed: int, text: str) -> bytes:
    return hashlib.blake2b(text.encode("utf-8"), digest_size=8, key=str(seed).encode("utf-8")).digest()


def _failure_line(failure: Failure) -> tuple[str, str, str, bytes]:
    key = f"{failure.source}\t{failure.location}\t{failure.reason}"
    return "errors", key, key, json.dumps(failure.as_json(), ensure_ascii=False).encode("utf-8", "backslashreplace")


INLINE_INPUT_BYTES = 256 << 10


def _input_list(pipeline: beam.Pipeline, inputs: list[str], layout: Layout):
    """The inputs as a PCollection: inline when small, else from a list file the workers read,
    so the job graph stays small (Dataflow refuses graphs over 10 MB)."""
    if sum(len(item) + 1 for item in inputs) <= INLINE_INPUT_BYTES:
        return pipeline | "Inputs" >> beam.Create(inputs)
    path = io.join(layout.temporary, "_inputs.txt")
    io.write_lines(path, (item.encode("utf-8") for item in inputs), compressed=False)
    return pipeline | "Inputs" >> beam.io.ReadFromText(path)


def build(pipeline: beam.Pipeline, slc: Slice, inputs: Iterable[str], layout: Layout):
    """Add the slice's whole DAG to ``pipeline``; returns the PCollection of written paths."""
    name = slc.name
    expanded = (
        _input_list(pipeline, sorted(inputs), layout)
        | "Expand" >> beam.ParDo(ExpandInputs(name)).with_outputs(FAILURES, main="files")
    )
    planned = (
        expanded.files
        | "DistinctFiles" >> beam.Distinct()
        | "Plan" >> beam.ParDo(PlanUnits(slc)).with_outputs(FAILURES, main="units")
    )
    read = (
        planned.units
        | "SpreadUnits" >> beam.Reshuffle()
        | "Read" >> beam.ParDo(ReadUnits(slc)).with_outputs(FAILURES, main="records")
    )
    failures = [expanded[FAILURES], planned[FAILURES], read[FAILURES]]
    samples = []  # dropped records a step wants kept for inspection (near-duplicates)
    records = read.records
    for index, group in enumerate(_group_steps(slc.steps())):
        if not isinstance(group, list):  # a shuffle step takes records one by one
            records = records | f"Unbatch{index}" >> beam.FlatMap(unbatch)
        if isinstance(group, JoinStep):
            records = records | f"Join{index}_{group.name}" >> Join(name, group)
            continue
        if isinstance(group, NearDedupStep):
            from redpajama.dedup.minhash import NearDuplicates

            records, dropped = records | f"Shuffle{index}_{group.name}" >> NearDuplicates(name, group)
            samples.append(dropped)
            continue
        if isinstance(group, SharedKeyStep | ReferenceStep):
            transform = SharedKeys if isinstance(group, SharedKeyStep) else ReferenceLookup
            records, step_failures = records | f"Shuffle{index}_{group.name}" >> transform(name, group)
            failures.extend(step_failures)
            continue
        applied = records | f"Steps{index}" >> beam.ParDo(ApplySteps(name, group)).with_outputs(
            FAILURES, main="kept"
        )
        failures.append(applied[FAILURES])
        records = applied.kept

    encoded = records | "Encode" >> beam.ParDo(_EncodeWritten(slc)).with_outputs(FAILURES, YIELDS, main="lines")
    failures.append(encoded[FAILURES])
    as_lines = slc.output_format == "lines"
    written = encoded.lines | "Write" >> io.WriteSortedShards(
        layout.temporary, layout.shard_bytes, layout.num_shards, always=slc.always_written(),
        compressed=not as_lines, extension=".txt" if as_lines else ".jsonl", spill=layout.spill,
    )
    extras = [encoded[YIELDS] | "UnitYields" >> beam.CombinePerKey(_add_pairs) | "YieldLines" >> beam.Map(_yield_line)]
    if slc.counts() or slc.sample_spec():
        singles = records | "UnbatchExtras" >> beam.FlatMap(unbatch)
        extras += [singles | f"Count_{name}" >> CountBy(name, key) for name, key in slc.counts().items()]
        if slc.sample_spec():
            extras.append(singles | "Sample" >> SeededSample(*slc.sample_spec()))
    extras_written = extras | "AllExtras" >> beam.Flatten() | "WriteExtras" >> io.WriteSortedShards(
        layout.temporary, layout.shard_bytes, compressed=False, extension=".txt", spill=layout.spill
    )
    errors_written = (
        failures
        | "AllFailures" >> beam.Flatten()
        | "EncodeFailures" >> beam.Map(_failure_line)
        | "WriteErrors"
        >> io.WriteSortedShards(io.join(layout.temporary, io.ERRORS), layout.shard_bytes, compressed=False,
                                always=("errors",), spill=layout.spill)
    )
    outputs = [written, errors_written, extras_written]
    if samples:
        outputs.append(
            samples
            | "AllDropped" >> beam.Flatten()
            | "EncodeDropped" >> beam.Map(lambda item: ("near_duplicate", item[1]["meta"]["id"], item[0],
                                                        io.encode_record(item[1])))
            | "WriteDropped" >> io.WriteSortedShards(io.join(layout.temporary, io.DROPPED), layout.shard_bytes,
                                                     spill=layout.spill)
        )
    return outputs | "Written" >> beam.Flatten()


class _EncodeWritten(beam.DoFn):
    """Counts kept records as written and turns them into sink lines (a batch into a list of
    lines); a record that cannot be written as UTF-8 JSON (a lone surrogate from a JSON escape,
    say) fails alone. Kept documents and bytes per input unit leave once per bundle (``yields``)."""

    def __init__(self, slc: Slice):
        self.slice = slc

    def setup(self):
        self.counters = StepCounters(self.slice.name, "write")

    def start_bundle(self):
        self._yields: dict[str, list[int]] = {}

    def process(self, item):
        tally = Tally()
        lines = []
        for single in unbatch(item):
            key, record = single
            try:
                lines.append(_to_line(single, self.slice))
            except (TypeError, ValueError) as error:  # UnicodeEncodeError is a ValueError
                tally.failed += 1
                yield beam.pvalue.TaggedOutput(FAILURES, _step_failure("write", key, record, error))
                continue
            size = utf8_len(record["text"])
            tally.docs_out += 1
            tally.bytes_out += size
            unit = self._yields.setdefault(record["meta"].get("_unit", ""), [0, 0])
            unit[0] += 1
            unit[1] += size
        tally.flush(self.counters)
        if lines:
            yield lines

    def finish_bundle(self):
        for unit, counts in self._yields.items():
            yield beam.pvalue.TaggedOutput(YIELDS, WindowedValue((unit, tuple(counts)), MIN_TIMESTAMP, [GlobalWindow()]))
        self._yields = {}


def _group_steps(steps: list) -> list:
    """Runs of per-record steps are fused into one DoFn; a shuffle step stands alone."""
    groups: list = []
    for step in steps:
        if isinstance(step, JoinStep | SharedKeyStep | ReferenceStep | NearDedupStep):
            groups.append(step)
        elif groups and isinstance(groups[-1], list):
            groups[-1].append(step)
        else:
            groups.append([step])
    return groups
