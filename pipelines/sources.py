"""Open inputs wherever they live: local paths, any Beam filesystem (gs://, s3://), http(s).

Readers get a binary stream over a byte range of the raw file and, separately, a
decompressing view chosen from the file name. HTTP reads use Range requests and retry
with backoff, so a huge dump can be read by many workers without downloading it whole.
"""

from __future__ import annotations

import bz2
import codecs
import io
import lzma
import os
import posixpath
import stat
import threading
import time
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import BinaryIO

import requests
import zstandard
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

HTTP_RETRIES = 5
HTTP_TIMEOUT = 60
READ_CHUNK = 1 << 20


class SourceError(Exception):
    """An input could not be opened or read (missing, unreachable, unreadable)."""


def is_url(path: str) -> bool:
    return path.startswith(("http://", "https://"))


def exists(path: str) -> bool:
    if is_url(path):
        try:
            return _http_session().head(path, timeout=HTTP_TIMEOUT, allow_redirects=True).ok
        except requests.RequestException:
            return False
    return FileSystems.exists(path)


def size(path: str) -> int:
    """Size in bytes of a file or URL."""
    if is_url(path):
        response = _http_session().head(path, timeout=HTTP_TIMEOUT, allow_redirects=True)
        if not response.ok or "Content-Length" not in response.headers:
            raise SourceError(f"cannot size {path}: HTTP {response.status_code}")
        return int(response.headers["Content-Length"])
    matches = FileSystems.match([path])[0].metadata_list
    if not matches:
        raise SourceError(f"no such file: {path}")
    return matches[0].size_in_bytes


def input_states(paths: list[str], threads: int = 16) -> list[str]:
    """What each input is now: size and modification time (a URL's ETag, size and date).

    A finished run is reused only while these match, so replacing an input with other bytes
    (a truncated download with the good file) makes the rerun do the work again.
    """
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(threads) as pool:
        return list(pool.map(_state, paths))


def _state(path: str) -> str:
    try:
        if is_url(path):
            response = _http_session().head(path, timeout=HTTP_TIMEOUT, allow_redirects=True)
            headers = response.headers
            return f"{response.status_code}:{headers.get('ETag', '')}:{headers.get('Content-Length', '')}:" \
                   f"{headers.get('Last-Modified', '')}"
        if "://" not in path:
            info = os.stat(path)
            return f"{info.st_size}:{info.st_mtime_ns}"
        matched = FileSystems.match([path])[0].metadata_list
        return ";".join(f"{m.size_in_bytes}:{m.last_updated_in_seconds}" for m in matched) or "missing"
    except (OSError, requests.RequestException, Exception) as error:  # an input that is gone fails the run later
        return f"unreadable: {type(error).__name__}"


def expand(pattern: str) -> list[str]:
    """The files a path or glob names, sorted; URLs are returned as they are."""
    if is_url(pattern):
        return [pattern]
    result = FileSystems.match([pattern])[0]
    return sorted(m.path for m in result.metadata_list)


GLOB_CHARS = "*?["


def input_root(argument: str) -> str:
    """The folder an input argument names files from: itself for a folder, the part of a glob
    before its first wildcard, a file's folder (URLs alike)."""
    argument = argument.rstrip("/") if argument not in ("/", "") else argument
    wild = min((argument.find(c) for c in GLOB_CHARS if c in argument), default=-1)
    if wild >= 0:
        return argument[: argument.rfind("/", 0, wild) + 1].rstrip("/") or "/"
    if not is_url(argument) and "://" not in argument and os.path.isdir(argument):
        return argument
    return posixpath.dirname(argument)


BYTES_READ: dict[int, int] = {}  # thread -> raw input bytes read by it (progress lines)


def open_range(path: str, start: int = 0, end: int | None = None) -> BinaryIO:
    """A binary stream over bytes ``[start, end)`` of ``path`` (``end=None``: to the end)."""
    if is_url(path):
        return _Counted(_HttpRangeStream(path, start, end))
    if "://" not in path:
        _check_regular(path)
    try:
        raw = FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED)
    except (OSError, Exception) as error:  # Beam wraps filesystem errors in BeamIOError
        raise SourceError(f"cannot open {path}: {error}") from error
    if start:
        raw.seek(start)
    return _Counted(raw if end is None else _Bounded(raw, end - start))


class _Counted:
    """A stream that adds what is read from it to ``BYTES_READ`` of the reading thread."""

    def __init__(self, stream):
        self._stream = stream

    def read(self, *args) -> bytes:
        data = self._stream.read(*args)
        ident = threading.get_ident()
        BYTES_READ[ident] = BYTES_READ.get(ident, 0) + len(data)
        return data

    def readinto(self, buffer) -> int:
        size = self._stream.readinto(buffer)
        ident = threading.get_ident()
        BYTES_READ[ident] = BYTES_READ.get(ident, 0) + (size or 0)
        return size

    def __getattr__(self, name):
        return getattr(self._stream, name)

    def __iter__(self):
        return iter(self._stream)

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self._stream.close()


class NotRegularFile(SourceError):
    """A FIFO, device or socket: reading it could block forever, so it is never opened."""

    reason = "not_regular_file"


