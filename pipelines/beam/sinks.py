"""Sinks and the commit protocol: sorted, stably sharded JSONL(.zst) and a completion marker.

Shards are written under ``<slice>/_temporary/`` with their final names; a run that dies
leaves only that folder behind. After the pipeline succeeds the launcher moves the shards
into place, writes ``stats.json`` and then the ``_SUCCESS`` marker, which records the
settings of the run so that a rerun with the same settings does no work.
"""

from __future__ import annotations

import array
import collections
import hashlib
import itertools
import json
import math
import os
import posixpath
import shutil
import warnings
from collections.abc import Iterable
from typing import Any, NamedTuple

import apache_beam as beam
import zstandard
from apache_beam.coders import FastPrimitivesCoder
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems
from apache_beam.transforms.window import GlobalWindow
from apache_beam.utils.timestamp import MIN_TIMESTAMP
from apache_beam.utils.windowed_value import WindowedValue
from redpajama.pipelines.beam.shuffle_volume import CountShuffled
from redpajama.pipelines.beam.spill import SpillReader, SpillWriter
from redpajama.slices.base import UnitId

TEMPORARY = "_temporary"
ERRORS = "_errors"
DROPPED = "_dropped"
UNIT_YIELDS = "_unit_yields"  # under _temporary: kept documents and bytes per unit, read into stats.json, never output
MARKER = "_SUCCESS"
LOCK = "_LOCK"  # held by a running run (see redpajama.pipelines.runs.lock)
STATS = "stats.json"
ZSTD_LEVEL = 3  # the zstd command line's default, which RedPajama's release used


class SinkLine(NamedTuple):
    """One line for a sink: the partition it belongs to (its shards' name, which may hold a
    folder: ``2019-30/en_head``), the key whose stable hash picks its shard, the key that orders
    it within the shard, and its bytes (without the newline)."""

    partition: str
    shard_key: str
    order_key: str
    line: bytes


class Tombstone(NamedTuple):
    """Takes back one line made for a sink (a duplicate found after its line was made): the
    line's partition, shard and order keys, its length and :func:`line_digest`."""

    partition: str
    shard_key: str
    order_key: str
    line_bytes: int
    digest: bytes


class UnitYield(NamedTuple):
    """What one unit kept: documents and bytes of text (``unit`` None: records no unit claims)."""

    unit: UnitId | None
    documents: int
    bytes: int


UNIT_YIELDS_NAME = "units"


def unit_yield_line(found: UnitYield) -> SinkLine:
    """A unit's yield as a JSON line of the ``_unit_yields`` bookkeeping (read by :func:`read_unit_yield`)."""
    source, start = found.unit if found.unit is not None else (None, 0)
    line = json.dumps({"source": source, "start": start, "documents": found.documents, "bytes": found.bytes})
    return SinkLine(UNIT_YIELDS_NAME, source or "", line, line.encode("ascii"))


def read_unit_yield(line: bytes) -> UnitYield:
    row = json.loads(line)
    unit = None if row["source"] is None else UnitId(row["source"], row["start"])
    return UnitYield(unit, row["documents"], row["bytes"])


def join(*parts: str) -> str:
    """Join path parts for local paths and URIs (gs://...) alike."""
    return FileSystems.join(*parts) if parts[0].startswith(("gs://", "s3://")) else posixpath.join(*parts)


def shard_name(name: str, index: int, count: int, compressed: bool, extension: str = ".jsonl") -> str:
    return f"{name}-{index:05d}-of-{count:05d}{extension}{'.zst' if compressed else ''}"


