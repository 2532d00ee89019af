"""Kept records -> sink lines, counted under the ``write`` step, with kept documents and bytes per unit."""

from __future__ import annotations

import apache_beam as beam
from apache_beam.transforms.window import GlobalWindow
from apache_beam.utils.timestamp import MIN_TIMESTAMP
from apache_beam.utils.windowed_value import WindowedValue
from redpajama.core.records import utf8_len
from redpajama.pipelines.beam.steps import FAILURES, StepCounters
from redpajama.pipelines.runs import sink
from redpajama.pipelines.runs.recipe import WRITE, Tally, step_failure, to_line, unbatch
from redpajama.slices.base import Slice, UnitId

YIELDS = "yields"


class UnitYields:
    """Kept documents and bytes per unit (its ``(source, start)``, or None for records no unit
    claims), gathered over a bundle and emitted once (``YIELDS``)."""

    def __init__(self):
        self.units: dict[tuple[str, int] | None, list[int]] = {}

    def add(self, unit: tuple[str, int] | None, documents: int, size: int) -> None:
        counts = self.units.setdefault(unit, [0, 0])
        counts[0] += documents
        counts[1] += size

    def emit(self):
        for unit, counts in self.units.items():
            yield beam.pvalue.TaggedOutput(YIELDS, WindowedValue((unit, tuple(counts)), MIN_TIMESTAMP, [GlobalWindow()]))
        self.units = {}


def add_pairs(pairs) -> tuple[int, int]:
    documents = size = 0
    for first, second in pairs:
        documents += first
        size += second
    return documents, size


def yield_line(item) -> sink.SinkLine:
    """A unit's kept documents and bytes as a line of the ``_unit_yields`` bookkeeping (see :func:`sink.unit_yield_line`)."""
    unit, (documents, size) = item
    return sink.unit_yield_line(sink.UnitYield(None if unit is None else UnitId(*unit), documents, size))


class EncodeWritten(beam.DoFn):
    """Counts kept records as written and turns them into sink lines (a batch into a list of
    lines); a record that cannot be written as UTF-8 JSON (a lone surrogate from a JSON escape,
    say) fails alone. Kept documents and bytes per input unit leave once per bundle (``YIELDS``)."""

    def __init__(self, slc: Slice):
        self.slice = slc

    def setup(self):
        self.counters = StepCounters(self.slice.name, WRITE)

    def start_bundle(self):
        self._yields = UnitYields()

    def process(self, item):
        tally = Tally()
        lines = []
        for single in unbatch(item):
            key, record = single
            try:
                lines.append(to_line(single, self.slice))
            except (TypeError, ValueError) as error:  # UnicodeEncodeError is a ValueError
                tally.failed += 1
                yield beam.pvalue.TaggedOutput(FAILURES, step_failure(WRITE, key, record, error))
                continue
            size = utf8_len(record["text"])
            tally.docs_out += 1
            tally.bytes_out += size
            self._yields.add(record["meta"].get("_unit"), 1, size)
        tally.flush(self.counters)
        if lines:
            yield lines

    def finish_bundle(self):
        yield from self._yields.emit()
