"""The generic DAG: inputs -> plan -> read -> recipe steps -> sorted shards, and dead letters.

Nothing here knows a slice's rules: the slice supplies ``plan``, ``read`` and ``steps``.
Reading is in :mod:`~redpajama.pipelines.beam.reading`, steps in :mod:`~redpajama.pipelines.beam.steps`,
shuffle steps in :mod:`~redpajama.pipelines.beam.shuffles`, sinks in :mod:`~redpajama.pipelines.beam.sinks`.
Every outcome increments a Beam counter ``"{slice}/{step}/{outcome}"`` in the
``redpajama`` namespace; ``redpajama.pipelines.runs.stats`` turns them into ``stats.json``.
"""

from __future__ import annotations

from collections.abc import Iterable

import apache_beam as beam
from apache_beam.io.filesystem import CompressionTypes
from redpajama.core.records import (
    GroupKeyStep,
    JoinStep,
    KeepFirstStep,
    NearDedupStep,
    ReferenceStep,
)
from redpajama.pipelines.beam import sinks
from redpajama.pipelines.beam.bigquery import ReadTable
from redpajama.pipelines.beam.group_keys import ReadTwice
from redpajama.pipelines.beam.keep_first import REMOVED, KeepFirstAtSink
from redpajama.pipelines.beam.reading import ExpandInputs, PlanUnits, ReadUnits
from redpajama.pipelines.beam.shuffle_volume import counted
from redpajama.pipelines.beam.shuffles import Join, NearDuplicates, ReferenceLookup
from redpajama.pipelines.beam.steps import DROPPED, FAILURES, ApplySteps
from redpajama.pipelines.beam.written import YIELDS, EncodeWritten, add_pairs, yield_line
from redpajama.pipelines.runs import sink
from redpajama.pipelines.runs.executor import Layout
from redpajama.pipelines.runs.output_folder import DROPPED as DROPPED_FOLDER
from redpajama.pipelines.runs.output_folder import ERRORS, INPUT_LIST, UNIT_YIELDS, join
from redpajama.pipelines.runs.recipe import (
    as_join,
    count_line,
    failure_line,
    group_steps,
    keep_first_at_sink,
    near_duplicate_line,
    read_twice_at,
    sample_hash,
    sample_line,
    unbatch,
)
from redpajama.pipelines.runs.stats import shuffle_counter_prefix
from redpajama.slices.base import Slice


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
            | "Line" >> beam.MapTuple(lambda value, count: count_line(name, value, count))
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
            | "Lines" >> beam.FlatMap(lambda texts: [sample_line(text) for text in texts])
        )


INLINE_INPUT_BYTES = 256 << 10


def input_list(pipeline: beam.Pipeline, inputs: list[str], layout: Layout):
    """The inputs as a PCollection: inline when small, else from a list file the workers read,
    so the job graph stays small (Dataflow refuses graphs over 10 MB)."""
    if sum(len(item) + 1 for item in inputs) <= INLINE_INPUT_BYTES:
        return pipeline | "Inputs" >> beam.Create(inputs)
    path = join(layout.temporary, INPUT_LIST)
    sink.write_lines(path, (item.encode("utf-8") for item in inputs), compressed=False)
    # Read by its literal name (ReadFromText would take the output folder's name as a glob).
    return pipeline | "InputList" >> beam.Create([path]) | "Inputs" >> beam.FlatMap(_list_lines)


def _list_lines(path: str):
    with beam.io.filesystems.FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as handle:
        for line in handle:
            yield line.decode("utf-8").rstrip("\n")


