"""The Slice contract: what a slice says about its data and its recipe.

A slice says where its data comes from and what its recipe is; an executor (the Beam pipeline
of ``redpajama.pipelines.beam``, or ``redpajama.pipelines.inprocess``) does the rest. Everything
here runs on workers too, so a configured slice must pickle and must not hold open files or
loaded models.
"""

from __future__ import annotations

import argparse
import copy
import posixpath
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, ClassVar, NamedTuple

from redpajama.core.isolation import Budget
from redpajama.core.records import Failure, RecipeStep, Record, describe
from redpajama.core.streams import Limits
from redpajama.core.tables import TableQuery, TableSource
from redpajama.slices.manifest import DemoSample, ReportTarget, manifest_of
from redpajama.slices.options import SliceOptions, add_arguments

Keyed = tuple[str, Record]
"""A record with its deterministic order key: output is sorted by it, dedup keeps its first."""


@dataclass(frozen=True)
class RunContext:
    """What one run gives its slice besides the slice's options: made once by the launcher from
    the run's arguments, it travels to the workers with the slice and is never changed."""

    limits: Limits = field(default_factory=Limits)  # caps on records, decompression (--max-record-mb, --max-expansion)
    budget: Budget = field(default_factory=Budget)  # what a record may cost an unbounded_cost step (--doc-timeout, ...)
    input_roots: tuple[str, ...] | None = None  # where inputs were named from (relative_name); None: their common folder
    file_limit: int | None = None  # --limit, for a slice that applies it inside plan() (limits_in_plan)
    requester_pays: bool = False  # every s3:// input is read with RequestPayer=requester (--requester-pays)
    table: TableSource | None = None  # the result of table_query(), found or made by the launcher


class UnitId(NamedTuple):
    """Names one unit of work: its input and where in it the unit starts (0: at the beginning).
    Records carry it in ``meta["_unit"]`` as a plain ``(source, start)`` tuple, which a shuffle's
    coder writes compactly; ``UnitId(*value)`` names it again."""

    source: str
    start: int = 0


@dataclass(frozen=True)
class WorkUnit:
    """A piece of one input that one worker reads: a whole file or a byte range of it."""

    source: str
    start: int = 0
    end: int | None = None
    context: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def id(self) -> UnitId:
        return UnitId(self.source, self.start)

    @property
    def location(self) -> str:
        if self.start == 0 and self.end is None:
            return "whole file"
        end = "end" if self.end is None else self.end
        return f"bytes {self.start}-{end}"


