"""Where inputs live: local paths, any Beam filesystem (gs://, s3://), http(s).

Readers get a binary stream over a byte range of the raw file (decompression is
:mod:`redpajama.core.streams`'). HTTP reads use Range requests, so a huge dump can be read by
many workers without downloading it whole, and every HTTP input ends (:class:`HttpPolicy`):
retries are bounded and back off, and bytes must keep coming. Paths with a scheme
other than http(s) go through the file systems that :func:`use_filesystems` installed (the
Beam executor installs Beam's, for every path, when it is imported; the command line without
Beam installs them when such a path is first met); without them, local paths are read and
written with the standard library. Outputs are listed, written, renamed
and deleted here too (:func:`list_files`, :func:`create`, :func:`rename`, :func:`delete`).
"""

from __future__ import annotations

import glob
import hashlib
import http.client
import io
import os
import posixpath
import re
import stat
import threading
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import BinaryIO, Protocol

import requests
import urllib3
from redpajama.core import s3
from redpajama.core.errors import LimitExceeded, NotRegularFile, SourceError
from redpajama.core.http_deadline import deadline, with_deadlines

HTTP_TIMEOUT = 60
READ_CHUNK = 1 << 20


@dataclass(frozen=True)
class HttpPolicy:
    """How long one HTTP input may take before it fails, counted, instead of holding its worker.

    A request that brings no new byte (refused, reset, a 5xx or 429, a body that ends early) is
    retried after ``backoff`` seconds, doubled for each next one up to ``max_backoff``; after
    ``attempts`` such requests in a row the input fails (``unreadable_input``). A request that
    brought bytes resumes at once from where it stopped. Connecting, the headers and each next
    byte may take ``stall_seconds``. Of the time spent waiting on the network (not the time the
    reader spends on what it got), each ``rate_window`` seconds must bring ``min_rate`` bytes a
    second, and one input may take ``max_seconds`` in all; else it fails as ``input_too_slow``.
    """

    attempts: int = 6
    backoff: float = 0.5
    max_backoff: float = 30.0
    stall_seconds: float = float(HTTP_TIMEOUT)
    min_rate: float = 4096.0
    rate_window: float = 120.0
    max_seconds: float = 6 * 3600.0


HTTP_POLICY = HttpPolicy()
_sleep = time.sleep


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

    def create(self, path: str) -> BinaryIO:
        """A new file (replacing one of that name), written as given: no compression is added."""
        ...

    def rename(self, source: str, target: str) -> None: ...

    def delete(self, path: str) -> None:
        """Delete the one file named ``path``, taken literally (never as a pattern)."""
        ...


class LocalFiles:
    """Local paths through the standard library (used until another file system is installed)."""

    def exists(self, path: str) -> bool:
        return os.path.exists(_local(path))

    def match(self, pattern: str) -> list[FileInfo]:
        """As Beam's local file system matches, so both list the same inputs: ``*`` and ``?``
        within a name, ``**`` across folders, hidden names and special files (FIFOs) included,
        broken links not, folders only when named without a wildcard; a pattern ending in a separator
        names the files directly in what it names, and one without a folder before its first
        wildcard matches nothing (:func:`expand` names the current folder)."""
        if pattern.endswith(("/", "\\")):
            pattern += "*"
        if not glob.has_magic(_local(pattern)):
            return [info for info in [_file_info(pattern)] if info]
        wanted = _pattern_regex(pattern)
        folder = os.path.dirname(_literal_prefix(pattern))
        found = (_file_info(path) for path in _walk(folder, _depth(pattern, folder)) if wanted.match(path))
        return [info for info in found if info]

    def open(self, path: str) -> BinaryIO:
        return open(_local(path), "rb")

    def create(self, path: str) -> BinaryIO:
        folder = os.path.dirname(_local(path))
        if folder:
            os.makedirs(folder, exist_ok=True)
        return open(path, "wb")

    def rename(self, source: str, target: str) -> None:
        os.rename(_local(source), _local(target))

    def delete(self, path: str) -> None:
        os.unlink(_local(path))


def _file_info(path: str) -> FileInfo | None:
    try:
        info = os.stat(path)
    except OSError:
        return None
    return FileInfo(path, info.st_size, info.st_mtime)


def _walk(folder: str, depth: int | None = None):
    """Every non-folder entry below ``folder``, at most ``depth`` folders down (links to folders not
    entered; none below ``""``)."""
    base = folder.rstrip("/").count("/")
    for root, folders, names in os.walk(folder):
        if depth is not None and root.rstrip("/").count("/") - base >= depth:
            folders.clear()
        for name in names:
            yield os.path.join(root, name)


