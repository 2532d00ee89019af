"""A :class:`KeepFirstStep` decided on (key, order key) pairs and applied as the records are written.

Records reaching the step go on at once through the per-record steps after it and into sink
lines. Each keyed record also leaves a pair ``(key, (order key, trace))``: the trace says what
the later steps and the encoder did with it (their counts, a failure, where its line went);
a pair takes under 200 bytes. A key's pairs meet in one group: the first by order key is kept, and its
trace is counted now; every other is a duplicate: counted as dropped by this step, its trace
discarded, and its line, if one was made, removed in the sink by a tombstone. Only pairs and
tombstones travel; a record's text crosses one shuffle, the sink's.

Where the step is followed by a shuffle step, it runs as a join
(:func:`~redpajama.pipelines.runs.recipe.as_join`).
"""

from __future__ import annotations

from typing import NamedTuple

import apache_beam as beam
from redpajama.core.records import Drop, Failure, KeepFirstStep, Step, utf8_len
from redpajama.pipelines.beam.shuffle_volume import counted
from redpajama.pipelines.beam.steps import FAILURES, ApplySteps, StepCounters
from redpajama.pipelines.beam.written import YIELDS, UnitYields
from redpajama.pipelines.runs.recipe import WRITE, Tally, step_failure, to_line, unbatch
from redpajama.pipelines.runs.sink import Tombstone, line_digest
from redpajama.slices.base import Slice

PAIRS = "pairs"
REMOVED = "removed"


class Written(NamedTuple):
    """Where a keyed record's line went: enough to count it, or to take it back."""

    partition: str
    shard_key: str
    line_bytes: int
    digest: bytes
    unit: tuple[str, int] | None  # the record's unit, as it carries it (see UnitId)
    text_bytes: int


class Trace(NamedTuple):
    """What happened to a keyed record after this step, to be counted only if it is kept."""

    bytes_in: int
    tallies: tuple  # per later step reached: (bytes_in, out, bytes_out, failed, dropped reason or "", other counts)
    failure: Failure | None  # from a later step, or from the encoder
    written: Written | None


class KeepFirstAtSink(beam.PTransform):
    """Records -> ``lines`` (:class:`~redpajama.pipelines.runs.sink.SinkLine` lists), ``removed``
    (:class:`~redpajama.pipelines.runs.sink.Tombstone` items for the sink), ``failures`` and ``yields``."""

    def __init__(self, slc: Slice, step: KeepFirstStep, after: list[Step]):
        super().__init__()
        self.slice = slc
        self.step = step
        self.after = after

    def expand(self, records):
        tail = records | "Tail" >> beam.ParDo(_Tail(self.slice, self.step, self.after)).with_outputs(
            PAIRS, FAILURES, YIELDS, main="lines")
        verdicts = (
            counted(tail[PAIRS], self.slice.name, f"{self.step.name}:pairs")
            | "ByKey" >> beam.GroupByKey()
            | "Verdicts" >> beam.ParDo(_Verdicts(self.slice, self.step, self.after)).with_outputs(
                FAILURES, YIELDS, main=REMOVED)
        )
        failures = (tail[FAILURES], verdicts[FAILURES]) | "Failures" >> beam.Flatten()
        yields = (tail[YIELDS], verdicts[YIELDS]) | "Yields" >> beam.Flatten()
        return {"lines": tail.lines, REMOVED: verdicts[REMOVED], FAILURES: failures, YIELDS: yields}


def _compact(tally: Tally) -> tuple:
    reason = next(iter(tally.dropped), "")
    return tally.bytes_in, tally.docs_out, tally.bytes_out, tally.failed, reason, tuple(tally.other.items())


def _expand(compact: tuple) -> Tally:
    tally = Tally()
    tally.docs_in = 1
    tally.bytes_in, tally.docs_out, tally.bytes_out, tally.failed, reason, other = compact
    if reason:
        tally.dropped[reason] = 1
    tally.other.update(other)
    return tally


