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
import time
from collections.abc import Iterable, Iterator
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


def open_range(path: str, start: int = 0, end: int | None = None) -> BinaryIO:
    """A binary stream over bytes ``[start, end)`` of ``path`` (``end=None``: to the end)."""
    if is_url(path):
        return _HttpRangeStream(path, start, end)
    try:
        raw = FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED)
    except (OSError, Exception) as error:  # Beam wraps filesystem errors in BeamIOError
        raise SourceError(f"cannot open {path}: {error}") from error
    if start:
        raw.seek(start)
    return raw if end is None else _Bounded(raw, end - start)


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


def iter_lines(chunks: Iterable[bytes]) -> Iterator[tuple[int, bytes]]:
    """``(byte offset, line)`` for each line of a chunked byte stream (newline removed)."""
    offset = 0
    pending = b""
    for chunk in chunks:
        pending += chunk
        lines = pending.split(b"\n")
        pending = lines.pop()
        for line in lines:
            yield offset, line
            offset += len(line) + 1
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


def _decompressor_factory(name: str):
    lower = name.lower()
    if lower.endswith(".bz2"):
        return bz2.BZ2Decompressor
    if lower.endswith(".xz"):
        return lzma.LZMADecompressor
    if lower.endswith(".gz"):
        import zlib

        return lambda: zlib.decompressobj(wbits=47)
    if lower.endswith(".zst"):
        return lambda: zstandard.ZstdDecompressor().decompressobj()
    return None


def decompressed_chunks(stream: BinaryIO, name: str, chunk_size: int = READ_CHUNK) -> Iterator[bytes]:
    """Decompressed bytes of ``stream`` as they become available (codec from ``name``).

    Concatenated streams (multistream bz2, multi-member gzip) are followed. Everything
    decodable before a truncation or corruption is yielded first; then ``EOFError`` (input
    ended mid-stream) or the codec's own error is raised.
    """
    factory = _decompressor_factory(name)
    if factory is None:
        yield from iter_chunks(stream, chunk_size)
        return
    decompressor, fed = factory(), False
    for raw in iter_chunks(stream, chunk_size):
        while raw:
            data = decompressor.decompress(raw)
            fed = True
            if data:
                yield data
            if not decompressor.eof:
                break
            raw = decompressor.unused_data  # the next stream of a concatenation, if any
            decompressor, fed = factory(), False
    if fed and not decompressor.eof:
        raise EOFError(f"{name}: compressed input ended before the end of the stream")
