"""What every executor does to a slice's records, whatever moves them: how the recipe's steps are
grouped, per-record steps applied (each outcome tallied, a record over its budget failed alone),
records checked as read, keep-first as a join, and records made into sink lines.

An executor counts a step's outcomes under ``"{slice}/{step}/{outcome}"`` through an object with
the counters ``docs_in``, ``docs_out``, ``bytes_in``, ``bytes_out`` and ``failed`` (each with
``inc(n)``) and the methods ``dropped(reason, n)`` and ``count(outcome, n)`` (:class:`Tally`
adds to one).
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass

from redpajama.core.errors import LimitExceeded
from redpajama.core.isolation import Budget, BudgetExceeded, IsolatedSteps, StepSetupError, budgeted_steps
from redpajama.core.records import (
    Drop,
    Failure,
    GroupKeyStep,
    JoinStep,
    KeepFirstStep,
    NearDedupStep,
    ReferenceStep,
    Step,
    StepResult,
    is_utf8,
    printable,
    utf8_len,
)
from redpajama.pipelines.runs import sink
from redpajama.pipelines.runs.rejects import kept_reject_line
from redpajama.pipelines.runs.stats import KEPT_DROPPED
from redpajama.slices.base import Slice, WorkUnit

SHUFFLE_STEPS = (JoinStep, KeepFirstStep, GroupKeyStep, ReferenceStep, NearDedupStep)
WRITE = "write"  # the step kept records are counted under as they become sink lines

# Records move between the map-only stages in lists of this many (Beam's cost is per element).
BATCH_RECORDS = 256
BATCH_BYTES = 16 << 20


# --- the recipe's shape ---------------------------------------------------------------------


def group_steps(steps: list) -> list:
    """Runs of per-record steps are fused into one list; a shuffle step stands alone."""
    groups: list = []
    for step in steps:
        if isinstance(step, SHUFFLE_STEPS):
            groups.append(step)
        elif groups and isinstance(groups[-1], list):
            groups[-1].append(step)
        else:
            groups.append([step])
    return groups


def steps_through(steps: list, name: str) -> list:
    """The recipe's steps up to and including the one called ``name``; ``ValueError`` naming the
    recipe's steps if none is."""
    names = [step.name for step in steps]
    if name not in names:
        raise ValueError(f"no step {name!r} in the recipe (its steps: {', '.join(names)})")
    return steps[: names.index(name) + 1]


def keep_first_at_sink(steps: list, slc: Slice) -> int | None:
    """Where a :class:`KeepFirstStep` can be decided at the sink: only per-record steps after it,
    and no counts or sample of the kept records (which would see the duplicates)."""
    if slc.counts() or slc.sample_spec():
        return None
    for index in range(len(steps) - 1, -1, -1):
        if isinstance(steps[index], KeepFirstStep):
            return index
        if isinstance(steps[index], SHUFFLE_STEPS):
            return None
    return None


def read_twice_at(steps: list) -> int | None:
    """Where a :class:`GroupKeyStep` runs with the read (after only per-record steps), or None."""
    at = next((i for i, step in enumerate(steps) if isinstance(step, GroupKeyStep)), None)
    if at is None or any(isinstance(step, SHUFFLE_STEPS) for step in steps[:at]):
        return None
    return at


def as_join(step: KeepFirstStep) -> JoinStep:
    """The step as a join of the records by key, for where a shuffle step follows it."""

    def keep_first(parents, children):
        for index, record in enumerate(parents):  # handed over sorted by order key
            yield record if index == 0 else Drop(step.reason, scores={"duplicate_of": parents[0]["meta"].get("id")},
                                                 record=record)

    return JoinStep(name=step.name, parent_key=step.key, child_key=_no_key, join=keep_first,
                    description=step.description)


def _no_key(record) -> None:
    return None


# --- counting -------------------------------------------------------------------------------


class Tally:
    """A batch's counts for one step, added to its counters at once; ``seconds`` is the time spent
    in the step's ``apply`` (for a profile of where the time goes; never a counter)."""

    __slots__ = ("docs_in", "docs_out", "bytes_in", "bytes_out", "failed", "dropped", "other", "seconds")

    def __init__(self):
        self.docs_in = self.docs_out = self.bytes_in = self.bytes_out = self.failed = 0
        self.seconds = 0.0
        self.dropped: dict[str, int] = {}
        self.other: dict[str, int] = {}

    def flush(self, counters) -> None:
        for name in ("docs_in", "docs_out", "bytes_in", "bytes_out", "failed"):
            value = getattr(self, name)
            if value:
                getattr(counters, name).inc(value)
        for reason, count in self.dropped.items():
            counters.dropped(reason, count)
        for outcome, count in self.other.items():
            counters.count(outcome, count)