def _depth(pattern: str, folder: str) -> int | None:
    """How many folders below ``folder`` the files ``pattern`` can match lie: as many as separators
    after it when only ``*`` (within a name) is wild; None (any) with ``**``, ``?`` or a set."""
    rest = pattern[len(folder):].lstrip("/")
    if "**" in rest or "?" in rest or "[" in rest:
        return None
    return rest.count("/")


def _literal_prefix(pattern: str) -> str:
    """The part of a pattern before its first wildcard."""
    return re.match(r"[^[*?]*", pattern).group(0)


_PATTERN_TOKEN = re.compile(r"\*\*|\*|\?|\[(?:!|(?!!))(?:\][^\]]*|[^\]]+)\]|[^*?\[]+|\[")


def _pattern_regex(pattern: str) -> re.Pattern:
    """Beam's pattern syntax: fnmatch's, except that ``*`` stays within a name and ``**`` does not."""
    parts = []
    for token in _PATTERN_TOKEN.findall(pattern):
        if token in ("**", "*", "?"):
            parts.append({"**": ".*", "*": r"[^/\\]*", "?": "."}[token])
        elif len(token) > 2 and token[0] == "[" and token[-1] == "]":
            body = token[1:-1].replace("\\", "\\\\")
            parts.append("[" + ("^" + body[1:] if body[0] == "!" else "\\" + body if body[0] == "^" else body) + "]")
        else:
            parts.append(re.escape(token))
    with warnings.catch_warnings():  # Python's regex warns of "[[]" (glob.escape's) as a possible nested set; it is not one
        warnings.simplefilter("ignore", FutureWarning)
        return re.compile("(?ms)" + "".join(parts) + r"\Z")


def _local(path: str) -> str:
    if "://" in path:
        raise SourceError(f"{path}: no file system for this scheme is installed (import redpajama.pipelines.beam)")
    return path


_FILESYSTEMS: list[FileSystems] = [LocalFiles()]
_INSTALL_ON_FIRST_SCHEME: list[Callable[[], None]] = []
_INSTALL_LOCK = threading.Lock()


def use_filesystems(filesystems: FileSystems) -> None:
    """Read every non-HTTP path through ``filesystems`` from now on."""
    _FILESYSTEMS[0] = filesystems
    _INSTALL_ON_FIRST_SCHEME.clear()


def use_filesystems_for_schemes(install: Callable[[], None]) -> None:
    """Call ``install`` (which calls :func:`use_filesystems`) when a path with a scheme other than
    http(s) is first met, not before: a command that needs other file systems only for such paths
    starts without loading them."""
    _INSTALL_ON_FIRST_SCHEME[:] = [install]


def filesystems() -> FileSystems:
    """The installed file systems, with requester-pays ``s3://`` paths read by :mod:`~redpajama.core.s3`."""
    return _RequesterPaysRouting()


def _installed(path: str) -> FileSystems:
    if is_url(path):  # read by open_range, sized by size, never through a file system
        raise SourceError(f"{path}: an http(s) address is read one file at a time; it cannot be listed or written")
    if path.startswith("file://"):  # no file system here (Beam's neither) reads these
        raise SourceError(f"{path}: give the local path, without file://")
    if "://" in path:
        with _INSTALL_LOCK:  # a second thread meeting such a path waits for the first's install
            if _INSTALL_ON_FIRST_SCHEME:
                _INSTALL_ON_FIRST_SCHEME[0]()  # its use_filesystems empties the list
    return _FILESYSTEMS[0]


class _RequesterPaysRouting:
    """Sends paths in requester-pays S3 buckets to :class:`~redpajama.core.s3.RequesterPaysFiles`."""

    def _for(self, path: str) -> FileSystems:
        return s3.RequesterPaysFiles() if s3.requester_pays(path) else _installed(path)

    def exists(self, path: str) -> bool:
        return self._for(path).exists(path)

    def match(self, pattern: str) -> list[FileInfo]:
        return self._for(pattern).match(pattern)

    def open(self, path: str) -> BinaryIO:
        return self._for(path).open(path)

    def create(self, path: str) -> BinaryIO:
        return _installed(path).create(path)

    def rename(self, source: str, target: str) -> None:
        _installed(source).rename(source, target)

    def delete(self, path: str) -> None:
        _installed(path).delete(path)

    def __getattr__(self, name: str):
        return getattr(_FILESYSTEMS[0], name)


def is_url(path: str) -> bool:
    return path.startswith(("http://", "https://"))


