"""Local spill files: bulky values wait on disk while only a small reference travels through a
shuffle (local runs keep every shuffle in memory; a folder all workers share holds the files).

A :class:`SpillWriter` appends values to one file of its own (opened on first use, unbuffered,
so every reference it returned can be read at once); a :class:`SpillReader` reads them back.
The run removes the folder when it ends.
"""

from __future__ import annotations

import os
import pickle
import posixpath
import uuid
from typing import Any, NamedTuple


class Spilled(NamedTuple):
    """Where a spilled value's bytes are."""

    path: str
    offset: int
    length: int


class SpillWriter:
    def __init__(self, folder: str):
        self.folder = folder
        self._handle = None
        self._path = ""
        self._offset = 0

    def put(self, data: bytes) -> Spilled:
        if self._handle is None:
            os.makedirs(self.folder, exist_ok=True)
            self._path = posixpath.join(self.folder, uuid.uuid4().hex)
            self._handle = open(self._path, "wb", buffering=0)  # noqa: SIM115 - kept open across values
            self._offset = 0
        view = memoryview(data)
        while view:
            view = view[self._handle.write(view):]
        spilled = Spilled(self._path, self._offset, len(data))
        self._offset += len(data)
        return spilled

    def put_object(self, value: Any) -> Spilled:
        return self.put(pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL))

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None


class SpillReader:
    """Spilled values read back by reference (a :class:`Spilled` or a plain ``(path, offset,
    length)`` tuple, as a shuffle may deliver it); values that are not references pass through."""

    MAX_OPEN = 256

    def __init__(self):
        self.handles: dict[str, Any] = {}

    def read(self, value) -> Any:
        if not isinstance(value, tuple):
            return value
        path, offset, length = value
        handle = self.handles.get(path)
        if handle is None:
            if len(self.handles) >= self.MAX_OPEN:
                self.close()
            handle = self.handles[path] = open(path, "rb")  # noqa: SIM115 - kept open across values
        data = os.pread(handle.fileno(), length, offset)
        if len(data) != length:
            raise OSError(f"spill file {path} ended at {offset + len(data)}, before {offset + length}")
        return data

    def read_object(self, value) -> Any:
        return pickle.loads(self.read(value)) if isinstance(value, tuple) else value

    def close(self) -> None:
        for handle in self.handles.values():
            handle.close()
        self.handles = {}
