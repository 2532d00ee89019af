"""The sink's file format and sharding rule, which every executor writes by.

A sink takes :class:`SinkLine` items: a partition (the shards' name, which may hold a folder:
``2019-30/en_head``), a shard key, an order key and the line's bytes. Each partition gets
``ceil(bytes / shard_bytes)`` shards (or a fixed number), so the count depends only on the data;
a line goes to shard ``stable_shard(shard key)``; within a shard lines are in order-key order
(lines of the same key by their bytes), written newline-terminated to
``<partition>-SSSSS-of-NNNNN.jsonl.zst`` (zstd at the command line's level, as RedPajama's release).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import os
import posixpath
from collections.abc import Callable, Iterable, Sequence
from typing import Any, NamedTuple

import zstandard
from redpajama.core import storage
from redpajama.slices.base import UnitId

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
    with storage.create(path) as raw:  # written as given: no codec picked from the extension
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


def shard_count(size: int, lines: int, shard_bytes: int, fixed: int | None, always: bool) -> int | None:
    """A partition's number of shards from its ``size`` in bytes and its number of ``lines``;
    None for a partition with no line left, unless it is ``always`` written (one empty shard)."""
    if lines > 0 or always:
        return fixed or max(1, math.ceil(size / shard_bytes))
    return None


def line_digest(line: bytes) -> bytes:
    """Names one line among lines of the same order key (a tombstone removes only its own)."""
    return hashlib.blake2b(line, digest_size=8).digest()


def shard_order(keys: Sequence[str], indices: Iterable[int], line: Callable[[int], bytes]) -> list[int]:
    """The order in which a shard's lines ``indices`` are written: by order key (``keys[i]``), and
    lines of the same key by their bytes (``line(i)``, read only for such lines)."""
    order = sorted(indices, key=keys.__getitem__)
    if len(set(keys)) == len(keys):
        return order
    ordered: list[int] = []
    for _, tied in itertools.groupby(order, key=keys.__getitem__):
        tied = list(tied)
        ordered += tied if len(tied) == 1 else sorted(tied, key=line)
    return ordered
