"""A run's counters in a dict, named as every executor names them: ``"{slice}/{step}/{outcome}"``."""

from __future__ import annotations

from collections import Counter


class _Counter:
    __slots__ = ("counts", "name")

    def __init__(self, counts: Counter, name: str):
        self.counts = counts
        self.name = name

    def inc(self, value: int = 1) -> None:
        self.counts[self.name] += value


class StepCounts:
    """One step's counters (the interface :class:`~redpajama.pipelines.runs.recipe.Tally` adds to)."""

    def __init__(self, counts: Counter, slice_name: str, step: str):
        self._counts = counts
        self._prefix = f"{slice_name}/{step}/"
        self.docs_in = _Counter(counts, self._prefix + "in")
        self.docs_out = _Counter(counts, self._prefix + "out")
        self.bytes_in = _Counter(counts, self._prefix + "bytes_in")
        self.bytes_out = _Counter(counts, self._prefix + "bytes_out")
        self.failed = _Counter(counts, self._prefix + "failed")

    def dropped(self, reason: str, count: int = 1) -> None:
        self._counts[f"{self._prefix}dropped:{reason}"] += count

    def count(self, outcome: str, count: int = 1) -> None:
        """A step-specific count: ``timeout``, ``matched``, ``groups``..."""
        self._counts[self._prefix + outcome] += count


class Counters:
    """Every counter of one run of one slice."""

    def __init__(self, slice_name: str):
        self.slice_name = slice_name
        self.counts: Counter = Counter()
        self._steps: dict[str, StepCounts] = {}

    def step(self, name: str) -> StepCounts:
        if name not in self._steps:
            self._steps[name] = StepCounts(self.counts, self.slice_name, name)
        return self._steps[name]

    def as_dict(self) -> dict[str, int]:
        return {name: value for name, value in self.counts.items() if value}