def build(pipeline: beam.Pipeline, slc: Slice, inputs: Iterable[str], layout: Layout, spill: str | None = None):
    """Add the slice's whole DAG to ``pipeline``; returns the PCollection of written paths.

    ``spill`` is a local folder every worker sees (local runs): lines and parked records wait
    there instead of in the shuffles, which carry only an index of them."""
    name = slc.name
    if slc.context.table is not None:  # rows of a query's result table, not files
        read = pipeline | "ReadTable" >> ReadTable(slc)
        records, failures, rejects, steps = read.records, [read[FAILURES]], [], slc.steps()
    else:
        expanded = (
            input_list(pipeline, sorted(inputs), layout)
            | "Expand" >> beam.ParDo(ExpandInputs(slc)).with_outputs(FAILURES, main="files")
        )
        planned = (
            expanded.files
            | "DistinctFiles" >> beam.Distinct()
            | "Plan" >> beam.ParDo(PlanUnits(slc)).with_outputs(FAILURES, main="units")
        )
        units = counted(planned.units, name, "units") | "SpreadUnits" >> beam.Reshuffle()
        records, read_failures, rejects, steps = _read(units, slc, slc.steps(), layout, spill)
        failures = [expanded[FAILURES], planned[FAILURES], read_failures]
    samples = []  # dropped records a step wants kept for inspection (near-duplicates)
    fraction = layout.keep_dropped  # rejects leave each step as sink lines, written when this is set
    # Kept rejects need the duplicates' records: keep-first then runs as a join.
    at_sink = keep_first_at_sink(steps, slc) if fraction is None else None
    for index, group in enumerate(group_steps(steps[:at_sink])):
        if not isinstance(group, list):  # a shuffle step takes records one by one
            records = records | f"Unbatch{index}" >> beam.FlatMap(unbatch)
        if isinstance(group, KeepFirstStep):
            group = as_join(group)
        if isinstance(group, JoinStep):
            records, dropped = records | f"Join{index}_{group.name}" >> Join(name, group, spill, fraction)
            rejects.append(dropped)
            continue
        if isinstance(group, NearDedupStep):
            records, dropped = records | f"Shuffle{index}_{group.name}" >> NearDuplicates(
                name, group, spill, fraction)
            (samples if fraction is None else rejects).append(dropped)
            continue
        if isinstance(group, ReferenceStep):
            records, step_failures, dropped = records | f"Shuffle{index}_{group.name}" >> ReferenceLookup(
                name, group, fraction)
            failures.extend(step_failures)
            rejects.append(dropped)
            continue
        if isinstance(group, GroupKeyStep):
            raise ValueError(f"step {group.name}: a {type(group).__name__} must follow only per-record steps")
        applied = records | f"Steps{index}" >> beam.ParDo(ApplySteps(name, group, slc.context.budget, fraction)).with_outputs(
            FAILURES, DROPPED, main="kept"
        )
        failures.append(applied[FAILURES])
        rejects.append(applied[DROPPED])
        records = applied.kept

    if at_sink is None:
        encoded = records | "Encode" >> beam.ParDo(EncodeWritten(slc)).with_outputs(FAILURES, YIELDS, main="lines")
        lines, removed = encoded.lines, None
    else:
        keep = steps[at_sink]
        encoded = records | f"KeepFirst_{keep.name}" >> KeepFirstAtSink(slc, keep, steps[at_sink + 1 :])
        lines, removed = encoded["lines"], encoded[REMOVED]
    failures.append(encoded[FAILURES])
    as_lines = slc.output_format == "lines"
    written = lines | "Write" >> sinks.WriteSortedShards(
        layout.temporary, layout.shard_bytes, layout.num_shards, always=slc.always_written(),
        compressed=not as_lines, extension=".txt" if as_lines else ".jsonl", spill=spill, removed=removed,
        measure=shuffle_counter_prefix(name, "write"),
    )
    yields_written = (
        encoded[YIELDS]
        | "UnitYields" >> beam.CombinePerKey(add_pairs)
        | "YieldLines" >> beam.Map(yield_line)
        | "WriteUnitYields" >> sinks.WriteSortedShards(join(layout.temporary, UNIT_YIELDS), layout.shard_bytes,
                                                    compressed=False, spill=spill)
    )
    outputs = [written, yields_written]
    if slc.counts() or slc.sample_spec():
        singles = records | "UnbatchExtras" >> beam.FlatMap(unbatch)
        extras = [singles | f"Count_{name}" >> CountBy(name, key) for name, key in slc.counts().items()]
        if slc.sample_spec():
            extras.append(singles | "Sample" >> SeededSample(*slc.sample_spec()))
        outputs.append(extras | "AllExtras" >> beam.Flatten() | "WriteExtras" >> sinks.WriteSortedShards(
            layout.temporary, layout.shard_bytes, compressed=False, extension=".txt", spill=spill
        ))
    errors_written = (
        failures
        | "AllFailures" >> beam.Flatten()
        | "EncodeFailures" >> beam.Map(failure_line)
        | "WriteErrors"
        >> sinks.WriteSortedShards(join(layout.temporary, ERRORS), layout.shard_bytes, compressed=False,
                                always=("errors",), spill=spill)
    )
    outputs.append(errors_written)
    dropped_lines = rejects if fraction is not None else []
    if samples:
        dropped_lines.append(
            samples
            | "AllDropped" >> beam.Flatten()
            | "EncodeDropped" >> beam.MapTuple(near_duplicate_line)
        )
    if dropped_lines:
        outputs.append(
            dropped_lines
            | "AllRejects" >> beam.Flatten()
            | "WriteDropped" >> sinks.WriteSortedShards(
                join(layout.temporary, DROPPED_FOLDER), layout.shard_bytes, spill=spill,
                measure=None if fraction is None else shuffle_counter_prefix(name, "dropped"))
        )
    return outputs | "Written" >> beam.Flatten()


def _read(units, slc: Slice, steps: list, layout: Layout, spill: str | None):
    """Records read from the units (batches), the read's failures, its rejects kept (a list), and
    the steps left to run: a :class:`GroupKeyStep` after only per-record steps is run with them
    over two reads."""
    at = read_twice_at(steps)
    if at is None:
        read = units | "Read" >> beam.ParDo(ReadUnits(slc)).with_outputs(FAILURES, main="records")
        return read.records, read[FAILURES], [], steps
    step = steps[at]
    read = units | f"ReadTwice_{step.name}" >> ReadTwice(slc, steps[:at], step, spill, layout.keep_dropped)
    return read["records"], read[FAILURES], [read[DROPPED]], steps[at + 1 :]
