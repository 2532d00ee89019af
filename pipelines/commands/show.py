"""``redpajama show OUT/SLICE``: a few documents of an output, or of its rejects, as a person reads them.

Shards are read as streams (``.jsonl.zst``, ``.jsonl``, ``.jsonl.gz``, ``.txt`` line shards)
and reading stops at the N-th document shown: a 5-document look at a 256 MB shard reads
its first megabyte or so. Rejects live under ``_dropped/``, either as ``<reason>-SSSSS-of-NNNNN``
shards (MinHash near-duplicates) or as ``<step>/<reason>/`` folders of shards whose meta holds
the step's scores; ``--dropped REASON`` reads both the same way as the output.
"""

from __future__ import annotations

import difflib
import json
import math
import operator
import os
import posixpath
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import IO, Any

from redpajama.core import storage, streams
from redpajama.core.errors import SourceError, UsageError
from redpajama.pipelines.runs import output_folder

RECORD_SUFFIXES = (".jsonl", ".jsonl.zst", ".jsonl.gz", ".json.gz", ".jsonl.xz")
LINE_SUFFIXES = (".txt", ".txt.zst", ".txt.gz")
HIDDEN_PARTS = (output_folder.ERRORS, output_folder.DROPPED, output_folder.TEMPORARY)
SHARD_SET = re.compile(r"^(.*?)-\d{5}-of-\d{5}\.[a-z.]+$")
ALL_REASONS = "*"
MAX_META_VALUE = 200  # characters of one meta string shown (scores and ids are shorter)
MAX_RECORD_BYTES = 64 << 20
CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")  # what could drive the terminal (ESC...)


@dataclass(frozen=True)
class Condition:
    """One ``--where``: ``meta.KEY`` (dotted for nested keys) or ``text``, an operator, a value."""

    path: tuple[str, ...]
    op: str
    value: str
    test: Callable[[Any], bool] = field(compare=False, repr=False)

    def matches(self, record: dict) -> bool:
        value: Any = record
        for key in self.path:
            if not isinstance(value, dict) or key not in value:
                return self.op == "!="
            value = value[key]
        return self.test(value)

    def __str__(self) -> str:
        return f"{'.'.join(self.path)}{self.op}{self.value}"


WHERE = re.compile(r"^(text|meta(?:\.[^=!<>~\s]+)+)\s*(!=|<=|>=|=|<|>|~)\s*(.*)$", re.S)
ORDERING = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}
WHERE_HELP = "expected meta.KEY=VALUE (also !=, <, <=, >, >= with a number, ~ with a regular expression) or text~REGEX"


def parse_where(text: str) -> Condition:
    """A ``--where`` expression; a malformed one is a :class:`UsageError` that shows the forms."""
    match = WHERE.match(text.strip())
    if not match:
        raise UsageError(f"--where {text!r}: {WHERE_HELP}")
    name, op, value = match.groups()
    path = tuple(name.split("."))
    if name == "text" and op != "~":
        raise UsageError(f"--where {text!r}: the text is matched with ~ and a regular expression (text~REGEX)")
    if op == "~":
        try:
            pattern = re.compile(value)
        except re.error as error:
            raise UsageError(f"--where {text!r}: not a regular expression ({error})") from None
        return Condition(path, op, value, lambda v: isinstance(v, str) and pattern.search(v) is not None)
    if op in ORDERING:
        try:
            bound = float(value)
        except ValueError:
            raise UsageError(f"--where {text!r}: {op} compares numbers, and {value!r} is not one") from None
        if math.isnan(bound):
            raise UsageError(f"--where {text!r}: {op} compares numbers, and {value!r} is not one")
        compare = ORDERING[op]
        return Condition(path, op, value, lambda v: _is_number(v) and compare(v, bound))
    equal = _equality(value)
    return Condition(path, op, value, equal if op == "=" else (lambda v: not equal(v)))


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _equality(given: str) -> Callable[[Any], bool]:
    """``=``: a string equals the text given; a number, boolean or null equals it read as JSON."""
    try:
        parsed = json.loads(given)
    except ValueError:
        parsed = given

    def equal(value: Any) -> bool:
        if isinstance(value, str):
            return value == given or (isinstance(parsed, str) and value == parsed)
        if _is_number(value) and _is_number(parsed):
            return value == parsed
        return value == parsed and type(value) is type(parsed)

    return equal


# --- finding the files -------------------------------------------------------------------------


def _is_shard(path: str) -> bool:
    return path.endswith(RECORD_SUFFIXES + LINE_SUFFIXES)


def _listing(folder: str) -> list[str]:
    root = folder.rstrip("/")
    return storage.list_files(root)


