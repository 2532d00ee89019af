"""The in-process executor: a slice's recipe in this process, without Beam.

Inputs are expanded, planned and read unit by unit; per-record steps run fused (under the run's
per-document budget), each shuffle step in memory (:mod:`redpajama.pipelines.inprocess.shuffles`),
and every output through :func:`~redpajama.pipelines.inprocess.sink.write_sorted_shards` by the
sink's rules: the same files, failures and counts as a Beam run. It runs in one supervised engine
process (:mod:`redpajama.pipelines.runs.engine`), holds every record in memory and measures no
shuffle volume: it is meant for small inputs (tests, a few files).
"""

from __future__ import annotations

import time
from collections import Counter

from redpajama.core import s3, storage
from redpajama.core.errors import UsageError
from redpajama.core.records import (
    Failure,
    GroupKeyStep,
    JoinStep,
    KeepFirstStep,
    NearDedupStep,
    ReferenceStep,
    is_utf8,
    utf8_len,
)
from redpajama.dedup.shared_keys import SharedKeyCounter, as_keys, held_shared, key_set, record_keys, unit_keys
from redpajama.pipelines.inprocess import shuffles
from redpajama.pipelines.inprocess.counters import Counters
from redpajama.pipelines.inprocess.shuffles import Keyed, Outputs
from redpajama.pipelines.inprocess.sink import write_sorted_shards
from redpajama.pipelines.runs import sink
from redpajama.pipelines.runs.engine import run_supervised
from redpajama.pipelines.runs.executor import Layout
from redpajama.pipelines.runs.output_folder import DROPPED, ERRORS, UNIT_YIELDS, join
from redpajama.pipelines.runs.progress import UnitProgress, emit
from redpajama.pipelines.runs.recipe import (
    WRITE,
    FusedSteps,
    KeptReject,
    Tally,
    WithShared,
    as_join,
    booked,
    count_line,
    empty_input,
    failure_line,
    group_steps,
    keep_first_at_sink,
    read_twice_at,
    reader_items,
    sample_hash,
    sample_line,
    step_failure,
    to_line,
    unit_bytes,
    unreadable_item,
)
from redpajama.slices.base import Slice, UnitId, WorkUnit

SHUFFLES = {JoinStep: shuffles.join, NearDedupStep: shuffles.near_duplicates, ReferenceStep: shuffles.reference_lookup}


class InProcessExecutor:
    """Runs a slice's recipe in this process (see the module)."""

    workers = 1

    def describe(self) -> str:
        return "in-process"

    def execute(self, slc: Slice, inputs: list[str], layout: Layout, *, quiet: bool = True,
                close_in_child: tuple[int, ...] = ()) -> dict[str, int]:
        if slc.context.table is not None:
            raise UsageError(f"{slc.name}: a query's result table is read by the Beam executor only (--executor beam)")
        # In the supervised engine process, as Beam's runs: Ctrl-C and SIGTERM end it with one line.
        return run_supervised(lambda: Recipe(slc, layout.keep_dropped).run(inputs, layout), close_in_child)