def join(*parts: str) -> str:
    """Join path parts, for local paths and URIs (``gs://``, ``s3://``) alike."""
    if "://" not in parts[0]:
        return posixpath.join(*parts)
    path = parts[0]
    for part in parts[1:]:
        path = path.rstrip("/") + "/" + part.lstrip("/")
    return path


def create(path: str) -> BinaryIO:
    """A new file at ``path`` (local folders are made), written as given."""
    return filesystems().create(path)


def rename(source: str, target: str) -> None:
    filesystems().rename(source, target)


def delete(path: str) -> None:
    """Delete one file (locally a link itself, never its target); the name is taken literally."""
    if "://" not in path:
        os.unlink(path)
    else:
        filesystems().delete(path)


def list_files(folder: str) -> list[str]:
    """Every file below ``folder``, sorted; the name is taken literally, never as a glob. Locally,
    links to folders are not entered."""
    if "://" not in folder:
        found = []
        for root, _, files in os.walk(folder):
            found += [posixpath.join(root, name) for name in files]
        return sorted(found)
    # Everything under the part of the name before any glob character, then exactly this folder.
    root = folder.rstrip("/") + "/"
    prefix = root[: min((root.find(char) for char in GLOB_CHARS if char in root), default=len(root))]
    return sorted(info.path for info in filesystems().match(prefix + "**") if info.path.startswith(root))


def exists(path: str) -> bool:
    if is_url(path):
        try:
            with deadline(time.monotonic() + HTTP_TIMEOUT):
                return _http_session().head(path, timeout=HTTP_TIMEOUT, allow_redirects=True).ok
        except requests.RequestException:
            return False
    return filesystems().exists(path)


def size(path: str) -> int:
    """Size in bytes of a file or URL."""
    if is_url(path):
        try:
            with deadline(time.monotonic() + HTTP_TIMEOUT):
                response = _http_session().head(path, timeout=HTTP_TIMEOUT, allow_redirects=True)
        except requests.RequestException as error:
            raise SourceError(f"cannot size {path}: {error}") from error
        if not response.ok or "Content-Length" not in response.headers:
            raise SourceError(f"cannot size {path}: HTTP {response.status_code}")
        return int(response.headers["Content-Length"])
    matches = filesystems().match(path)
    if not matches:
        raise SourceError(f"no such file: {path}")
    return matches[0].size


STATE_TRIES = 4  # a stat request that fails for a passing reason is tried again, with doubling back-off
STATE_BACKOFF = 0.5


class _PassingError(Exception):
    """A stat request failed for a reason that may pass (HTTP 5xx or 429, a dropped connection)."""


def input_states(paths: list[str], threads: int = 16) -> list[str | None]:
    """What each input is now: size and modification time (a URL's ETag, size and date; a
    folder's, every entry below it).

    A finished run is reused only while these match, so replacing an input with other bytes
    (a truncated download with the good file) makes the rerun do the work again. A state that
    cannot be read (a server error that outlasts the retries) is ``None``, never the error:
    an unknown state matches nothing, so a later run neither trusts nor refuses it.
    """
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(threads) as pool:
        return list(pool.map(_state, paths))


def _state(path: str) -> str | None:
    for attempt in range(STATE_TRIES):
        try:
            return _read_state(path)
        except _PassingError:
            if attempt + 1 < STATE_TRIES:
                time.sleep(STATE_BACKOFF * 2**attempt)
    return None


def _read_state(path: str) -> str:
    """The state of one input, or :class:`_PassingError`; a missing input's state is that it is missing."""
    if is_url(path):
        try:
            with deadline(time.monotonic() + HTTP_TIMEOUT):  # headers a byte at a time never hold the launch
                response = _http_session().head(path, timeout=HTTP_TIMEOUT, allow_redirects=True)
        except requests.RequestException as error:
            raise _PassingError(str(error)) from error
        if response.status_code >= 500 or response.status_code == 429:
            raise _PassingError(f"HTTP {response.status_code}")
        headers = response.headers
        return f"{response.status_code}:{headers.get('ETag', '')}:{headers.get('Content-Length', '')}:" \
               f"{headers.get('Last-Modified', '')}"
    if "://" not in path:
        try:
            info = os.stat(path)
        except (FileNotFoundError, NotADirectoryError):
            return "missing"
        except OSError as error:
            raise _PassingError(str(error)) from error
        if stat.S_ISDIR(info.st_mode):
            return _tree_state(path)
        return f"{info.st_size}:{info.st_mtime_ns}"
    try:
        matched = filesystems().match(path)
    except Exception as error:  # a file system's own error type (Beam wraps them in BeamIOError)
        raise _PassingError(str(error)) from error
    return ";".join(f"{m.size}:{m.mtime}" for m in matched) or "missing"