def output_shards(target: str) -> list[str]:
    """The shards ``target`` names: a shard file, a glob, or a slice folder (not its rejects,
    dead letters or staging). Raises :class:`UsageError` with the reason when there are none."""
    if any(c in target for c in storage.GLOB_CHARS):
        files = [path for path in storage.expand(target) if _is_shard(path)]
        if not files:
            raise UsageError(f"{target}: no output shards match (*.jsonl.zst, *.jsonl, *.txt)")
        return files
    folder = _folder(target)
    if folder is None:
        return [target]
    root = folder.rstrip("/")
    files = [path for path in _listing(root) if _is_shard(path) and not _hidden(path[len(root) :])]
    if files:
        _one_slice(root, files)
        return files
    if _listing(output_folder.join(root, output_folder.TEMPORARY)):
        raise UsageError(f"{target}: no output yet: a run is writing it or was interrupted (only {output_folder.TEMPORARY}/ "
                         "is there; rerun the same command to finish)")
    raise UsageError(f"{target}: no output shards here (*.jsonl.zst, *.jsonl, *.txt); is it a slice folder "
                     "such as out/wikipedia?")


def _folder(target: str) -> str | None:
    """``target`` as a folder, None when it is a file; a missing path is a one-line error."""
    if "://" in target:
        if storage.exists(target) and not target.endswith("/"):
            return None
        if not _listing(target):
            raise UsageError(f"{target}: no such folder or file")
        return target
    if os.path.isfile(target):
        return None
    if not os.path.isdir(target):
        parent = os.path.dirname(target.rstrip("/")) or "."
        near = ""
        if os.path.isdir(parent):
            names = sorted(name for name in os.listdir(parent) if os.path.isdir(os.path.join(parent, name)))
            close = difflib.get_close_matches(os.path.basename(target.rstrip("/")), names, n=1)
            near = f"; did you mean {os.path.join(parent, close[0])}?" if close else ""
        raise UsageError(f"{target}: no such folder{near}")
    return target


def _hidden(relative: str) -> bool:
    return any(f"/{part}/" in relative or relative.startswith(f"{part}/") for part in HIDDEN_PARTS)


def _one_slice(root: str, files: list[str]) -> None:
    """An output folder holding several slice folders is named slice by slice."""
    tops = {path[len(root) + 1 :].split("/", 1)[0] for path in files if "/" in path[len(root) + 1 :]}
    slices = sorted(top for top in tops if storage.exists(output_folder.join(root, top, output_folder.STATS)))
    if len(slices) > 1:
        raise UsageError(f"{root} holds {len(slices)} slices ({', '.join(slices)}): name one, "
                         f"e.g. redpajama show {output_folder.join(root, slices[0])}")


def dropped_reasons(folder: str) -> dict[str, list[str]]:
    """Reason -> the reject shards kept for it, in both layouts: ``_dropped/<reason>-SSSSS-of-NNNNN``
    and ``_dropped/<step>/<reason>/...`` (keyed ``step/reason``)."""
    root = output_folder.join(folder.rstrip("/"), output_folder.DROPPED)
    found: dict[str, list[str]] = {}
    for path in _listing(root):
        if not _is_shard(path):
            continue
        parts = path[len(root) + 1 :].split("/")
        if len(parts) == 1:
            match = SHARD_SET.match(parts[0])
            reason = match.group(1) if match else parts[0].split(".", 1)[0]
        elif len(parts) >= 3:
            reason = f"{parts[0]}/{parts[1]}"
        else:
            reason = parts[0]
        found.setdefault(reason, []).append(path)
    return found


def dropped_shards(target: str, reason: str) -> list[str]:
    """The reject shards of ``reason`` (``REASON`` or ``STEP/REASON``; ``*`` for every reason)."""
    folder = _folder(target)
    if folder is None:
        raise UsageError(f"--dropped: {target} is a file; name the slice folder (e.g. out/books)")
    kept = dropped_reasons(folder)
    if reason == ALL_REASONS:
        files = [path for paths in kept.values() for path in paths]
    else:
        files = [path for name, paths in kept.items() if reason in (name, name.rsplit("/", 1)[-1]) for path in paths]
    if files:
        return sorted(files)
    counted = _dropped_counts(folder)
    where = output_folder.join(folder.rstrip("/"), output_folder.DROPPED)
    have = f"kept here: {', '.join(sorted(kept))}" if kept else "none are kept here"
    if reason == ALL_REASONS:
        raise UsageError(f"{where}: no rejects kept ({_counted_note(counted)})")
    if reason in counted:
        raise UsageError(f"{target}: {counted[reason]:,} documents were dropped as {reason!r}, but their text was not "
                         f"kept ({have}; a run with --keep-dropped keeps them)")
    raise UsageError(f"{target}: no rejects for {reason!r} ({have}; {_counted_note(counted)})")


