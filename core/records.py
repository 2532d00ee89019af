"""Records, outcomes and the step contracts every slice's recipe is made of.

A record is exactly an output line: ``{"text": str, "meta": {...}}``. Steps are pure:
no Beam, no I/O beyond loading their models in :meth:`Step.setup`, no global state.
The pipeline wraps them, counts every outcome and routes failures to the dead letter.
"""

from __future__ import annotations

from collections.abc import Callable, Container, Hashable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

Record = dict[str, Any]


def make_record(text: str, **meta: Any) -> Record:
    """A record with ``text`` and the given ``meta`` keys, in the order given."""
    return {"text": text, "meta": dict(meta)}


def printable(text: str) -> str:
    """``text`` as UTF-8 can hold it: bytes a file system could not decode as ``\\xff``, other
    lone surrogates as ``\\udc80`` escapes (``text`` itself when it is valid)."""
    if text.isascii():
        return text
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogateescape" if _escaped_bytes_only(text) else "backslashreplace").decode(
            "utf-8", "backslashreplace")
    return text


def _escaped_bytes_only(text: str) -> bool:
    return all(not "\ud800" <= char <= "\udfff" or "\udc80" <= char <= "\udcff" for char in text)


def is_utf8(text: str) -> bool:
    """Whether ``text`` can be written as UTF-8 (holds no lone surrogate)."""
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def spare_name(name: str, taken: Container[str]) -> str:
    """``name``, or ``row_<name>`` (``row_row_<name>``...) while that is ``taken``."""
    while name in taken:
        name = f"row_{name}"
    return name


def input_columns(columns: dict[str, Any], reserved: Container[str] = ()) -> dict[str, Any]:
    """An input row's columns as meta keys, in their order. Keys starting with ``_`` hold a
    record's working state (never written), so a column named like that, or like one of
    ``reserved``, keeps its value under ``row_<name>`` (see :func:`spare_name`): no input sets
    or shadows the record's own keys, and no column is lost."""
    meta: dict[str, Any] = {}
    for key, value in columns.items():
        if key.startswith("_") or key in reserved:
            key = spare_name(f"row_{key}", _Either(columns, meta))
        meta[key] = value
    return meta


class _Either:
    def __init__(self, *containers: Container[str]):
        self.containers = containers

    def __contains__(self, name: object) -> bool:
        return any(name in container for container in self.containers)


def utf8_len(text: str) -> int:
    """Number of bytes ``text`` takes in UTF-8 (an ASCII string's length, without encoding it)."""
    return len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))


@dataclass(frozen=True)
class Drop:
    """A step's verdict that a record leaves the slice, with the reason it is counted under.

    ``scores`` are what the step measured before deciding (``{"language": "fr", "language_score":
    0.31}``) that the record's meta does not hold already: a reject kept for inspection
    (``--keep-dropped``) carries the record as the step left it, with these added to its meta.
    ``record`` names the record dropped where the step handles several at once (a join); a
    per-record step's reject is the record it was given. Neither takes part in equality.
    """

    reason: str
    scores: Mapping[str, Any] = field(default_factory=dict, compare=False)
    record: Record | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class Failure:
    """A unit of input that could not be read or processed: it is counted and dead-lettered.

    ``source`` names the input (a path or URL), ``location`` where in it the unit sits
    (a byte offset, a page id, a line number), ``reason`` a short stable code and
    ``detail`` the human-readable message. ``units`` is how many input documents the
    failure stands for in the accounting (one page, one row, or one whole file).
    """

    source: str
    location: str
    reason: str
    detail: str = ""
    step: str = "read"
    units: int = 1

    def __post_init__(self):  # a name that is not UTF-8 (a file's, a member's) is written escaped
        for name in ("source", "location", "detail"):
            object.__setattr__(self, name, printable(getattr(self, name)))

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


StepResult = Record | Drop
RecordKey = Callable[[Record], str | None]


class Step:
    """One recipe step applied to a record: annotate (add meta), transform or filter.

    ``apply`` returns the (possibly rewritten) record to keep it, or a :class:`Drop`.
    An exception raised by ``apply`` marks the record as failed, not the whole job.
    Like every kind of step (:data:`RecipeStep`), it has a ``name`` (counters, ``stats.json``)
    and a ``description`` (one line for ``redpajama slices``).
    """

    name: str = "step"
    description: str = ""
    # True when one record can cost far more than its size suggests (a parser that is quadratic
    # on some inputs): the pipeline then holds each record to the run's per-document budget.
    unbounded_cost: bool = False

    def setup(self) -> None:
        """Load models or compile tables; called once per worker before ``apply``."""

    def apply(self, record: Record) -> StepResult:
        raise NotImplementedError


