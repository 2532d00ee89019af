"""Exact dedup keys: line hashes with cc_net's semantics, and keep-first by order key.

Line dedup is two-pass, as in cc_net: a line whose normalised hash occurs in two or more
documents of the dedup scope is removed from *all* of them, the first included; a line
repeated inside one document keeps its first occurrence. The pipeline finds the shared
hashes of each dedup group (``redpajama.pipelines.beam.group_keys``, with the array kernels in
``redpajama.dedup.shared_keys``); the functions here are the per-document halves.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

from redpajama.filters.normalize import normalize_for_dedup, normalize_lines_for_dedup

HASH_BYTES = 8  # cc_net keeps the first 8 bytes of the SHA-1


def line_hash(line: str) -> bytes:
    """cc_net's line hash: SHA-1 of the dedup-normalised line, first 8 bytes."""
    return hashlib.sha1(normalize_for_dedup(line).encode("utf-8")).digest()[:HASH_BYTES]


def line_hashes(text: str) -> list[bytes]:
    """The hash of every line of ``text`` (split on ``\\n``), in order: ``line_hash`` of each."""
    normalized = normalize_lines_for_dedup(text).encode("utf-8")
    return [hashlib.sha1(line).digest()[:HASH_BYTES] for line in normalized.split(b"\n")]


def remove_lines(text: str, hashes: list[bytes], shared: set[bytes]) -> tuple[str, int]:
    """Drop lines whose hash is in ``shared`` and repeats of a line inside the text.

    ``hashes`` are ``line_hashes(text)``. Returns the new text and its number of lines.
    """
    seen: set[bytes] = set()
    kept: list[str] = []
    for line, digest in zip(text.split("\n"), hashes, strict=True):
        if digest not in shared and digest not in seen:
            kept.append(line)
        seen.add(digest)
    return "\n".join(kept), len(kept)


def first_by_order(items: Iterable[tuple[str, object]]) -> tuple[str, object]:
    """The item with the lowest order key: "keep first" never depends on worker order."""
    return min(items, key=lambda item: item[0])


def keep_first_step(name: str, key, reason: str, description: str):
    """A step keeping, of the records that share ``key(record)``, the first by order key."""
    from redpajama.core.records import KeepFirstStep

    return KeepFirstStep(name=name, key=key, reason=reason, description=description)