class Recipe:
    """One run of one slice's recipe, its counters and everything it wrote; ``seconds`` is where
    the time went: reading (``read``) and each step (its ``apply``, or its shuffle in memory)."""

    def __init__(self, slc: Slice, keep_dropped: float | None = None):
        self.slice = slc
        self.fraction = keep_dropped
        self.counters = Counters(slc.name)
        self.out = Outputs()
        self.seconds: Counter[str] = Counter()

    def run(self, inputs: list[str], layout: Layout) -> dict[str, int]:
        """The whole recipe, its outputs written by the sink's rules; the run's counters."""
        self._write(self.kept(inputs, self.slice.steps(), at_sink=self.fraction is None), layout)
        return self.counters.as_dict()

    def kept(self, inputs: list[str], steps: list, *, at_sink: bool = False) -> list[Keyed]:
        """The records ``steps`` keep of the inputs (a keep-first step decided at the sink where
        ``at_sink`` allows it), in the order the steps leave them."""
        s3.pay_for_all(self.slice.context.requester_pays)
        units = [unit for path in self._expand(sorted(inputs)) for unit in self._plan(path)]
        at = read_twice_at(steps)
        if at is None:
            records = [item for unit in units for item in self._read(unit)]
        else:
            records = self._read_twice(units, steps[:at], steps[at])
            steps = steps[at + 1 :]
        last = keep_first_at_sink(steps, self.slice) if at_sink else None
        for group in group_steps(steps[:last]):
            records = self._apply(group, records)
        if last is not None:
            started = time.perf_counter()
            records = shuffles.keep_first_at_sink(records, steps[last], self.counters, self.out)
            self.seconds[steps[last].name] += time.perf_counter() - started
            records = self._apply(steps[last + 1 :], records)
        return records

    # --- inputs ---------------------------------------------------------------------------

    def _expand(self, patterns: list[str]):
        """Each path, glob or URL -> the files it names (a missing one is a counted failure)."""
        counts = self.counters.step("plan")
        for pattern in patterns:
            try:
                paths = storage.expand(pattern, folders=self.slice.reads_folders)
            except Exception as error:  # a file system refusing the pattern
                paths, detail = [], str(error)
            else:
                detail = "no file matches"
            if not paths:
                counts.failed.inc()
                self.out.failures.append(Failure(pattern, "input", "missing_input", detail, "plan"))
            for path in paths:
                if is_utf8(path):
                    yield path
                else:
                    counts.failed.inc()
                    self.out.failures.append(Failure(path, "input", "invalid_file_name", "the name is not UTF-8", "plan"))

    def _plan(self, path: str):
        counts = self.counters.step("plan")
        for unit in self.slice.plan(path):
            if isinstance(unit, Failure):
                counts.failed.inc(unit.units)
                self.out.failures.append(unit)
            else:
                counts.docs_out.inc()
                yield unit

    def _read(self, unit: WorkUnit) -> list[Keyed]:
        """One unit's keyed records, counted as read; its failures dead-lettered."""
        counts = self.counters.step("read")
        started = time.perf_counter()
        counts.docs_in.inc()
        records: list[Keyed] = []
        failed = 0
        unit_id = tuple(unit.id)
        with UnitProgress(f"{self.slice.name}: reading {unit.source} ({unit.location})", unit_bytes(unit)) as progress:
            for item in reader_items(self.slice, unit):
                if isinstance(item, Failure):
                    failed += item.units
                    counts.failed.inc(item.units)
                    self.out.failures.append(item)
                    continue
                try:
                    size = booked(item, unit_id)
                except Exception as error:  # fails alone: an unwritable record, or a reader's malformed item
                    failed += 1
                    counts.failed.inc()
                    self.out.failures.append(unreadable_item(unit, item, error))
                    continue
                records.append(item)
                counts.docs_out.inc()
                counts.bytes_out.inc(size)
                progress.documents = len(records)
        if not records and failed == 0 and unit.start == 0 and unit.end is None:
            counts.failed.inc()
            self.out.failures.append(empty_input(unit))
            failed = 1
        self.seconds["read"] += time.perf_counter() - started
        emit(f"  {self.slice.name}: read {unit.source} ({unit.location}): {len(records)} documents, "
             f"{failed} failed, {time.perf_counter() - started:.1f}s")
        return records

    def _read_twice(self, units: list[WorkUnit], before: list, step: GroupKeyStep) -> list[Keyed]:
        """A :class:`GroupKeyStep` after only per-record steps: each unit read (counted) through
        ``before``; a group's keys held by two or more records are shared; each unit's records then
        go through the step with the shared keys it holds."""
        per_unit: list[tuple[list[Keyed], dict[str, list[bytes]]]] = []
        for unit in units:
            kept = self._apply(before, self._read(unit))
            started = time.perf_counter()
            by_group: dict[str, list[bytes]] = {}
            for _, record in kept:
                try:
                    group, keys = step.group(record), record_keys(step.keys(record))
                except Exception:  # noqa: BLE001 - the step fails this record when it applies
                    continue
                by_group.setdefault(group, []).append(keys)
            per_unit.append((kept, {group: unit_keys(keys) for group, keys in sorted(by_group.items())}))
            self.seconds[step.name] += time.perf_counter() - started
        started = time.perf_counter()
        counts = self.counters.step(step.name)
        shared: dict[str, object] = {}
        for group in sorted({group for _, arrays in per_unit for group in arrays}):
            counter = SharedKeyCounter()
            for _, arrays in per_unit:
                if group in arrays:
                    held, twice = arrays[group]
                    counter.add(as_keys(held.tobytes()), as_keys(twice.tobytes()))
            shared[group] = counter.shared()
            counts.count("groups")
            counts.count("shared_keys", len(shared[group]))
        with_shared = WithShared(step)
        records: list[Keyed] = []
        for kept, arrays in per_unit:
            mine = {group: held_shared(held, shared[group]) for group, (held, _) in arrays.items()}
            with_shared.shared = {group: key_set(keys.tobytes()) for group, keys in mine.items() if len(keys)}
            self.seconds[step.name] += time.perf_counter() - started
            records += self._apply([with_shared], kept)
            started = time.perf_counter()
        return records

    # --- steps ----------------------------------------------------------------------------

    def _apply(self, group, records: list[Keyed]) -> list[Keyed]:
        """One group of the recipe: fused per-record steps, or one shuffle step."""
        if isinstance(group, KeepFirstStep):
            group = as_join(group)
        shuffle = next((run for kind, run in SHUFFLES.items() if isinstance(group, kind)), None)
        if shuffle is not None:
            started = time.perf_counter()
            records = shuffle(records, group, self.counters, self.fraction, self.out)
            self.seconds[group.name] += time.perf_counter() - started
            return records
        if isinstance(group, GroupKeyStep):
            raise ValueError(f"step {group.name}: a {type(group).__name__} must follow only per-record steps")
        if not group:
            return records
        fused = FusedSteps(group, self.slice.context.budget, self.fraction)
        tallies = [Tally() for _ in group]
        kept: list[Keyed] = []
        fused.setup()
        try:
            for item in records:
                result = fused.apply(item, tallies)
                if isinstance(result, Failure):
                    self.out.failures.append(result)
                elif isinstance(result, KeptReject):
                    self.out.rejects.append(result.line)
                elif result is not None:
                    kept.append(result)
        finally:
            fused.teardown()
        for step, tally in zip(group, tallies, strict=True):
            tally.flush(self.counters.step(step.name))
            self.seconds[step.name] += tally.seconds
        return kept

    # --- outputs --------------------------------------------------------------------------

    def _write(self, records: list[Keyed], layout: Layout) -> None:
        slc, temporary = self.slice, layout.temporary
        counts = self.counters.step(WRITE)
        lines: list[sink.SinkLine] = []
        yields: dict = {}
        for item in records:
            order_key, record = item
            try:
                lines.append(to_line(item, slc))
            except (TypeError, ValueError) as error:  # UnicodeEncodeError is a ValueError
                counts.failed.inc()
                self.out.failures.append(step_failure(WRITE, order_key, record, error))
                continue
            size = utf8_len(record["text"])
            counts.docs_out.inc()
            counts.bytes_out.inc(size)
            found = yields.setdefault(record["meta"].get("_unit"), [0, 0])
            found[0] += 1
            found[1] += size
        as_lines = slc.output_format == "lines"
        write_sorted_shards(temporary, lines, layout.shard_bytes, layout.num_shards, compressed=not as_lines,
                            always=slc.always_written(), extension=".txt" if as_lines else ".jsonl")
        write_sorted_shards(join(temporary, UNIT_YIELDS), [
            sink.unit_yield_line(sink.UnitYield(None if unit is None else UnitId(*unit), *found))
            for unit, found in yields.items()], layout.shard_bytes, compressed=False)
        extras = self._extras(records)
        if extras is not None:
            write_sorted_shards(temporary, extras, layout.shard_bytes, compressed=False, extension=".txt")
        write_sorted_shards(join(temporary, ERRORS), [failure_line(f) for f in self.out.failures], layout.shard_bytes,
                            compressed=False, always=("errors",))
        dropped = [*(self.out.rejects if self.fraction is not None else []), *self.out.samples]
        if dropped:
            write_sorted_shards(join(temporary, DROPPED), dropped, layout.shard_bytes)

    def _extras(self, records: list[Keyed]) -> list[sink.SinkLine] | None:
        """The slice's counts of kept records by key and its seeded sample, if it asks for them."""
        slc = self.slice
        if not (slc.counts() or slc.sample_spec()):
            return None
        lines = []
        for name, key in slc.counts().items():
            counted = Counter(key(record) for _, record in records)
            lines += [count_line(name, value, count) for value, count in counted.items()]
        if slc.sample_spec():
            size, seed = slc.sample_spec()
            texts = sorted((record["text"] for _, record in records), key=lambda text: sample_hash(seed, text))
            lines += [sample_line(text) for text in texts[:size]]
        return lines