def _check_regular(path: str) -> None:
    try:
        mode = os.stat(path).st_mode
    except OSError as error:
        raise SourceError(f"cannot open {path}: {error}") from error
    if not stat.S_ISREG(mode):
        raise NotRegularFile(f"{path} is not a regular file (a FIFO, device or socket is never read)")


def failure_reason(error: SourceError) -> str:
    """The stable failure code of an input error."""
    return getattr(error, "reason", None) or "unreadable_input"


def iter_chunks(stream: BinaryIO, chunk_size: int = READ_CHUNK) -> Iterator[bytes]:
    while chunk := stream.read(chunk_size):
        yield chunk


class _Bounded(io.RawIOBase):
    """At most ``limit`` bytes of an underlying stream."""

    def __init__(self, raw: BinaryIO, limit: int):
        self._raw = raw
        self._left = limit

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        if self._left <= 0:
            return 0
        data = self._raw.read(min(len(buffer), self._left))
        buffer[: len(data)] = data
        self._left -= len(data)
        return len(data)

    def close(self) -> None:
        self._raw.close()
        super().close()


_SESSION: requests.Session | None = None


def _http_session() -> requests.Session:
    global _SESSION
    if _SESSION is None:
        _SESSION = requests.Session()
        _SESSION.headers["User-Agent"] = "redpajama-data-pipeline (+https://pypi.org/project/redpajama)"
    return _SESSION


class _HttpRangeStream(io.RawIOBase):
    """Streams bytes of a URL, resuming with a Range request after a dropped connection."""

    def __init__(self, url: str, start: int, end: int | None):
        self._url = url
        self._position = start
        self._end = end
        self._body: Iterator[bytes] | None = None
        self._pending = b""

    def readable(self) -> bool:
        return True

    def _connect(self) -> None:
        last_error: Exception | None = None
        for attempt in range(HTTP_RETRIES):
            headers = {}
            if self._position or self._end is not None:
                last = "" if self._end is None else str(self._end - 1)
                headers["Range"] = f"bytes={self._position}-{last}"
            try:
                response = _http_session().get(
                    self._url, headers=headers, stream=True, timeout=HTTP_TIMEOUT
                )
                if response.status_code in (200, 206):
                    if headers and response.status_code == 200:
                        raise SourceError(f"{self._url}: server ignored the Range request")
                    self._body = response.iter_content(READ_CHUNK)
                    return
                if response.status_code < 500 and response.status_code != 429:
                    raise SourceError(f"{self._url}: HTTP {response.status_code}")
                last_error = SourceError(f"{self._url}: HTTP {response.status_code}")
            except requests.RequestException as error:
                last_error = error
            time.sleep(min(30.0, 0.5 * 2**attempt))
        raise SourceError(f"{self._url}: gave up after {HTTP_RETRIES} attempts: {last_error}")

    def readinto(self, buffer) -> int:
        if self._end is not None and self._position >= self._end:
            return 0
        while not self._pending:
            if self._body is None:
                self._connect()
            try:
                self._pending = next(self._body)
            except StopIteration:
                return 0
            except requests.RequestException:
                self._body = None  # dropped mid-body: reconnect from the current position
        size = len(buffer)
        if self._end is not None:
            size = min(size, self._end - self._position)
        data, self._pending = self._pending[:size], self._pending[size:]
        buffer[: len(data)] = data
        self._position += len(data)
        return len(data)


