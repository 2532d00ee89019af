"""The sink as Beam transforms: :class:`~redpajama.pipelines.runs.sink.SinkLine` items into sorted,
stably sharded files, by the rule :mod:`redpajama.pipelines.runs.sink` states; in local runs the
lines wait in spill files and only an index of them travels through the shuffle.
"""

from __future__ import annotations

import array
import collections
import itertools

import apache_beam as beam
from apache_beam.coders import FastPrimitivesCoder
from apache_beam.transforms.window import GlobalWindow
from apache_beam.utils.timestamp import MIN_TIMESTAMP
from apache_beam.utils.windowed_value import WindowedValue
from redpajama.pipelines.beam.shuffle_volume import CountShuffled
from redpajama.pipelines.beam.spill import SpillReader, SpillWriter
from redpajama.pipelines.runs.output_folder import join
from redpajama.pipelines.runs.sink import Tombstone, line_digest, shard_count, shard_name, shard_order, stable_shard, write_lines


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
    """A partition's number of shards (:func:`~redpajama.pipelines.runs.sink.shard_count`); none
    for a partition whose every line was taken back."""
    name, (size, lines) = name_size
    count = shard_count(size, lines, shard_bytes, fixed, name in always)
    if count is not None:
        yield name, count


REMOVED = "removed"


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
        order = shard_order(keys, kept, lambda index: spill.read(lines[index]))
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


def _write_missing_shards(name_count, written: list[str], directory: str, compressed: bool, extension: str):
    name, count = name_count
    present = set(written)
    for index in range(count):
        path = join(directory, shard_name(name, index, count, compressed, extension))
        if path not in present:
            write_lines(path, (), compressed)
            yield path