class Slice:
    """One slice of the corpus: sources, a reader and an ordered recipe.

    Subclasses set ``name``, ``summary``, their ``Options`` dataclass (from which ``redpajama
    run <slice>`` gets its arguments) and implement the methods below; ``folder`` (default: the
    name) and ``shard_name`` (default: the folder) when the output is named otherwise.
    """

    name: ClassVar[str]
    summary: ClassVar[str]
    folder: ClassVar[str]  # the slice's folder under a run's output
    shard_name: ClassVar[str]  # what its shards are called, where partition() does not name them
    limits_in_plan: ClassVar[bool] = False  # --limit applies inside plan() (``RunContext.file_limit``)
    reads_folders: ClassVar[bool] = False  # a folder given as input is one unit (else: the files in it)
    output_format: ClassVar[str] = "jsonl"  # "lines": each kept record's text on a line of a .txt shard
    Options: ClassVar[type[SliceOptions]] = SliceOptions

    def __init_subclass__(cls, **kwargs: Any):
        super().__init_subclass__(**kwargs)
        if "name" in vars(cls):  # a slice of its own (not one inherited): its names default to its own
            cls.folder = vars(cls).get("folder", cls.name)
            cls.shard_name = vars(cls).get("shard_name", cls.folder)

    def __init__(self, *, context: RunContext | None = None, **options: Any):
        self.options = self.Options(**options)
        self._context = context or RunContext()

    @property
    def context(self) -> RunContext:
        """What the run gives the slice (caps, budget, input roots...); see :class:`RunContext`."""
        return self._context

    def with_context(self, context: RunContext) -> Slice:
        """This slice, with the same options, in another run's context (a copy: ``self`` is unchanged)."""
        bound = copy.copy(self)
        bound._context = context
        return bound

    # --- configuration ---------------------------------------------------------------
    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        """Add the slice's own options to ``redpajama run <slice>``."""
        add_arguments(parser, cls.Options)

    @classmethod
    def manifest(cls) -> dict[str, Any]:
        """The slice's manifest, ``manifests/<name>.json`` (empty when it has none)."""
        return manifest_of(cls.name)

    @classmethod
    def demo_sample(cls) -> DemoSample | None:
        """The sample ``make demo`` runs the slice on (its manifest's ``"demo"``), or None."""
        return DemoSample.of(cls.manifest())

    @classmethod
    def report_target(cls) -> ReportTarget:
        """What ``redpajama report`` compares the slice with (its manifest's ``"report"``)."""
        return ReportTarget.of(cls.name, cls.manifest())

    @staticmethod
    def corpus(meta: dict[str, Any]) -> str | None:
        """The corpus a record of this slice comes from, where the report counts the slice by corpus
        (its report target's ``full_scale`` names ``corpora``), whatever wrote it (ours or RedPajama's)."""
        return None

    @classmethod
    def describe_sources(cls) -> str:
        """One paragraph: where the slice reads from by default."""
        raise NotImplementedError

    def validate(self) -> None:
        """Check models and options before launching; raise :class:`UsageError`."""

    def default_inputs(self) -> list[str]:
        """Inputs (paths or URLs) to read when the user gives no ``--input``."""
        raise NotImplementedError

    def fingerprint(self) -> dict[str, Any]:
        """Settings that change the output: a finished run is reused only if they match (the
        options that are set, and a file limit applied inside the plan)."""
        settings = self.options.settings()
        if self.context.file_limit is not None:
            settings["file_limit"] = self.context.file_limit
        return dict(sorted(settings.items()))

    def table_query(self) -> TableQuery | None:
        """A SQL query whose result rows are the input (read with :meth:`read_row`), or None: files."""
        return None

    def read_row(self, row: dict[str, Any]) -> Keyed | Failure:
        """One row of ``table_query()``'s result table as a keyed record (or a failure)."""
        raise NotImplementedError

    def models(self) -> dict[str, str]:
        """The model files the recipe reads, by name -> location: a finished run is reused only
        while their contents are the same."""
        return {}

    # --- the recipe ----------------------------------------------------------------
    def plan(self, source: str) -> Iterable[WorkUnit | Failure]:
        """Split one input into units of work (runs on a worker)."""
        yield WorkUnit(source)

    def read(self, unit: WorkUnit) -> Iterator[Keyed | Failure]:
        """Parse one unit into keyed records, or failures for what could not be parsed."""
        raise NotImplementedError

    def steps(self) -> list[RecipeStep]:
        """The ordered recipe applied to every record after reading."""
        raise NotImplementedError

    def relative_name(self, path: str) -> str:
        """``path`` relative to the input argument that named it (a folder, a glob's folder, a
        file's folder), so that ids do not depend on where the data lives; else its base name."""
        for root in sorted(self.context.input_roots or (), key=len, reverse=True):
            prefix = root.rstrip("/") + "/"
            if path.startswith(prefix):
                return path[len(prefix) :]
            if not root and "://" not in path and not path.startswith("/"):  # named from the current folder
                return path
        return posixpath.basename(path)

    def partition(self, record: Record) -> str:
        """The output file name prefix of a kept record (may hold folders)."""
        return self.shard_name

    def always_written(self) -> tuple[str, ...]:
        """Partitions that exist in the output even when empty."""
        return (self.shard_name,)

    def counts(self) -> dict[str, Callable[[Record], str]]:
        """Kept records counted by key: ``<name>-counts-*.txt`` shards (key TAB count) and a summary in stats.json."""
        return {}

    def sample_spec(self) -> tuple[int, int] | None:
        """``(n, seed)``: also write a seeded uniform sample of n kept records (``sample-*``)."""
        return None

    def run_info(self) -> dict[str, Any]:
        """What ``stats.json`` should record about this run's settings (models, cutoffs)."""
        return {}

    def step_descriptions(self) -> list[str]:
        """Human-readable recipe, one line per step, for ``redpajama slices``."""
        return [describe(step) for step in self.steps()]
