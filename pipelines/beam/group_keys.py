"""A :class:`GroupKeyStep` as cc_net runs line dedup: every unit read twice, keys meeting once per group.

1. First read: each unit's records go through the per-record steps before the step (nothing is
   counted: the second read counts) and give their keys; one element per unit and group carries
   two sorted key arrays (``redpajama.dedup.shared_keys.unit_keys``).
2. By group: a group's arrays meet in one place, its shared keys are counted, and every unit
   gets back the shared keys it holds (one element per unit).
3. By unit: the unit meets its shared keys and is read again; its records are counted as read,
   go through the same steps and then through this one.

Only units and key arrays travel: no record, and no element per key. With ``spill`` (local
runs, where every worker sees the same disk) the first read is the counted one: the records
that come out of the steps before this one wait in spill files, and the second "read" takes
them from there instead of reading and parsing the unit again.
"""

from __future__ import annotations

import apache_beam as beam
from apache_beam.metrics import Metrics
from redpajama.core.records import GroupKeyStep, Step
from redpajama.dedup.shared_keys import SharedKeyCounter, as_keys, held_shared, key_set, record_keys, unit_keys
from redpajama.pipelines.beam.reading import ReadUnits
from redpajama.pipelines.beam.shuffle_volume import counted
from redpajama.pipelines.beam.spill import SpillReader, SpillWriter
from redpajama.pipelines.beam.steps import DROPPED, FAILURES, NAMESPACE, ApplySteps
from redpajama.pipelines.runs.recipe import Tally, WithShared
from redpajama.slices.base import Slice, WorkUnit

UNITS = "units"
KEYS = "keys"
SHARED = "shared"


class ReadTwice(beam.PTransform):
    """Units -> records after ``before`` and ``step``, as ``ReadUnits`` + ``ApplySteps`` would give
    them (batches, failures tagged ``FAILURES``, rejects kept with ``keep_dropped`` tagged
    ``DROPPED``), with the step's shared keys found per group."""

    def __init__(self, slc: Slice, before: list[Step], step: GroupKeyStep, spill: str | None = None,
                 keep_dropped: float | None = None):
        super().__init__()
        self.slice = slc
        self.before = before
        self.step = step
        self.spill = spill
        self.keep_dropped = keep_dropped

    def expand(self, units):
        keep = self.keep_dropped
        if self.spill:
            first = units | "FirstRead" >> beam.ParDo(
                _ReadParked(self.slice, self.before, self.step, self.spill, keep)).with_outputs(
                KEYS, FAILURES, DROPPED, main=UNITS)
            second = _FromParked(self.slice, self.step, keep)
        else:
            first = units | "FirstRead" >> beam.ParDo(_UnitKeys(self.slice, self.before, self.step)).with_outputs(
                KEYS, main=UNITS)
            second = _SecondRead(self.slice, self.before, self.step, keep)
        name, step = self.slice.name, self.step.name
        shared = (
            counted(first[KEYS], name, f"{step}:key_arrays")
            | "ByGroup" >> beam.GroupByKey()
            | "SharedPerUnit" >> beam.ParDo(_SharedPerUnit(name, step))
        )
        joined = {UNITS: counted(first[UNITS], name, f"{step}:units"),
                  SHARED: counted(shared, name, f"{step}:shared_keys")} | "ByUnit" >> beam.CoGroupByKey()
        read = joined | "SecondRead" >> beam.ParDo(second).with_outputs(FAILURES, DROPPED, main="records")
        failures = [read[FAILURES], first[FAILURES]] if self.spill else [read[FAILURES]]
        dropped = [read[DROPPED], first[DROPPED]] if self.spill else [read[DROPPED]]
        return {"records": read.records, FAILURES: failures | "ReadFailures" >> beam.Flatten(),
                DROPPED: dropped | "ReadDropped" >> beam.Flatten()}


def _unit_key_arrays(uid: tuple[str, int], by_group: dict[str, list[bytes]]):
    for group, records in sorted(by_group.items()):
        held, shared = unit_keys(records)
        yield beam.pvalue.TaggedOutput(KEYS, (group, (uid, held.tobytes(), shared.tobytes())))


class _UnitKeys(beam.DoFn):
    """A unit -> ``(unit id, unit)``, and ``(group, (unit id, held, held by two or more))`` under ``KEYS``."""

    def __init__(self, slc: Slice, before: list[Step], step: GroupKeyStep):
        self.slice = slc
        self.before = before
        self.step = step

    def setup(self):
        self.steps = ApplySteps(self.slice.name, self.before, self.slice.context.budget)  # for its budget, not its counts
        self.steps.setup()

    def teardown(self):
        self.steps.teardown()

    def process(self, unit: WorkUnit):
        by_group: dict[str, list[bytes]] = {}
        for item in self._records(unit):
            kept = self.steps._apply(item, [Tally() for _ in self.before])  # the second read counts
            if not isinstance(kept, tuple):
                continue  # dropped, or failed
            record = kept[1]
            try:
                group, keys = self.step.group(record), record_keys(self.step.keys(record))
            except Exception:  # noqa: BLE001 - the step fails this record when it is read again
                continue
            by_group.setdefault(group, []).append(keys)
        uid = tuple(unit.id)
        yield uid, unit
        yield from _unit_key_arrays(uid, by_group)

    def _records(self, unit: WorkUnit):
        """The unit's records (a failure is reported by the second read; a reader that breaks ends the unit)."""
        try:
            for item in self.slice.read(unit):
                if isinstance(item, tuple):
                    yield item
        except Exception:  # noqa: BLE001 - the second read reports it as reader_failed
            return