def unbatch(item):
    """A batch's records one by one (a single record passes through): before a shuffle."""
    return item if isinstance(item, list) else [item]


def step_failure(step: str, order_key: str, record, error: Exception, outcome: str = "failed") -> Failure:
    """The failure of one record: ``<step>_<outcome>``, or a broken cap's own reason (``record_too_large``)."""
    meta = record.get("meta", {})
    return Failure(
        source=str(meta.get("url") or meta.get("id") or "?"),
        location=order_key,
        reason=error.reason if isinstance(error, LimitExceeded) else f"{step}_{outcome}",
        detail=str(error) if isinstance(error, BudgetExceeded) else f"{type(error).__name__}: {error}",
        step=step,
    )


# --- per-record steps -----------------------------------------------------------------------


@dataclass(frozen=True)
class KeptReject:
    """A reject ``--keep-dropped`` keeps: its line for the ``_dropped/`` sink."""

    line: sink.SinkLine


class FusedSteps:
    """Consecutive per-record steps applied one after the other; each outcome tallied under its step.

    Steps marked ``unbounded_cost`` run in a child process under the per-document ``budget``
    (:mod:`redpajama.core.isolation`): a record that takes one past it fails alone, as
    ``<step>_timeout`` (or ``_out_of_memory``, ``_crashed``), also counted in the step's entry.
    With ``keep_dropped`` (a fraction), the rejects it keeps come back as :class:`KeptReject`.
    """

    def __init__(self, steps: list[Step], budget: Budget = Budget(), keep_dropped: float | None = None):
        self.steps = steps
        self.budget = budget
        self.keep_dropped = keep_dropped
        self._isolated: IsolatedSteps | None = None

    def setup(self) -> None:
        isolated = budgeted_steps(self.steps, self.budget)
        self._isolated = IsolatedSteps([self.steps[i] for i in isolated], self.budget) if isolated else None
        self._route = {index: position for position, index in enumerate(isolated)}  # step -> index in the child
        for index, step in enumerate(self.steps):
            if index not in self._route:
                step.setup()

    def teardown(self) -> None:
        if self._isolated is not None:
            self._isolated.close()
            self._isolated = None

    def apply(self, item, tallies: list[Tally]):
        """``(order key, record)`` after every step; None if dropped; a :class:`Failure`; or a
        :class:`KeptReject`."""
        key, record = item
        text = record["text"]
        size = utf8_len(text)  # measured again only when a step rewrites the text
        for index, (step, tally) in enumerate(zip(self.steps, tallies, strict=True)):
            tally.docs_in += 1
            tally.bytes_in += size
            started = time.perf_counter()
            try:
                if index in self._route:
                    result = self._isolated.apply(self._route[index], record)
                else:
                    result = step.apply(record)
            except BudgetExceeded as error:
                tally.failed += 1
                tally.other[error.outcome] = tally.other.get(error.outcome, 0) + 1
                return step_failure(step.name, key, record, error, error.outcome)
            except StepSetupError:
                raise  # the steps cannot run at all: an error of the run, as a failing setup() in-process
            except Exception as error:
                tally.failed += 1
                return step_failure(step.name, key, record, error)
            finally:
                tally.seconds += time.perf_counter() - started
            if isinstance(result, Drop):
                tally.dropped[result.reason] = tally.dropped.get(result.reason, 0) + 1
                if self.keep_dropped is None:
                    return None
                line = kept_reject_line(step.name, key, record, result, self.keep_dropped)
                if line is None:
                    return None
                outcome = KEPT_DROPPED + result.reason
                tally.other[outcome] = tally.other.get(outcome, 0) + 1
                return KeptReject(line)
            record = result
            if record["text"] is not text:
                text = record["text"]
                size = utf8_len(text)
            tally.docs_out += 1
            tally.bytes_out += size
        return key, record


class WithShared(Step):
    """The group step as a per-record step, with the shared keys of the unit being read."""

    def __init__(self, step: GroupKeyStep):
        self.name = step.name
        self.step = step
        self.shared: dict[str, set[bytes]] = {}

    def apply(self, record) -> StepResult:
        return self.step.apply(record, self.shared.get(self.step.group(record), frozenset()))


