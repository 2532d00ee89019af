"""Recipe steps as Beam DoFns: every outcome counted under ``"{slice}/{step}/{outcome}"`` in the
``redpajama`` namespace, failures routed to the dead letter, records moving in batches, and (with
``--keep-dropped``) rejects as lines for the ``_dropped/`` sink."""

from __future__ import annotations

import apache_beam as beam
from apache_beam.metrics import Metrics
from redpajama.core.isolation import Budget
from redpajama.core.records import Drop, Failure, Step, utf8_len
from redpajama.pipelines.runs.recipe import FusedSteps, KeptReject, Tally, step_failure
from redpajama.pipelines.runs.rejects import kept_reject_line
from redpajama.pipelines.runs.stats import KEPT_DROPPED

NAMESPACE = "redpajama"
FAILURES = "failures"
DROPPED = "dropped"  # rejects kept for inspection: sink lines for ``_dropped/<step>/<reason>/``


def kept_reject(step: str, order_key: str, record, drop: Drop, fraction: float | None):
    """The reject's line (:func:`~redpajama.pipelines.runs.rejects.kept_reject_line`), tagged
    ``DROPPED``, when ``fraction`` keeps it; else None."""
    line = kept_reject_line(step, order_key, record, drop, fraction)
    return None if line is None else beam.pvalue.TaggedOutput(DROPPED, line)


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
        self._other: dict[str, object] = {}

    def dropped(self, reason: str, count: int = 1) -> None:
        if reason not in self._dropped:
            self._dropped[reason] = Metrics.counter(NAMESPACE, f"{self._prefix}dropped:{reason}")
        self._dropped[reason].inc(count)

    def count(self, outcome: str, count: int = 1) -> None:
        """A step-specific count (``stats.json`` shows it in the step's entry): ``timeout``, ``matched``..."""
        if outcome not in self._other:
            self._other[outcome] = Metrics.counter(NAMESPACE, self._prefix + outcome)
        self._other[outcome].inc(count)


class ApplySteps(beam.DoFn):
    """Consecutive per-record steps, fused; each outcome counted under its step's name.

    Steps marked ``unbounded_cost`` run in a child process under the per-document ``budget``
    (:mod:`redpajama.core.isolation`): a record that takes one past it fails alone, as
    ``<step>_timeout`` (or ``_out_of_memory``, ``_crashed``), also counted in the step's entry.
    With ``keep_dropped`` (a fraction), the rejects it keeps leave tagged ``DROPPED``.
    """

    def __init__(self, slice_name: str, steps: list[Step], budget: Budget = Budget(),
                 keep_dropped: float | None = None):
        self.slice_name = slice_name
        self.steps = steps
        self.budget = budget
        self.keep_dropped = keep_dropped

    def setup(self):
        self._fused = FusedSteps(self.steps, self.budget, self.keep_dropped)
        self._fused.setup()
        self.counters = [StepCounters(self.slice_name, step.name) for step in self.steps]

    def teardown(self):
        if getattr(self, "_fused", None) is not None:
            self._fused.teardown()

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
        """The record after every step, None if dropped, or a tagged failure (or reject kept)."""
        result = self._fused.apply(item, tallies)
        if isinstance(result, Failure):
            return beam.pvalue.TaggedOutput(FAILURES, result)
        if isinstance(result, KeptReject):
            return beam.pvalue.TaggedOutput(DROPPED, result.line)
        return result


class StepDoFn(beam.DoFn):
    """A DoFn serving one recipe step: its counters exist once per worker."""

    def __init__(self, slice_name: str, step, keep_dropped: float | None = None):
        self.slice_name = slice_name
        self.step = step
        self.keep_dropped = keep_dropped

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
            yield beam.pvalue.TaggedOutput(FAILURES, step_failure(self.step.name, order_key, record, error))
            return
        if isinstance(result, Drop):
            self.counters.dropped(result.reason)
            yield from self.reject(order_key, record, result)
            return
        self.count_out(result)
        yield order_key, result


    def reject(self, order_key: str, record, drop: Drop):
        """The reject's line (tagged ``DROPPED``), counted, when ``--keep-dropped`` keeps it."""
        if self.keep_dropped is None:
            return
        kept = kept_reject(self.step.name, order_key, record, drop, self.keep_dropped)
        if kept is not None:
            self.counters.count(KEPT_DROPPED + drop.reason)
            yield kept