def _tree_state(folder: str) -> str:
    """A folder input's state (a repository, a paper): every entry below it by name, kind, size
    and modification time, links not followed. A file edited inside changes it, which the
    folder's own size and time (they change only when its direct entries do) would not."""
    digest = hashlib.blake2b(digest_size=16)
    entries = 0
    for root, dirs, files in os.walk(folder):
        dirs.sort()
        for name in sorted(dirs + files):
            path = os.path.join(root, name)
            try:
                info = os.lstat(path)
            except OSError:
                continue
            entries += 1
            relative = os.path.relpath(path, folder)
            digest.update(f"{relative}\0{stat.S_IFMT(info.st_mode)}:{info.st_size}:{info.st_mtime_ns}\n"
                          .encode("utf-8", "surrogateescape"))
    return f"tree:{entries}:{digest.hexdigest()}"


def expand(pattern: str, folders: bool = False) -> list[str]:
    """The files a path or glob names, sorted; URLs are returned as they are.

    A local folder, with or without a trailing slash, is the folder itself when ``folders`` (a
    slice whose unit is a folder: a repository, a paper) and otherwise the files directly in it.
    A file named with glob characters is itself, as workers expand the files a launcher listed.
    """
    if is_url(pattern):
        return [pattern]
    if "://" not in pattern and os.path.isdir(pattern):  # a folder that exists is meant literally
        folder = pattern.rstrip("/") or "/"
        if folders:
            return [folder]
        pattern = glob.escape(folder) + "/*"
    elif "://" not in pattern and glob.has_magic(pattern) and os.path.exists(pattern):  # a local file named with glob characters
        return [pattern]
    if "://" not in pattern and not os.path.dirname(_literal_prefix(pattern)):  # Beam matches nothing from no folder
        return sorted(m.path.removeprefix("./") for m in filesystems().match("./" + pattern))
    return sorted(m.path for m in filesystems().match(pattern))


GLOB_CHARS = "*?["


def input_root(argument: str) -> str:
    """The folder an input argument names files from: itself for a folder, the part of a glob
    before its first wildcard ("" for the current folder), a file's folder (URLs alike); a folder
    or file named with glob characters is itself, as :func:`expand` takes it."""
    argument = argument.rstrip("/") if argument not in ("/", "") else argument
    if not is_url(argument) and "://" not in argument and os.path.isdir(argument):  # its name taken literally
        return argument
    wild = min((argument.find(c) for c in GLOB_CHARS if c in argument), default=-1)
    if wild >= 0 and not ("://" not in argument and os.path.exists(argument)):
        folder = argument[: argument.rfind("/", 0, wild) + 1]
        return folder.rstrip("/") or folder  # "" for a relative glob with no folder: the current one
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
        _SESSION = with_deadlines(requests.Session())
        _SESSION.headers["User-Agent"] = "redpajama-data-pipeline (+https://pypi.org/project/redpajama)"
    return _SESSION


