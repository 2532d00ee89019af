"""What a run asks of whatever executes a slice's recipe, and where it lets it write.

The run (:func:`~redpajama.pipelines.runs.run.run_slice`) checks the output folder, takes its
lock, decides whether to reuse, run or refuse, and afterwards builds ``stats.json`` and commits.
In between, an :class:`Executor` runs the recipe: it reads the inputs through the slice's
``plan`` and ``read`` (with the slice's :class:`~redpajama.slices.base.RunContext`), applies its
steps of every kind, and writes everything under the layout's ``_temporary/``:

- the kept records by the sink's rules (:mod:`redpajama.pipelines.runs.sink`): the slice's
  partitions, ``<partition>-SSSSS-of-NNNNN.jsonl.zst`` (or ``.txt`` lines), and the partitions
  ``always_written`` even when empty;
- every failure in ``_errors/errors-*.jsonl``, near-duplicates in ``_dropped/``, the slice's
  counts and sample (``<name>-counts-*.txt``, ``sample-*.txt``);
- kept documents and bytes per unit in ``_unit_yields/`` (:class:`~redpajama.pipelines.runs.sink.UnitYield`).

It returns the run's counters, ``{"<slice>/<step>/<outcome>": n}``, from which
:mod:`~redpajama.pipelines.runs.stats` builds ``stats.json`` and checks the accounting identity.
The Beam executor is :class:`redpajama.pipelines.beam.executor.BeamExecutor`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from redpajama.pipelines.runs.output_folder import TEMPORARY, join
from redpajama.slices.base import Slice


@dataclass(frozen=True)
class Layout:
    """Where one run of one slice writes, and how its output is sharded."""

    slice_dir: str
    shard_bytes: int = 256 << 20
    num_shards: int | None = None
    keep_dropped: float | None = None  # the fraction of rejects written to _dropped/<step>/<reason>/, or none

    @property
    def temporary(self) -> str:
        return join(self.slice_dir, TEMPORARY)


class Executor(Protocol):
    """Runs a slice's recipe over its inputs into a layout's ``_temporary/`` (see the module)."""

    @property
    def workers(self) -> int:
        """Processes the executor runs the recipe in (0: its runner decides); the run's own work
        afterwards (counting tokens) uses as many."""
        ...

    def describe(self) -> str:
        """A few words for the run's first line: ``local runner, 2 worker(s)``."""
        ...

    def execute(self, slc: Slice, inputs: list[str], layout: Layout, *, quiet: bool = True,
                close_in_child: tuple[int, ...] = ()) -> dict[str, int]:
        """Run the recipe; return the counters. ``quiet``: the executor's own logs only on failure;
        ``close_in_child``: descriptors (the output lock) a process it forks must close."""
        ...
