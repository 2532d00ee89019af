"""Where inputs live: local paths, any Beam filesystem (gs://, s3://), http(s).

Readers get a binary stream over a byte range of the raw file (decompression is
:mod:`redpajama.core.streams`'). HTTP reads use Range requests and retry with backoff, so a
huge dump can be read by many workers without downloading it whole. Paths with a scheme
other than http(s) go through the file systems that :func:`use_filesystems` installed (the
pipelines layer installs Beam's, for every path, when it is imported); without them, local
paths are read with the standard library.
"""

from __future__ import annotations

import glob
import io
import os
import posixpath
import stat
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO, Protocol

import requests
from redpajama.core.errors import NotRegularFile, SourceError

HTTP_RETRIES = 5
HTTP_TIMEOUT = 60
READ_CHUNK = 1 << 20


@dataclass(frozen=True)
class FileInfo:
    """One file a pattern matched."""

    path: str
    size: int
    mtime: float


class FileSystems(Protocol):
    """What this module needs from a file system: Beam's ``FileSystems`` adapted, or the local one."""

    def exists(self, path: str) -> bool: ...

    def match(self, pattern: str) -> list[FileInfo]: ...

    def open(self, path: str) -> BinaryIO: ...


class LocalFiles:
    """Local paths through the standard library (used until another file system is installed)."""

    def exists(self, path: str) -> bool:
        return os.path.exists(_local(path))

    def match(self, pattern: str) -> list[FileInfo]:
        paths = glob.glob(_local(pattern)) if glob.has_magic(pattern) else [_local(pattern)]
        return [FileInfo(path, info.st_size, info.st_mtime) for path in paths
                if os.path.isfile(path) and (info := os.stat(path))]

    def open(self, path: str) -> BinaryIO:
        return open(_local(path), "rb")


def _local(path: str) -> str:
    if "://" in path:
        raise SourceError(f"{path}: no file system for this scheme is installed (import redpajama.pipelines)")
    return path


_FILESYSTEMS: list[FileSystems] = [LocalFiles()]


def use_filesystems(filesystems: FileSystems) -> None:
    """Read every non-HTTP path through ``filesystems`` from now on."""
    _FILESYSTEMS[0] = filesystems


def filesystems() -> FileSystems:
    return _FILESYSTEMS[0]


def is_url(path: str) -> bool:
    return path.startswith(("http://", "https://"))


def exists(path: str) -> bool:
    if is_url(path):
        try:
            return _http_session().head(path, timeout=HTTP_TIMEOUT, allow_redirects=True).ok
        except requests.RequestException:
            return False
    return filesystems().exists(path)


def size(path: str) -> int:
    """Size in bytes of a file or URL."""
    if is_url(path):
        response = _http_session().head(path, timeout=HTTP_TIMEOUT, allow_redirects=True)
        if not response.ok or "Content-Length" not in response.headers:
            raise SourceError(f"cannot size {path}: HTTP {response.status_code}")
        return int(response.headers["Content-Length"])
    matches = filesystems().match(path)
    if not matches:
        raise SourceError(f"no such file: {path}")
    return matches[0].size


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
        matched = filesystems().match(path)
        return ";".join(f"{m.size}:{m.mtime}" for m in matched) or "missing"
    except (OSError, requests.RequestException, Exception) as error:  # an input that is gone fails the run later
        return f"unreadable: {type(error).__name__}"


def expand(pattern: str) -> list[str]:
    """The files a path or glob names, sorted; URLs are returned as they are."""
    if is_url(pattern):
        return [pattern]
    return sorted(m.path for m in filesystems().match(pattern))


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
        raw = filesystems().open(path)
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


def _check_regular(path: str) -> None:
    try:
        mode = os.stat(path).st_mode
    except OSError as error:
        raise SourceError(f"cannot open {path}: {error}") from error
    if not stat.S_ISREG(mode):
        raise NotRegularFile(f"{path} is not a regular file (a FIFO, device or socket is never read)")


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
            os.unlink(self._temporary)