def _dropped_counts(folder: str) -> dict[str, int]:
    path = output_folder.join(folder.rstrip("/"), output_folder.STATS)
    try:
        with storage.open_range(path) as handle:
            return dict(json.loads(handle.read()).get("dropped", {}))
    except Exception:  # noqa: BLE001 - no stats.json (a download) or a broken one: nothing to add
        return {}


def _counted_note(counted: dict[str, int]) -> str:
    if not counted:
        return "stats.json counts no drops"
    return "stats.json counts " + ", ".join(f"{reason} {count:,}" for reason, count in sorted(counted.items()))


# --- reading and printing ----------------------------------------------------------------------


@dataclass
class Shown:
    shown: int = 0
    read: int = 0
    files_opened: int = 0
    files: int = 0
    complete: bool = False  # every file was read to its end


def records(path: str) -> Iterator[tuple[int, dict]]:
    """``(line number, record)`` of one shard, streamed; ``.txt`` lines become ``{"text": line}``."""
    lines_only = path.endswith(LINE_SUFFIXES)
    number = 0
    try:
        with storage.open_range(path) as stream:
            for _, line in streams.iter_lines(streams.decompressed_chunks(stream, path), MAX_RECORD_BYTES):
                number += 1
                if lines_only:
                    yield number, {"text": line.decode("utf-8", "replace")}
                elif line.strip():
                    yield number, json.loads(line)
    except (*streams.DECOMPRESSION_ERRORS, SourceError) as error:
        raise UsageError(f"{path}: unreadable after line {number} ({type(error).__name__}: {error})") from None
    except ValueError as error:
        raise UsageError(f"{path}: line {number + 1} is not a JSON record ({error})") from None


def show(files: list[str], count: int, where: list[Condition], width: int, as_json: bool, out: IO[str]) -> Shown:
    """Print the first ``count`` records of ``files`` that meet every condition; stop there."""
    result = Shown(files=len(files))
    for path in files:
        if result.shown >= count:
            return result
        result.files_opened += 1
        for number, record in records(path):
            result.read += 1
            if not all(condition.matches(record) for condition in where):
                continue
            result.shown += 1
            if as_json:
                out.write(json.dumps(record, ensure_ascii=False) + "\n")
            else:
                out.write(render(record, path, number, result.shown, width))
            if result.shown >= count:
                return result
    result.complete = True
    return result


def render(record: dict, path: str, number: int, index: int, width: int) -> str:
    """One document for a person: where it is, its meta on one line, its text cut to ``width``."""
    text = record.get("text", "")
    text = text if isinstance(text, str) else json.dumps(text)
    lines = [f"[{index}] {posixpath.basename(path)} line {number}"]
    meta = record.get("meta")
    if meta:
        lines.append("  meta  " + _printable(json.dumps(_short(meta), ensure_ascii=False)))
    cut = text if width <= 0 or len(text) <= width else text[:width]
    more = f" … (+{len(text) - len(cut):,} characters)" if len(cut) < len(text) else ""
    lines.append(f"  text  ({len(text):,} characters) " + _printable(cut.replace("\r\n", "\n").replace("\n", "⏎ ")) + more)
    return "\n".join(lines) + "\n\n"


def _short(value: Any) -> Any:
    if isinstance(value, str) and len(value) > MAX_META_VALUE:
        return value[:MAX_META_VALUE] + f"… (+{len(value) - MAX_META_VALUE:,})"
    if isinstance(value, dict):
        return {key: _short(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_short(item) for item in value[:20]] + ([f"… (+{len(value) - 20} more)"] if len(value) > 20 else [])
    return value


def _printable(text: str) -> str:
    """Tabs as spaces, other control characters (terminal escapes) as ``\\xNN``."""
    return CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text.replace("\t", " "))


def summary(result: Shown, target: str, where: list[Condition], dropped: str | None) -> str:
    """The closing line (stderr): what was shown, out of how much was read."""
    what = ("reject" if dropped else "document") + ("s" if result.shown != 1 else "")
    if dropped and dropped != ALL_REASONS:
        what += f" ({dropped})"
    matching = f" matching {' and '.join(str(c) for c in where)}" if where else ""
    scope = (f"read all {result.read:,} in {result.files:,} shard{'s' * (result.files != 1)}" if result.complete
             else f"read {result.read:,} in {result.files_opened:,} of {result.files:,} shard{'s' * (result.files != 1)}")
    if result.shown == 0:
        return f"show: no {what}{matching} in {target} ({scope})"
    return f"show: {result.shown:,} {what}{matching} from {target} ({scope})"