def utf8_chunks(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """Re-encode a byte stream as UTF-8 when it starts with a UTF-16 or UTF-8 byte-order mark."""
    chunks = iter(chunks)
    first = b""
    for chunk in chunks:
        first += chunk
        if len(first) >= 4:
            break
    if first.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        decoder = codecs.getincrementaldecoder("utf-16")(errors="strict")
        yield decoder.decode(first).encode("utf-8")
        for chunk in chunks:
            yield decoder.decode(chunk).encode("utf-8")
        yield decoder.decode(b"", final=True).encode("utf-8")
        return
    yield first.removeprefix(codecs.BOM_UTF8)
    yield from chunks


def iter_lines(chunks: Iterable[bytes], max_line: int | None = None) -> Iterator[tuple[int, bytes]]:
    """``(byte offset, line)`` for each line of a chunked byte stream (newline removed).

    A line longer than ``max_line`` bytes raises :class:`LimitExceeded` (``record_too_large``)
    before it is held whole.
    """
    offset = 0
    pending = b""
    for chunk in chunks:
        pending += chunk
        lines = pending.split(b"\n")
        pending = lines.pop()
        for line in lines:
            if max_line is not None and len(line) > max_line:
                raise LimitExceeded("record_too_large", f"line at byte {offset} is longer than {max_line >> 20} MB")
            yield offset, line
            offset += len(line) + 1
        if max_line is not None and len(pending) > max_line:
            raise LimitExceeded("record_too_large", f"line at byte {offset} is longer than {max_line >> 20} MB")
    if pending:
        yield offset, pending


class local_copy:
    """Context manager giving a local path for ``location``; remote files are downloaded
    to a temporary file (with the retries of :func:`open_range`) and removed afterwards."""

    def __init__(self, location: str, suffix: str = ""):
        self.location = location
        self.suffix = suffix
        self._temporary: str | None = None

    def __enter__(self) -> str:
        if "://" not in self.location:
            return self.location
        import shutil
        import tempfile

        with open_range(self.location) as stream, tempfile.NamedTemporaryFile(
            suffix=self.suffix, delete=False
        ) as handle:
            self._temporary = handle.name
            shutil.copyfileobj(stream, handle, READ_CHUNK)
        return self._temporary

    def __exit__(self, *exc) -> None:
        if self._temporary:
            import os

            os.unlink(self._temporary)


@dataclass(frozen=True)
class Limits:
    """What one input may expand to: a bomb fails its unit instead of the worker.

    ``max_record_bytes`` bounds one line, page or record; ``max_expansion`` the decompressed
    bytes per compressed byte over a whole input, once past ``EXPANSION_FLOOR`` (real text
    compresses 3-10x; zeros 1,000x and more).
    """

    max_record_bytes: int = 64 << 20
    max_expansion: float = 100.0


DEFAULT_LIMITS = Limits()
EXPANSION_FLOOR = 64 << 20
ZSTD_PIECE = 1 << 10  # zstd decompresses without an output bound: feed it this much at a time


class LimitExceeded(SourceError):
    """An input breaks a :class:`Limits` cap; ``reason`` is the failure's stable code."""

    def __init__(self, reason: str, detail: str):
        super().__init__(detail)
        self.reason = reason


class _Codec:
    """One compressed stream after another (multistream bz2, multi-member gzip), output bounded."""

    def __init__(self, name: str):
        lower = name.lower()
        self.kind = next((kind for kind in (".bz2", ".xz", ".gz", ".zst") if lower.endswith(kind)), None)
        self.decompressor = self._new()
        self.fed = False

    def _new(self):
        if self.kind == ".bz2":
            return bz2.BZ2Decompressor()
        if self.kind == ".xz":
            return lzma.LZMADecompressor()
        if self.kind == ".gz":
            return zlib.decompressobj(wbits=47)
        return zstandard.ZstdDecompressor().decompressobj()

    def feed(self, raw: bytes, limit: int) -> Iterator[bytes]:
        """Decompressed output of ``raw`` in pieces of at most about ``limit`` bytes."""
        if self.kind == ".zst":
            for start in range(0, len(raw), ZSTD_PIECE):
                yield from self._zstd(raw[start : start + ZSTD_PIECE])
            return
        while raw:
            self.fed = True
            if self.kind == ".gz":
                data = self.decompressor.decompress(raw, limit)
                raw = self.decompressor.unconsumed_tail
            else:
                data = self.decompressor.decompress(raw, limit)
                raw = b""
                while not self.decompressor.eof and not self.decompressor.needs_input:
                    if data:
                        yield data
                    data = self.decompressor.decompress(b"", limit)
            if data:
                yield data
            if self.decompressor.eof:  # zlib's unconsumed_tail then repeats unused_data: take it once
                raw = self.decompressor.unused_data if self.kind == ".gz" else self.decompressor.unused_data + raw
                self.decompressor, self.fed = self._new(), False

    def _zstd(self, raw: bytes) -> Iterator[bytes]:
        while raw:
            self.fed = True
            data = self.decompressor.decompress(raw)
            if data:
                yield data
            if not self.decompressor.eof:
                return
            raw = self.decompressor.unused_data
            self.decompressor, self.fed = self._new(), False

    @property
    def truncated(self) -> bool:
        return self.fed and not self.decompressor.eof


def is_compressed(name: str) -> bool:
    return name.lower().endswith((".bz2", ".xz", ".gz", ".zst"))


def decompressed_chunks(
    stream: BinaryIO, name: str, chunk_size: int = READ_CHUNK, limits: Limits = DEFAULT_LIMITS
) -> Iterator[bytes]:
    """Decompressed bytes of ``stream`` as they become available (codec from ``name``).

    Concatenated streams (multistream bz2, multi-member gzip) are followed. Output comes in
    bounded pieces, and an input that expands more than ``limits.max_expansion`` times raises
    :class:`LimitExceeded` (``decompression_bomb``). Everything decodable before a truncation
    or corruption is yielded first; then ``EOFError`` (input ended mid-stream) or the codec's
    own error is raised.
    """
    if not is_compressed(name):
        yield from iter_chunks(stream, chunk_size)
        return
    codec = _Codec(name)
    consumed = produced = 0
    for raw in iter_chunks(stream, chunk_size):
        consumed += len(raw)
        for data in codec.feed(raw, chunk_size):
            produced += len(data)
            if produced > EXPANSION_FLOOR and produced > consumed * limits.max_expansion:
                raise LimitExceeded(
                    "decompression_bomb",
                    f"{name}: {produced >> 20} MB from {consumed >> 10} KB, more than {limits.max_expansion:g}x",
                )
            yield data
    if codec.truncated:
        raise EOFError(f"{name}: compressed input ended before the end of the stream")
