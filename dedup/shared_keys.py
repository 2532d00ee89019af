"""Keys held by two or more records of a group, from one compact array pair per unit.

A unit (a file) gives two sorted arrays of 8-byte keys: those its records hold (each record's
keys counted once) and those two or more of its records hold. A group's pairs are counted in
a :class:`SharedKeyCounter`, whose memory is the group's distinct keys; a key is shared when two
or more records of the group hold it. Each unit then needs only the shared keys it holds.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
from redpajama.core.records import KEY_BYTES

KEYS = np.dtype("<u8")  # the bytes of a key, read the same on every machine
EMPTY = np.zeros(0, dtype=KEYS)


def as_keys(data: bytes) -> np.ndarray:
    """A packed key array (``ndarray.tobytes()``) back as an array."""
    return np.frombuffer(data, dtype=KEYS)


def record_keys(keys: Iterable[bytes]) -> bytes:
    """One record's keys, each once, packed (order does not matter)."""
    distinct = set(keys)
    packed = b"".join(distinct)
    if len(packed) != KEY_BYTES * len(distinct):
        raise ValueError(f"keys must be {KEY_BYTES} bytes each")
    return packed


def unit_keys(records: Iterable[bytes]) -> tuple[np.ndarray, np.ndarray]:
    """Packed keys of each record of a unit -> (keys held, keys held by two or more records), sorted."""
    keys, counts = np.unique(as_keys(b"".join(records)), return_counts=True)
    return keys, keys[counts > 1]


class SharedKeyCounter:
    """The keys held by two or more records, from the units' ``unit_keys`` arrays.

    Arrays are merged in batches (a batch as large as what was merged already), so adding
    ``n`` keys costs ``O(n log^2 n)`` and memory stays near the distinct keys plus one batch.
    """

    def __init__(self):
        self._seen = EMPTY  # every key held, sorted and distinct
        self._shared = [EMPTY]
        self._pending: list[np.ndarray] = []
        self._pending_size = 0

    def add(self, held: np.ndarray, shared: np.ndarray) -> None:
        self._pending.append(held)
        self._pending_size += len(held)
        if len(shared):
            self._shared.append(shared)
        if self._pending_size >= max(len(self._seen), 1 << 20):
            self._merge()

    def _merge(self) -> None:
        if not self._pending:
            return
        keys, counts = np.unique(np.concatenate([self._seen, *self._pending]), return_counts=True)
        self._seen = keys
        self._shared = [np.unique(np.concatenate([*self._shared, keys[counts > 1]]))]
        self._pending, self._pending_size = [], 0

    def distinct(self) -> int:
        self._merge()
        return len(self._seen)

    def shared(self) -> np.ndarray:
        """The shared keys, sorted."""
        self._merge()
        return self._shared[0]


def held_shared(held: np.ndarray, shared: np.ndarray) -> np.ndarray:
    """The keys of ``held`` that are in ``shared`` (both sorted and distinct)."""
    if not len(held) or not len(shared):
        return EMPTY
    places = np.minimum(np.searchsorted(shared, held), len(shared) - 1)
    return held[shared[places] == held]


def key_set(packed: bytes) -> set[bytes]:
    """Packed keys as a set of ``KEY_BYTES``-byte strings, as ``record_keys`` got them."""
    return {packed[i : i + KEY_BYTES] for i in range(0, len(packed), KEY_BYTES)}
