"""Stream one member out of an untrusted ``.7z`` archive without writing it to disk.

Nothing is extracted under the member's own name, so a name like ``../../x`` cannot
escape anywhere; such names are refused all the same. The declared size and the bytes
actually produced are both held to a cap, and so is the expansion over the archive's size
(``--max-expansion``), which stops decompression bombs early and in bounded memory.
"""

from __future__ import annotations

import os
import posixpath
import queue
import threading
from collections.abc import Callable, Iterator

import py7zr
from py7zr.io import Py7zIO, WriterFactory
from redpajama.core.streams import DEFAULT_LIMITS, EXPANSION_FLOOR, Limits

QUEUE_CHUNKS = 32
PIECE = 1 << 20


class ArchiveError(ValueError):
    """The archive or one of its members cannot be read safely; ``reason`` is a short code."""

    def __init__(self, reason: str, detail: str):
        super().__init__(detail)
        self.reason = reason


def is_safe_member(name: str) -> bool:
    """A relative name with no ``..`` part and no drive or root."""
    normalized = name.replace("\\", "/")
    if normalized.startswith("/") or (len(normalized) > 1 and normalized[1] == ":"):
        return False
    return ".." not in posixpath.normpath(normalized).split("/") and ".." not in normalized.split("/")


def members(path: str) -> list[tuple[str, int]]:
    """``(name, uncompressed size)`` of every file in the archive."""
    try:
        with py7zr.SevenZipFile(path, mode="r") as archive:
            return [(info.filename, info.uncompressed or 0) for info in archive.list() if not info.is_directory]
    except (py7zr.Bad7zFile, EOFError, OSError, KeyError, ValueError) as error:
        raise ArchiveError("corrupt_archive", f"{type(error).__name__}: {error}") from error


class _Cancelled(Exception):
    pass


class _QueueWriter(Py7zIO):
    """Hands py7zr's output to the reading thread in pieces of at most ``PIECE`` bytes (py7zr
    writes up to 128 MB at a time), holding the member to its caps as it grows."""

    def __init__(self, sink: queue.Queue, limit: int, budget: int, cancelled: threading.Event):
        self._sink = sink
        self._limit = limit
        self._budget = budget
        self._written = 0
        self._cancelled = cancelled

    def write(self, data) -> int:
        view = memoryview(data)
        for start in range(0, len(view), PIECE):
            if self._cancelled.is_set():
                raise _Cancelled()
            piece = bytes(view[start : start + PIECE])
            self._written += len(piece)
            if self._written > self._limit:
                raise ArchiveError("member_too_large", f"member grows past the cap of {self._limit} bytes")
            if self._written > self._budget:
                raise ArchiveError("decompression_bomb", f"member expands past {self._budget >> 20} MB "
                                   "(--max-expansion times the archive's size)")
            self._sink.put(piece)
        return len(data)

    def read(self, size=None) -> bytes:
        return b""

    def seek(self, offset: int, whence: int = 0) -> int:
        return 0

    def flush(self) -> None:
        pass

    def size(self) -> int:
        return self._written

    def close(self) -> None:
        pass


class _QueueFactory(WriterFactory):
    def __init__(self, sink: queue.Queue, limit: int, budget: int, cancelled: threading.Event):
        self._writer = _QueueWriter(sink, limit, budget, cancelled)

    def create(self, filename: str) -> Py7zIO:
        return self._writer


def stream_member(path: str, wanted: Callable[[str], bool], max_bytes: int,
                  limits: Limits = DEFAULT_LIMITS) -> Iterator[tuple[str, Iterator[bytes]]]:
    """Yield ``(name, chunks)`` for each safe member ``wanted`` accepts, one at a time.

    Unsafe names raise :class:`ArchiveError` (``unsafe_member``) after the safe members
    have been streamed, so good data is not held hostage by a bad entry. A member that
    expands past ``limits.max_expansion`` times the archive's size (once past
    ``EXPANSION_FLOOR``) raises ``decompression_bomb`` after the bytes before it.
    """
    budget = max(EXPANSION_FLOOR, int(os.path.getsize(path) * limits.max_expansion))
    unsafe = []
    for name, declared in members(path):
        if not wanted(name):
            continue
        if not is_safe_member(name):
            unsafe.append(name)
            continue
        if declared > max_bytes:
            raise ArchiveError("member_too_large", f"{name} declares {declared} bytes, cap is {max_bytes}")
        yield name, _chunks(path, name, max_bytes, budget)
    if unsafe:
        raise ArchiveError("unsafe_member", f"refused member names that leave the archive: {unsafe}")


def _chunks(path: str, name: str, max_bytes: int, budget: int) -> Iterator[bytes]:
    sink: queue.Queue = queue.Queue(maxsize=QUEUE_CHUNKS)
    cancelled = threading.Event()
    done = object()
    errors: list[BaseException] = []

    def produce() -> None:
        try:
            with py7zr.SevenZipFile(path, mode="r") as archive:
                archive.extract(targets=[name], factory=_QueueFactory(sink, max_bytes, budget, cancelled))
        except _Cancelled:
            pass
        except BaseException as error:  # handed to the consumer below
            errors.append(error)
        finally:
            while True:
                try:
                    sink.put(done, timeout=0.1)
                    break
                except queue.Full:
                    if cancelled.is_set():
                        try:
                            sink.get_nowait()
                        except queue.Empty:
                            pass

    worker = threading.Thread(target=produce, name=f"7z:{name}", daemon=True)
    worker.start()
    try:
        while (chunk := sink.get()) is not done:
            yield chunk
    finally:
        cancelled.set()
        while worker.is_alive():
            try:
                sink.get(timeout=0.1)
            except queue.Empty:
                pass
        worker.join()
    if errors:
        error = errors[0]
        if isinstance(error, ArchiveError):
            raise error
        raise ArchiveError("corrupt_archive", f"{type(error).__name__}: {error}") from error
