"""Inputs to records: expand paths and globs, plan units of work, read them in batches."""

from __future__ import annotations

import time

import apache_beam as beam
from redpajama.core import storage
from redpajama.core.records import Failure, is_utf8
from redpajama.pipelines.beam.filesystems import configure_storage
from redpajama.pipelines.beam.steps import FAILURES, StepCounters
from redpajama.pipelines.runs.progress import BatchSizer, UnitProgress, emit
from redpajama.pipelines.runs.recipe import (
    BATCH_BYTES,
    BATCH_RECORDS,
    booked,
    empty_input,
    reader_items,
    unit_bytes,
    unreadable_item,
)
from redpajama.slices.base import Slice, WorkUnit


def progress_line(message: str) -> None:
    emit(f"  {message}")


class ExpandInputs(beam.DoFn):
    """A path, glob or URL -> the files it names (a missing one is a counted failure)."""

    def __init__(self, slc: Slice):
        self.slice_name = slc.name
        self.folders = slc.reads_folders
        self.requester_pays = slc.context.requester_pays

    def setup(self):
        configure_storage(self.requester_pays)
        self.counters = StepCounters(self.slice_name, "plan")

    def process(self, pattern: str):
        try:
            paths = storage.expand(pattern, folders=self.folders)
        except Exception as error:  # a filesystem refusing the pattern
            paths, detail = [], str(error)
        else:
            detail = "no file matches"
        if not paths:
            self.counters.failed.inc()
            yield beam.pvalue.TaggedOutput(FAILURES, Failure(pattern, "input", "missing_input", detail, "plan"))
        for path in paths:
            if is_utf8(path):
                yield path
            else:  # bytes the file system could not decode: no id, key or output line can hold the name
                self.counters.failed.inc()
                yield beam.pvalue.TaggedOutput(FAILURES, Failure(
                    path, "input", "invalid_file_name", "the name is not UTF-8", "plan"))


class PlanUnits(beam.DoFn):
    """One input file -> the units of work the slice splits it into."""

    def __init__(self, slc: Slice):
        self.slice = slc

    def setup(self):
        configure_storage(self.slice.context.requester_pays)
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
        configure_storage(self.slice.context.requester_pays)
        self.counters = StepCounters(self.slice.name, "read")

    def process(self, unit: WorkUnit):
        """Yields lists of up to ``BATCH_RECORDS`` keyed records (failures one by one), sized so that
        the steps fused behind the reader take about half a second per list (:class:`BatchSizer`):
        the documents counted in progress lines are then the documents done, within that."""
        started = time.monotonic()
        documents = failed = 0
        self.counters.docs_in.inc()
        label = f"{self.slice.name}: reading {unit.source} ({unit.location})"
        unit_id = tuple(unit.id)  # plain: it travels in every record's meta
        batch: list = []
        batch_bytes = 0
        sizer = BatchSizer(BATCH_RECORDS)
        with UnitProgress(label, unit_bytes(unit)) as progress:
            for item in reader_items(self.slice, unit):
                if isinstance(item, Failure):
                    failed += item.units
                    self.counters.failed.inc(item.units)
                    yield beam.pvalue.TaggedOutput(FAILURES, item)
                    continue
                try:
                    size = booked(item, unit_id)
                except Exception as error:  # fails alone: an unwritable record, or a reader's malformed item
                    failed += 1
                    self.counters.failed.inc()
                    yield beam.pvalue.TaggedOutput(FAILURES, unreadable_item(unit, item, error))
                    continue
                documents += 1
                progress.documents = documents
                batch_bytes += size
                batch.append(item)
                if len(batch) >= sizer.limit or batch_bytes >= BATCH_BYTES:
                    self._count(batch, batch_bytes)
                    handed = time.monotonic()
                    yield batch  # returns once the fused steps behind the reader are done with it
                    sizer.handed_on(len(batch), time.monotonic() - handed)
                    batch, batch_bytes = [], 0
        if batch:
            self._count(batch, batch_bytes)
            yield batch
        whole = unit.start == 0 and unit.end is None  # a range of a file may rightly hold nothing
        if documents == 0 and failed == 0 and whole:  # an empty input is a counted failure, not a silent nothing
            self.counters.failed.inc()
            yield beam.pvalue.TaggedOutput(FAILURES, empty_input(unit))
            failed = 1
        progress_line(
            f"{self.slice.name}: read {unit.source} ({unit.location}): {documents} documents, "
            f"{failed} failed, {time.monotonic() - started:.1f}s"
        )

    def _count(self, batch: list, size: int) -> None:
        self.counters.docs_out.inc(len(batch))
        self.counters.bytes_out.inc(size)