def stable_shard(record_id: str, count: int) -> int:
    """Shard of a record: a stable hash of its id, independent of workers and runs."""
    digest = hashlib.blake2b(record_id.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big") % count


def encode_record(record: dict[str, Any]) -> bytes:
    """One output line; meta keys starting with ``_`` are working state and are not written."""
    meta = {k: v for k, v in record["meta"].items() if not k.startswith("_")}
    return json.dumps({"text": record["text"], "meta": meta}, ensure_ascii=False).encode("utf-8")


def write_lines(path: str, lines: Iterable[bytes], compressed: bool) -> None:
    """Write newline-terminated lines to ``path`` (zstd when ``compressed``), replacing it."""
    if "://" not in path:  # object stores have no folders; workers may race to make a local one
        os.makedirs(posixpath.dirname(path), exist_ok=True)
    # Beam would otherwise pick a codec from the extension and compress a second time.
    with FileSystems.create(path, compression_type=CompressionTypes.UNCOMPRESSED) as raw:
        if compressed:
            with zstandard.ZstdCompressor(level=ZSTD_LEVEL).stream_writer(raw, closefd=False) as out:
                _write_joined(out, lines)
        else:
            _write_joined(raw, lines)


def _write_joined(out, lines: Iterable[bytes], per_write: int = 1024) -> None:
    """Newline-terminated lines, ``per_write`` lines to a write (the bytes are the same)."""
    lines = iter(lines)
    while chunk := list(itertools.islice(lines, per_write)):
        chunk.append(b"")
        out.write(b"\n".join(chunk))


class WriteSortedShards(beam.PTransform):
    """:class:`SinkLine` items (or lists of them) -> files ``<directory>/<partition>-SSSSS-of-NNNNN``.

    A partition may hold a folder (``2019-30/en_head``), so one sink writes every partition of
    a slice. Each name's number of shards comes from its total size (``shard_bytes`` per
    shard) unless ``num_shards`` is given; either way it depends only on the data. Lines are
    sorted by order key within a shard, so output is byte-identical whatever the runner
    did. Names in ``always`` get their (empty) shard even when no record has them.
    Returns the written paths.

    With ``spill`` (a local folder all workers share: the local runner), lines are written to
    spill files where they are made and only ``(file, offset, length)`` travels through the
    shuffle, so the shuffle's memory holds an index, not the text.

    ``removed`` takes lines back: :class:`Tombstone` items, each removing one line made for the
    sink (a duplicate found after its line was made); shard counts are those of the lines that stay.
    """

    def __init__(
        self,
        directory: str,
        shard_bytes: int,
        num_shards: int | None = None,
        compressed: bool = True,
        always: tuple[str, ...] = (),
        extension: str = ".jsonl",
        spill: str | None = None,
        removed=None,
        measure: str | None = None,
    ):
        super().__init__()
        self.spill = spill
        self.removed = removed
        self.measure = measure
        self.directory = directory
        self.shard_bytes = shard_bytes
        self.num_shards = num_shards
        self.compressed = compressed
        self.always = tuple(always)
        self.extension = extension

    def expand(self, items):
        # Lines travel in batches: the shard count needs every size first, and batches make
        # both that wait and the shuffle cost per batch instead of per record.
        batches = items | "Batch" >> beam.ParDo(_BatchLines(self.spill))
        sizes = [batches | "BatchBytes" >> beam.Map(_batch_bytes)]
        if self.always:
            sizes.append(items.pipeline | "AlwaysWritten" >> beam.Create([(name, (0, 0)) for name in self.always]))
        if self.removed is not None:
            sizes.append(self.removed | "RemovedBytes" >> beam.Map(_removed_bytes))
        shard_bytes, fixed, always = self.shard_bytes, self.num_shards, self.always
        counts = (
            sizes
            | "AllSizes" >> beam.Flatten()
            | "TotalBytes" >> beam.CombinePerKey(beam.combiners.TupleCombineFn(sum, sum))
            | "ShardCount" >> beam.FlatMap(_shard_count, shard_bytes=shard_bytes, fixed=fixed, always=always)
        )
        counts_view = beam.pvalue.AsDict(counts)
        assigned = [batches | "AssignShard" >> beam.FlatMap(_split_by_shard, counts=counts_view)]
        if self.removed is not None:
            assigned.append(self.removed | "AssignRemoved" >> beam.FlatMap(_removed_shard, counts=counts_view))
        assigned = assigned | "AllAssigned" >> beam.Flatten()
        if self.measure:
            assigned = assigned | "CountShuffled" >> beam.ParDo(CountShuffled(self.measure, carried_bytes))
        grouped = assigned | "GroupByShard" >> beam.GroupByKey()
        written = grouped | "WriteShard" >> beam.Map(
            _write_shard, directory=self.directory, counts=counts_view, compressed=self.compressed,
            extension=self.extension,
        )
        # Shards that no record hashed into still exist, empty, so each set is complete.
        empty = counts | "EmptyShards" >> beam.FlatMap(
            _write_missing_shards,
            written=beam.pvalue.AsList(written),
            directory=self.directory,
            compressed=self.compressed,
            extension=self.extension,
        )
        return (written, empty) | "AllShards" >> beam.Flatten()


class _BatchLines(beam.DoFn):
    """:class:`SinkLine` items (or lists of them) -> ``(partition, [(shard_key, order_key, line),
    ...])``, batches of about ``BATCH_BYTES`` per partition, with the bundle's buffer bounded."""

    BATCH_BYTES = 4 << 20
    BUNDLE_BYTES = 64 << 20

    def __init__(self, spill: str | None = None):
        self.spill = spill

    def start_bundle(self):
        self._batches: dict[str, list] = {}
        self._sizes: dict[str, int] = {}
        self._buffered = 0

    def process(self, item):
        for name, shard_key, order_key, line in item if isinstance(item, list) else (item,):
            self._batches.setdefault(name, []).append((shard_key, order_key, line))
            self._sizes[name] = self._sizes.get(name, 0) + len(line)
            self._buffered += len(line)
            if self._sizes[name] >= self.BATCH_BYTES:
                yield self._take(name)
            if self._buffered >= self.BUNDLE_BYTES:
                for pending in list(self._batches):
                    yield self._take(pending)

    def _take(self, name):
        self._buffered -= self._sizes.pop(name)
        entries = self._batches.pop(name)
        return name, spill_lines(self.spill, entries) if self.spill else entries

    def finish_bundle(self):
        for name in list(self._batches):
            yield WindowedValue(self._take(name), MIN_TIMESTAMP, [GlobalWindow()])


def spill_lines(folder: str, entries: list) -> tuple:
    """Write a batch's lines to a new spill file: ``("spill", path, [(shard_key, order_key)],
    spans)``, where ``spans`` packs each line's offset and length (an index, not the text)."""
    lines = [line for _, _, line in entries]
    lengths = list(map(len, lines))
    offsets = [0, *itertools.accumulate(lengths)][:-1]
    spans = array.array("Q", itertools.chain.from_iterable(zip(offsets, lengths, strict=True)))
    writer = SpillWriter(folder)  # a file of its own: the spans count from 0
    try:
        path = writer.put(b"".join(lines)).path
    finally:
        writer.close()
    return SPILLED, path, [(shard_key, order_key) for shard_key, order_key, _ in entries], spans.tobytes()


SPILLED = "spill"


def _is_spilled(entries) -> bool:
    return isinstance(entries, tuple) and entries[:1] == (SPILLED,)


def _batch_bytes(batch) -> tuple[str, tuple[int, int]]:
    """(name, (bytes the batch's lines take in a shard, lines))."""
    name, entries = batch
    if _is_spilled(entries):
        spans = array.array("Q", entries[3])
        return name, (sum(spans[1::2]) + len(entries[2]), len(entries[2]))
    return name, (sum(len(line) + 1 for _, _, line in entries), len(entries))


def _shard_count(name_size, shard_bytes: int, fixed: int | None, always: tuple[str, ...]):
    """A name's number of shards; none for a name whose every line was taken back."""
    name, (size, lines) = name_size
    if lines > 0 or name in always:
        yield name, fixed or max(1, math.ceil(size / shard_bytes))


REMOVED = "removed"


def line_digest(line: bytes) -> bytes:
    """Names one line among lines of the same order key (a tombstone removes only its own)."""
    return hashlib.blake2b(line, digest_size=8).digest()


def _removed_bytes(tombstone: Tombstone) -> tuple[str, tuple[int, int]]:
    """What a taken-back line no longer adds to its partition: its bytes and newline, one line."""
    return tombstone.partition, (-tombstone.line_bytes - 1, -1)


def _removed_shard(tombstone: Tombstone, counts: dict[str, int]):
    name = tombstone.partition
    if name in counts:
        shard = stable_shard(tombstone.shard_key, counts[name]) if counts[name] > 1 else 0
        yield (name, shard), (REMOVED, tombstone.order_key, tombstone.digest)


def carried_bytes(assigned) -> int:
    """Bytes of an element going to its shard, with spilled lines counted as the text they are
    (what a runner without spill files carries)."""
    (name, _), part = assigned
    if _is_spilled(part):
        _, _, order_keys, packed = part
        return len(name) + sum(array.array("Q", packed)[1::2]) + sum(map(len, order_keys)) + 4 * len(order_keys)
    return FastPrimitivesCoder().estimate_size(assigned)


def _is_removed(part) -> bool:
    return isinstance(part, tuple) and part[:1] == (REMOVED,)


def _split_by_shard(batch, counts: dict[str, int]):
    name, entries = batch
    if name not in counts:  # every line of this name was taken back
        return
    if counts[name] == 1:  # every line goes to the one shard
        if _is_spilled(entries):
            _, path, keys, packed = entries
            yield (name, 0), (SPILLED, path, [order_key for _, order_key in keys], packed)
        else:
            yield (name, 0), [(order_key, line) for _, order_key, line in entries]
        return
    if _is_spilled(entries):
        _, path, keys, packed = entries
        spans = array.array("Q", packed)
        parts: dict[int, tuple[list, array.array]] = {}
        for index, (shard_key, order_key) in enumerate(keys):
            part = parts.setdefault(stable_shard(shard_key, counts[name]), ([], array.array("Q")))
            part[0].append(order_key)
            part[1].extend(spans[2 * index: 2 * index + 2])
        for shard, (order_keys, part_spans) in parts.items():
            yield (name, shard), (SPILLED, path, order_keys, part_spans.tobytes())
        return
    by_shard: dict[int, list] = {}
    for shard_key, order_key, line in entries:
        by_shard.setdefault(stable_shard(shard_key, counts[name]), []).append((order_key, line))
    for shard, lines in by_shard.items():
        yield (name, shard), lines


def _write_shard(group, directory: str, counts: dict[str, int], compressed: bool, extension: str) -> str:
    """Sort a shard's lines by order key (ties by the lines' bytes, as sorting (key, line)
    pairs does) and write them; spilled lines are read back from their files."""
    (name, index), parts = group
    path = join(directory, shard_name(name, index, counts[name], compressed, extension))
    keys: list = []
    lines: list = []  # bytes, or (spill file, offset, length) until read
    removed: collections.Counter = collections.Counter()
    spill = SpillReader()
    try:
        for part in parts:
            if _is_removed(part):
                removed[part[1:]] += 1
            elif _is_spilled(part):
                _, source, order_keys, packed = part
                spans = array.array("Q", packed)
                keys += order_keys
                lines += zip(itertools.repeat(source), spans[0::2], spans[1::2])
            else:
                for order_key, line in part:
                    keys.append(order_key)
                    lines.append(line)
        kept = _not_removed(keys, lines, removed, spill.read) if removed else range(len(keys))
        order = sorted(kept, key=keys.__getitem__)
        if len(set(keys)) < len(keys):  # lines with the same key go in the order of their bytes
            order = _ties_by_bytes(order, keys, lines, spill.read)
        write_lines(path, (spill.read(lines[i]) for i in order), compressed)
    finally:
        spill.close()
    return path


def _not_removed(keys: list, lines: list, removed: collections.Counter, read) -> list[int]:
    """Indices of the lines no tombstone ``(order_key, line_digest)`` takes back."""
    keys_removed = {order_key for order_key, _ in removed}
    kept = []
    for index, key in enumerate(keys):
        if key in keys_removed:
            mark = (key, line_digest(read(lines[index])))
            if removed[mark] > 0:
                removed[mark] -= 1
                continue
        kept.append(index)
    return kept


def _ties_by_bytes(order: list[int], keys: list, lines: list, read) -> list[int]:
    """``order`` (sorted by key) with each run of equal keys sorted by the lines' bytes."""
    ordered: list[int] = []
    for _, tied in itertools.groupby(order, key=keys.__getitem__):
        tied = list(tied)
        ordered += tied if len(tied) == 1 else sorted(tied, key=lambda i: read(lines[i]))
    return ordered


def _write_missing_shards(name_count, written: list[str], directory: str, compressed: bool, extension: str):
    name, count = name_count
    present = set(written)
    for index in range(count):
        path = join(directory, shard_name(name, index, count, compressed, extension))
        if path not in present:
            write_lines(path, (), compressed)
            yield path


# --- commit and markers (run by the launcher, outside the pipeline) ---------------------


GLOB_CHARS = "[*?"


def literal_pattern(path: str) -> str:
    """``path`` as a Beam match pattern that matches only itself: Beam's patterns have no escape
    character, but a one-character class has (``[[]``, ``[*]``, ``[?]``)."""
    return "".join(f"[{char}]" if char in GLOB_CHARS else char for char in path)


def read_marker(slice_dir: str) -> dict[str, Any] | None:
    """The ``_SUCCESS`` marker of a finished run, or None (none, or not a marker this project wrote)."""
    path = join(slice_dir, MARKER)
    if not FileSystems.exists(path):
        return None
    with FileSystems.open(path) as handle:
        try:
            marker = json.loads(handle.read().decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            return None
    return marker if isinstance(marker, dict) else None


def write_json(path: str, data: dict[str, Any]) -> None:
    """Write ``data`` as JSON; locally through a temporary name renamed into place, so that a
    link at ``path`` is replaced, never written through, and a reader never sees half a file."""
    encoded = (json.dumps(data, indent=2, sort_keys=False) + "\n").encode("utf-8")
    if "://" in path:
        with FileSystems.create(path) as handle:
            handle.write(encoded)
        return
    os.makedirs(posixpath.dirname(path) or ".", exist_ok=True)
    partial = posixpath.join(posixpath.dirname(path), f".{posixpath.basename(path)}.partial")
    descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o644)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(encoded)
    os.replace(partial, path)


def clear(directory: str) -> None:
    """Remove a directory tree if it exists (locally, links inside it are removed, never followed)."""
    if "://" in directory:
        for path in list_files(directory):
            delete_file(path)
    elif os.path.isdir(directory) and not os.path.islink(directory):
        shutil.rmtree(directory)


def list_files(directory: str) -> list[str]:
    """Every file below ``directory``, sorted; the name is taken literally, never as a glob.
    Locally, links to folders are not entered."""
    if "://" not in directory:
        found = []
        for root, _, files in os.walk(directory):
            found += [posixpath.join(root, name) for name in files]
        return sorted(found)
    # Everything under the part of the name before any glob character, then exactly this folder.
    root = directory.rstrip("/") + "/"
    prefix = root[: min((root.find(char) for char in GLOB_CHARS if char in root), default=len(root))]
    return sorted(m.path for m in FileSystems.match([prefix + "**"])[0].metadata_list if m.path.startswith(root))


PATTERN_DELETES = ("gs://",)  # file systems whose delete matches its argument as a pattern (Beam's GCS)


def delete_file(path: str) -> None:
    """Delete one file (locally a link itself, never its target)."""
    if "://" not in path:
        os.unlink(path)
        return
    if not path.startswith(PATTERN_DELETES) or not any(char in path for char in GLOB_CHARS):
        FileSystems.delete([path])
        return
    with warnings.catch_warnings():  # Python's regex warns of "[[]" as a possible nested set; it is not one
        warnings.simplefilter("ignore", FutureWarning)
        FileSystems.delete([literal_pattern(path)])


def commit(slice_dir: str, stats: dict[str, Any], marker: dict[str, Any], stale: list[str]) -> list[str]:
    """Replace the files ``stale`` names (relative to ``slice_dir``: an earlier run's, each one this
    project wrote) with the run's files from ``_temporary``, then write stats and the marker.

    The old marker goes first, so that a commit cut short is never taken as a finished run.
    """
    temporary = join(slice_dir, TEMPORARY)
    staged = list_files(temporary)
    for relative in sorted(stale, key=lambda name: name != MARKER):
        delete_file(join(slice_dir, relative))
    if "://" not in slice_dir:
        _remove_emptied_folders(slice_dir, stale)
    finals = []
    for path in staged:
        final = join(slice_dir, path[len(temporary) :].lstrip("/"))
        parent = posixpath.dirname(final)
        if "://" not in final and not FileSystems.exists(parent):
            FileSystems.mkdirs(parent)  # object stores have no directories to make
        FileSystems.rename([path], [final])
        finals.append(final)
    clear(temporary)
    write_json(join(slice_dir, STATS), stats)
    write_json(join(slice_dir, MARKER), marker)
    return finals


def _remove_emptied_folders(slice_dir: str, removed: list[str]) -> None:
    """Remove the folders that held removed files and are empty now, deepest first."""
    folders = {"/".join(relative.split("/")[:depth]) for relative in removed for depth in range(1, relative.count("/") + 1)}
    for folder in sorted(folders, key=lambda name: -name.count("/")):
        try:
            os.rmdir(posixpath.join(slice_dir, folder))
        except OSError:  # not empty: something else lives there
            pass