class _HttpRangeStream(io.RawIOBase):
    """Streams bytes ``[start, end)`` of a URL, resuming with a Range request after a dropped
    connection, within the limits of :class:`HttpPolicy` (``HTTP_POLICY`` when it is made)."""

    def __init__(self, url: str, start: int, end: int | None, policy: HttpPolicy | None = None):
        self._url = url
        self._position = start
        self._end = end  # None: to the end of the file, whose size the first reply may tell
        self._policy = policy or HTTP_POLICY
        self._response: requests.Response | None = None
        self._encoded = False
        self._received = 0  # bytes the current response brought
        self._pending = b""
        self._failures = 0  # requests in a row that brought no byte
        self._waited = 0.0  # seconds spent on the network: connecting, waiting for bytes, backing off
        self._window = [0.0, 0]  # the current rate window: seconds waited, bytes received

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        while not self._pending:
            if self._end is not None and self._position >= self._end:
                return 0
            piece = self._next_piece()
            if not piece:
                return 0
            self._pending = piece
        size = len(buffer)
        if self._end is not None:
            size = min(size, self._end - self._position)
        data, self._pending = self._pending[:size], self._pending[size:]
        buffer[: len(data)] = data
        self._position += len(data)
        return len(data)

    def close(self) -> None:
        self._close_response()
        super().close()

    def _next_piece(self) -> bytes:
        """The next bytes from the network (b"": the input ended where it should)."""
        while True:
            if self._response is None:
                if not self._connect():
                    continue
            started = time.monotonic()
            error: Exception | None = None
            try:
                with deadline(started + self._policy.stall_seconds):
                    piece = self._response.raw.read1(READ_CHUNK, decode_content=self._encoded)
            except (requests.RequestException, urllib3.exceptions.HTTPError, http.client.HTTPException, OSError) as failed:
                piece, error = b"", failed
            self._spent(time.monotonic() - started, len(piece))
            if piece:
                self._received += len(piece)
                return piece
            if error is None:
                if self._end is None or self._position >= self._end:
                    self._close_response()
                    return b""
                error = SourceError(f"the response ended at byte {self._position} of {self._end}")
            self._retry(error)

    def _connect(self) -> bool:
        """Open a response at the current position; False when the attempt failed (and was waited for)."""
        headers = {"Accept-Encoding": "identity"}  # byte offsets are the file's, never a compressed form's
        if self._position or self._end is not None:
            last = "" if self._end is None else str(self._end - 1)
            headers["Range"] = f"bytes={self._position}-{last}"
        started = time.monotonic()
        stall = self._policy.stall_seconds
        try:
            with deadline(started + stall):
                response = _http_session().get(self._url, headers=headers, stream=True, timeout=(stall, stall))
        except requests.RequestException as error:
            self._spent(time.monotonic() - started, 0)
            self._retry(error)
            return False
        self._spent(time.monotonic() - started, 0)
        status = response.status_code
        if status in (200, 206):
            if "Range" in headers and status == 200:
                response.close()
                raise SourceError(f"{self._url}: server ignored the Range request")
            first = _first_byte(response) if status == 206 else None
            if first is not None and first != self._position:
                response.close()
                raise SourceError(f"{self._url}: asked for bytes from {self._position}, the server sent them "
                                  f"from {first}")
            # a server that compresses anyway: its bytes are decoded, and its lengths are not the file's
            self._encoded = response.headers.get("Content-Encoding", "identity").lower() not in ("", "identity")
            if self._end is None and not self._encoded:
                self._end = _end_of(response, self._position)
            self._response, self._received = response, 0
            return True
        response.close()
        if status < 500 and status not in (408, 429):
            raise SourceError(f"{self._url}: HTTP {status}")
        self._retry(SourceError(f"HTTP {status}"))
        return False

    def _retry(self, error: Exception) -> None:
        """After a request failed or ended early: go on at once if it brought bytes, else wait
        (longer each time) or give up."""
        progressed = self._response is not None and self._received > 0
        self._close_response()
        if progressed:
            self._failures = 0
            return
        self._failures += 1
        if self._failures >= self._policy.attempts:
            raise SourceError(f"{self._url}: gave up after {self._failures} attempts without a byte, "
                              f"at byte {self._position}: {error}")
        wait = min(self._policy.max_backoff, self._policy.backoff * 2 ** (self._failures - 1))
        _sleep(wait)
        self._spent(wait, 0)

    def _spent(self, seconds: float, received: int) -> None:
        """Account time waited on the network; fail the input when bytes come too slowly."""
        policy = self._policy
        self._waited += seconds
        self._window[0] += seconds
        self._window[1] += received
        waited, got = self._window
        if waited >= policy.rate_window:
            if got < policy.min_rate * waited:
                self._close_response()
                raise LimitExceeded("input_too_slow", f"{self._url}: too slow, {got} bytes in {waited:.1f} s of "
                                    f"waiting (under {policy.min_rate:g} bytes/s), at byte {self._position}")
            self._window = [0.0, 0]
        if self._waited > policy.max_seconds:
            self._close_response()
            raise LimitExceeded("input_too_slow", f"{self._url}: too slow, still reading after {self._waited:.0f} s "
                                f"of waiting (at most {policy.max_seconds:g}), at byte {self._position}")

    def _close_response(self) -> None:
        if self._response is not None:
            self._response.close()
            self._response = None


def _first_byte(response: requests.Response) -> int | None:
    """Where a 206's ``Content-Range: bytes FIRST-LAST/TOTAL`` says its bytes start (None: not said)."""
    spec = response.headers.get("Content-Range", "").strip()
    unit, _, span = spec.partition(" ")
    first = span.partition("-")[0].strip()
    return int(first) if unit.lower() == "bytes" and first.isdigit() else None


def _end_of(response: requests.Response, position: int) -> int | None:
    """Where the file ends, as a 200's Content-Length or a 206's Content-Range says (None: unknown)."""
    if response.status_code == 206:
        total = response.headers.get("Content-Range", "").rpartition("/")[2]
        return int(total) if total.isdigit() else None
    length = response.headers.get("Content-Length", "")
    return position + int(length) if length.isdigit() else None


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