class _Tail(beam.DoFn):
    """The later steps and the encoder, at once; a keyed record's counts wait in its trace."""

    def __init__(self, slc: Slice, step: KeepFirstStep, after: list[Step]):
        self.slice = slc
        self.step = step
        self.after = after

    def setup(self):
        self.steps = ApplySteps(self.slice.name, self.after, self.slice.context.budget)
        self.steps.setup()
        self.counters = StepCounters(self.slice.name, self.step.name)
        self.write = StepCounters(self.slice.name, WRITE)

    def teardown(self):
        self.steps.teardown()

    def start_bundle(self):
        self._yields = UnitYields()

    def process(self, item):
        lines = []
        for single in unbatch(item):
            order_key, record = single
            try:
                key = self.step.key(record)
            except Exception as error:
                self.counters.failed.inc()
                yield beam.pvalue.TaggedOutput(FAILURES, step_failure(self.step.name, order_key, record, error))
                continue
            if key is None:
                size = utf8_len(record["text"])
                self.counters.docs_in.inc()
                self.counters.bytes_in.inc(size)
                self.counters.docs_out.inc()
                self.counters.bytes_out.inc(size)
                yield from self._counted(single, lines)
                continue
            bytes_in, tallies, failure, written = self._traced(single, lines)
            plain = None if written is None else tuple(written)  # plain tuples: the shuffle's coder is compact
            yield beam.pvalue.TaggedOutput(PAIRS, (key, (order_key, (bytes_in, tallies, failure, plain))))
        if lines:
            yield lines

    def _counted(self, single, lines: list):
        """A record that takes no part: later steps and the encoder, counted at once."""
        for out in self.steps.process(single):
            if not isinstance(out, tuple):
                yield out  # a tagged failure
                continue
            key, record = out
            tally = Tally()
            try:
                lines.append(to_line(out, self.slice))
            except (TypeError, ValueError) as error:
                tally.failed += 1
                yield beam.pvalue.TaggedOutput(FAILURES, step_failure(WRITE, key, record, error))
            else:
                tally.docs_out += 1
                tally.bytes_out = utf8_len(record["text"])
                self._yields.add(record["meta"].get("_unit"), 1, tally.bytes_out)
            tally.flush(self.write)

    def _traced(self, single, lines: list) -> Trace:
        order_key, record = single
        bytes_in = utf8_len(record["text"])
        tallies = [Tally() for _ in self.after]
        result = self.steps._apply(single, tallies)
        reached = tuple(_compact(tally) for tally in tallies if tally.docs_in)
        if result is None:
            return Trace(bytes_in, reached, None, None)
        if not isinstance(result, tuple):
            return Trace(bytes_in, reached, result.value, None)  # a tagged failure
        try:
            made = to_line(result, self.slice)
        except (TypeError, ValueError) as error:
            return Trace(bytes_in, reached, step_failure(WRITE, order_key, result[1], error), None)
        lines.append(made)
        meta = result[1]["meta"]
        written = Written(made.partition, made.shard_key, len(made.line), line_digest(made.line), meta.get("_unit"),
                          utf8_len(result[1]["text"]))
        return Trace(bytes_in, reached, None, written)

    def finish_bundle(self):
        yield from self._yields.emit()


class _Verdicts(beam.DoFn):
    """``(key, [(order key, trace), ...])``: the first is counted as kept, the others as duplicates."""

    def __init__(self, slc: Slice, step: KeepFirstStep, after: list[Step]):
        self.slice = slc
        self.step = step
        self.after = after

    def setup(self):
        self.counters = StepCounters(self.slice.name, self.step.name)
        self.later = [StepCounters(self.slice.name, step.name) for step in self.after]
        self.write = StepCounters(self.slice.name, WRITE)

    def start_bundle(self):
        self._yields = UnitYields()

    def process(self, grouped):
        _, holders = grouped
        holders = sorted(holders, key=lambda holder: holder[0])
        if any(first[0] == second[0] for first, second in zip(holders, holders[1:], strict=False)):
            holders.sort(key=lambda holder: (holder[0], repr(holder[1])))  # the same order key twice
        for index, (order_key, (bytes_in, tallies, failure, written)) in enumerate(holders):
            trace = Trace(bytes_in, tallies, failure, None if written is None else Written(*written))
            self.counters.docs_in.inc()
            self.counters.bytes_in.inc(trace.bytes_in)
            if index:
                self.counters.dropped(Drop(self.step.reason).reason)
                if trace.written is not None:
                    written = trace.written
                    yield Tombstone(written.partition, written.shard_key, order_key, written.line_bytes, written.digest)
                continue
            self.counters.docs_out.inc()
            self.counters.bytes_out.inc(trace.bytes_in)
            yield from self._count(trace)

    def _count(self, trace: Trace):
        for compact, counters in zip(trace.tallies, self.later, strict=False):
            _expand(compact).flush(counters)
        written = trace.written
        if trace.failure is not None:
            if trace.failure.step == WRITE:
                self.write.failed.inc()
            yield beam.pvalue.TaggedOutput(FAILURES, trace.failure)
        elif written is not None:
            self.write.docs_out.inc()
            self.write.bytes_out.inc(written.text_bytes)
            self._yields.add(written.unit, 1, written.text_bytes)

    def finish_bundle(self):
        yield from self._yields.emit()