# --- reading --------------------------------------------------------------------------------


def booked(item, unit_id: tuple[str, int]) -> int:
    """Marks a keyed record with its unit and returns its size in bytes: the text's, or what a
    reader that keeps the source beside the text (arXiv's files) says as a count in ``_source_bytes``.
    Raises ``TypeError`` for an item that is not a keyed record, ``ValueError`` for one no output
    line could hold (a lone surrogate)."""
    key, record = item
    meta, text = record["meta"], record["text"]
    if not isinstance(key, str) or not isinstance(meta, dict) or not isinstance(text, str):
        raise TypeError("a record is (str, {'text': str, 'meta': dict})")
    size = len(text) if text.isascii() else len(text.encode("utf-8"))  # a lone surrogate raises here
    if not (is_utf8(key) and _all_utf8(meta)):  # no coder, and no output line, could carry it
        raise ValueError("a name or value that is not UTF-8 (a lone surrogate)")
    meta["_unit"] = unit_id
    stated = meta.get("_source_bytes")
    return stated if type(stated) is int and stated > 0 else size


def unreadable_item(unit: WorkUnit, item, error: Exception) -> Failure:
    """The failure of one item a reader gave that :func:`booked` refused."""
    reason = "invalid_record" if isinstance(error, ValueError) else "reader_failed"
    where = printable(item[0]) if isinstance(item, tuple) and isinstance(item[0], str) else unit.location
    return Failure(unit.source, where, reason, f"{type(error).__name__}: {error}")


def empty_input(unit: WorkUnit) -> Failure:
    """An input holding no document: a counted failure, not a silent nothing."""
    return Failure(unit.source, unit.location, "empty_input", "the input holds no documents")


def reader_items(slc: Slice, unit: WorkUnit):
    """The reader's items; a reader that breaks fails the rest of its unit, not the run."""
    try:
        yield from slc.read(unit)
    except Exception as error:
        yield Failure(unit.source, unit.location, "reader_failed", f"{type(error).__name__}: {error}")


def _all_utf8(value) -> bool:
    """Whether every string in ``value`` (nested dicts, lists and tuples; keys too) is valid UTF-8."""
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            if not is_utf8(item):
                return False
        elif isinstance(item, dict):
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, list | tuple):
            pending.extend(item)
    return True


def unit_bytes(unit: WorkUnit) -> int | None:
    """The unit's size in raw bytes, where it is cheap to know (for the time left in progress lines)."""
    if unit.end is not None:
        return unit.end - unit.start
    try:
        return os.path.getsize(unit.source) - unit.start if "://" not in unit.source else None
    except OSError:
        return None


# --- writing --------------------------------------------------------------------------------


def to_line(item, slc: Slice) -> sink.SinkLine:
    """A keyed record -> its line for the sink; raises ``TypeError``/``ValueError``
    (``UnicodeEncodeError``) when it cannot be written."""
    key, record = item
    line = record["text"].encode("utf-8") if slc.output_format == "lines" else sink.encode_record(record)
    return sink.SinkLine(slc.partition(record), record["meta"]["id"], key, line)


def failure_line(failure: Failure) -> sink.SinkLine:
    """A failure as a line of ``_errors/errors-*.jsonl``, ordered by input, place and reason."""
    key = f"{failure.source}\t{failure.location}\t{failure.reason}"
    line = json.dumps(failure.as_json(), ensure_ascii=False).encode("utf-8", "backslashreplace")
    return sink.SinkLine("errors", key, key, line)


def near_duplicate_line(order_key: str, record) -> sink.SinkLine:
    """A near-duplicate's sample (without ``--keep-dropped``) as a line of ``_dropped/near_duplicate-*``."""
    return sink.SinkLine("near_duplicate", record["meta"]["id"], order_key, sink.encode_record(record))


def count_line(name: str, key: str, count: int) -> sink.SinkLine:
    """A line ``key<TAB>count`` of ``<name>-counts``, the most frequent first."""
    return sink.SinkLine(f"{name}-counts", key, f"{10**15 - count:015d}|{key}", f"{key}\t{count}".encode())


def sample_hash(seed: int, text: str) -> bytes:
    """The seeded hash that picks the slice's sample: the texts with the smallest hashes."""
    return hashlib.blake2b(text.encode("utf-8"), digest_size=8, key=str(seed).encode("utf-8")).digest()


def sample_line(text: str) -> sink.SinkLine:
    return sink.SinkLine("sample", text, text, text.encode("utf-8"))