@dataclass
class JoinStep:
    """Join child records to their parent by key (for example answers to their question).

    ``parent_key`` and ``child_key`` return the join key of a record, or None when the
    record plays no part in the join (it then passes through unchanged). ``join`` receives
    every parent and child under one key and returns what leaves the step: records to keep
    and one :class:`Drop` for each input record that does not leave as (part of) a record,
    naming that record (``Drop(reason, record=...)``) so that it can be kept for inspection.
    The pipeline checks that what leaves accounts for every record that came in.
    """

    name: str
    parent_key: RecordKey
    child_key: RecordKey
    join: Callable[[list[Record], list[Record]], Iterable[StepResult]]  # (parents, children), each in key order
    description: str = ""


KEY_BYTES = 8  # a GroupKeyStep's keys: cc_net keeps 8 bytes of each line's SHA-1


@dataclass
class GroupKeyStep:
    """Rewrite each record by the keys it shares with the other records of its group: cc_net's
    line dedup, with line hashes as keys and a shard of a snapshot's listing as the group.

    ``group(record)`` names the record's group, ``keys(record)`` returns its keys (``KEY_BYTES``
    bytes each; repeats count once; it may keep working state in ``meta`` under ``_``-prefixed
    names, which ``apply`` finds when it gets that same record), and ``apply(record, shared)``
    gets a set holding at least those of its keys that two or more records of its group hold;
    it returns the record to keep or a :class:`Drop`.

    The pipeline reads each unit twice, as cc_net reads each file twice: the first read leaves
    one compact array of keys per unit, a group's arrays meet once, and each unit gets back the
    shared keys it holds before its second read (in local runs, the records the first read
    parked on disk); neither records nor single keys travel through a shuffle. The steps before
    this one must be per-record steps: they run in both reads. A group's distinct keys are held
    in one worker's memory at once.
    """

    name: str
    group: Callable[[Record], str]
    keys: Callable[[Record], Iterable[bytes]]
    apply: Callable[[Record, Container[bytes]], StepResult]  # (record, the shared keys of its unit)
    description: str = ""


@dataclass
class KeepFirstStep:
    """Exact dedup: of the records that share ``key(record)``, the first by order key stays and
    the others are dropped as ``reason``; a record whose key is None takes no part.

    Only (key, order key) pairs are grouped. Where only per-record steps follow, the verdict is
    applied as the records are written, so their text crosses no shuffle of its own: those steps
    then also run on the duplicates, and that work is discarded (counted nowhere). Where a
    shuffle step follows, the step runs as a join of the records by key.
    """

    name: str
    key: Callable[[Record], Hashable | None]
    reason: str
    description: str = ""


@dataclass
class ReferenceStep:
    """Look each record's key up among keys read from reference files (for example the URLs
    of another slice's output) and let ``apply(record, found)`` keep, annotate or drop it.

    ``read_keys(path)`` yields the keys of one reference file, and a :class:`Failure` for each
    part of it that cannot be read (counted as the step's ``reference_failures`` and
    dead-lettered; the keys read are still used). ``key(record)`` returns the record's key or
    None (then ``apply`` sees ``found=False``). How many records were found is counted as the
    step's ``matched``.
    """

    name: str
    references: tuple[str, ...]
    read_keys: Callable[[str], Iterable[str | Failure]]
    key: RecordKey
    apply: Callable[[Record, bool], StepResult]  # (record, whether its key was found)
    description: str = ""


@dataclass
class NearDedupStep:
    """Drop near-duplicates by MinHash LSH (``redpajama.dedup.minhash``): of each group of
    records whose word ``ngram`` sets reach Jaccard ``threshold``, the lowest order key stays.

    ``text(record)`` gives the text to compare. Kept records get ``meta.cluster_size``;
    dropped ones go to the ``_dropped/`` sample output with their cluster (the kept order key).
    """

    name: str
    text: Callable[[Record], str]
    threshold: float = 0.8
    num_perm: int = 128
    ngram: int = 5
    seed: int = 1
    verify: bool = True
    max_bucket: int = 1000
    rounds: int = 10
    sample_chars: int = 1000
    description: str = ""


RecipeStep = Step | JoinStep | GroupKeyStep | KeepFirstStep | ReferenceStep | NearDedupStep
"""Every kind of step a recipe is made of; each has a ``name`` and a ``description``."""


def describe(step: RecipeStep) -> str:
    """One line saying what ``step`` does: its description, else its name."""
    return step.description or step.name