class _SharedPerUnit(beam.DoFn):
    """``(group, [(unit id, held, held twice), ...])`` -> ``(unit id, (group, shared keys it holds))``.

    The group's values are iterated twice (a shuffle's grouped values can be), so memory holds
    the group's distinct keys, not all its arrays.
    """

    def __init__(self, slice_name: str, step_name: str):
        self.prefix = f"{slice_name}/{step_name}/"

    def setup(self):
        self.groups = Metrics.counter(NAMESPACE, self.prefix + "groups")
        self.shared_keys = Metrics.counter(NAMESPACE, self.prefix + "shared_keys")

    def process(self, grouped):
        group, units = grouped
        counter = SharedKeyCounter()
        for _, held, twice in units:
            counter.add(as_keys(held), as_keys(twice))
        shared = counter.shared()
        self.groups.inc()
        self.shared_keys.inc(len(shared))
        for uid, held, _ in units:
            mine = held_shared(as_keys(held), shared)
            if len(mine):
                yield uid, (group, mine.tobytes())


class _SecondRead(beam.DoFn):
    """``(unit id, {units, shared})`` -> the unit read (counted) through ``before`` and the step."""

    def __init__(self, slc: Slice, before: list[Step], step: GroupKeyStep, keep_dropped: float | None = None):
        self.slice = slc
        self.before = before
        self.step = step
        self.keep_dropped = keep_dropped

    def setup(self):
        self.reader = ReadUnits(self.slice)
        self.reader.setup()
        self.with_shared = WithShared(self.step)
        self.steps = ApplySteps(self.slice.name, [*self.before, self.with_shared], self.slice.context.budget, self.keep_dropped)
        self.steps.setup()

    def teardown(self):
        self.steps.teardown()

    def process(self, joined):
        _, members = joined
        self.with_shared.shared = {group: key_set(packed) for group, packed in members[SHARED]}
        for unit in members[UNITS]:
            for batch in self.reader.process(unit):
                if isinstance(batch, list):
                    yield from self.steps.process(batch)
                else:
                    yield batch  # a failure, already tagged
        self.with_shared.shared = {}


class _ReadParked(beam.DoFn):
    """The counted read of a unit and the steps before the group step, in a local run: the
    records that come out are parked in spill files; ``(unit id, [spill references])`` and the
    key arrays leave, as ``_UnitKeys`` sends them."""

    def __init__(self, slc: Slice, before: list[Step], step: GroupKeyStep, spill: str,
                 keep_dropped: float | None = None):
        self.slice = slc
        self.before = before
        self.step = step
        self.spill = spill
        self.keep_dropped = keep_dropped

    def setup(self):
        self.reader = ReadUnits(self.slice)
        self.reader.setup()
        self.steps = ApplySteps(self.slice.name, self.before, self.slice.context.budget, self.keep_dropped)
        self.steps.setup()

    def teardown(self):
        self.steps.teardown()

    def start_bundle(self):
        self._writer = SpillWriter(self.spill)

    def finish_bundle(self):
        self._writer.close()

    def process(self, unit: WorkUnit):
        by_group: dict[str, list[bytes]] = {}
        parked = []
        for batch in self.reader.process(unit):
            for kept in self.steps.process(batch) if isinstance(batch, list) else (batch,):
                if not isinstance(kept, list):
                    yield kept  # a failure or a reject kept, already tagged
                    continue
                for _, record in kept:
                    try:
                        group, keys = self.step.group(record), record_keys(self.step.keys(record))
                    except Exception:  # noqa: BLE001 - the step fails this record when it applies
                        continue
                    by_group.setdefault(group, []).append(keys)
                parked.append(self._writer.put_object(kept))  # after keys(): what it kept in meta stays
        uid = tuple(unit.id)
        yield uid, [tuple(place) for place in parked]
        yield from _unit_key_arrays(uid, by_group)


class _FromParked(beam.DoFn):
    """``(unit id, {units: [spill references], shared})`` -> the parked records through the step."""

    def __init__(self, slc: Slice, step: GroupKeyStep, keep_dropped: float | None = None):
        self.slice = slc
        self.step = step
        self.keep_dropped = keep_dropped

    def setup(self):
        self.with_shared = WithShared(self.step)
        self.steps = ApplySteps(self.slice.name, [self.with_shared], self.slice.context.budget, self.keep_dropped)
        self.steps.setup()
        self._spilled = SpillReader()

    def teardown(self):
        self.steps.teardown()
        self._spilled.close()

    def process(self, joined):
        _, members = joined
        self.with_shared.shared = {group: key_set(packed) for group, packed in members[SHARED]}
        for parked in members[UNITS]:
            for place in parked:
                yield from self.steps.process(self._spilled.read_object(place))
        self.with_shared.shared = {}
