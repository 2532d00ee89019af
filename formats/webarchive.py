"""Reading WET and WARC files: the file cut into records' bytes, each parsed by
:mod:`redpajama.formats.warc_records` (warcio) into one raw document per ``conversion`` or ``response``.

Records are cut here, by their headers' Content-Length, in bounded memory, whatever the
packing: an uncompressed file, one gzip member per record (as CommonCrawl writes it), or
many records in one gzip member (a whole file gzipped at once). A gzip member is
decompressed here with its size bounded; a member larger than ``MEMBER_BLOCK`` is cut as
it streams, a smaller one once it has ended. In a member the file ends inside, the last
record is unverified (its checksum was never read): one ``truncated_archive`` stands for
it, so a cut file never yields a shortened or phantom record.

A record is taken only when its Content-Length is followed by the blank line that ends a
record. Anything else fails alone and reading resumes at the next ``WARC/1.x`` line: bytes
that are no record (``unreadable_record``), a wrong length (``invalid_content_length``),
headers without a length or a record cut short (``truncated_record``), a length past
``max_record_bytes`` (``record_too_large``: in a file that can be read at any offset, a
length that proves true is skipped whole, else reading resumes after the headers). Corrupt
compressed bytes fail their gzip member (``corrupt_member``), and reading resumes at the
next gzip header.
"""

from __future__ import annotations

import io
import re
import zlib
from collections.abc import Callable, Iterator
from typing import BinaryIO

from redpajama.core.errors import LimitExceeded
from redpajama.core.records import Failure
from redpajama.core.streams import EXPANSION_FLOOR, Limits
from redpajama.formats.warc_records import RawDocument, parse_record

GZIP_MAGIC = b"\x1f\x8b\x08"
WARC_LINE = re.compile(rb"\nWARC/1\.\d\r?\n")  # a record's first line, after the end of a line
RECORD_START = re.compile(rb"WARC/1\.\d\r?\n")
BLANKS = re.compile(rb"[ \t\r\n]*")
HEADERS_END = re.compile(rb"\r?\n\r?\n")
CONTENT_LENGTH = re.compile(rb"^content-length[ \t]*:[ \t]*(.*?)[ \t]*\r?$", re.IGNORECASE | re.MULTILINE)
RECORD_END = re.compile(rb"[ \t\r]*\n")
PROBE_END = re.compile(rb"\r?\n[ \t\r\n]*(?:WARC/1\.\d\r?\n|$)")  # a blank line, then a record or the end
RAW_CHUNK = 1 << 16
MEMBER_BLOCK = 16 << 20  # a member this large is streamed, not held (CC's records are far smaller)
MAX_HEADERS = 1 << 20  # a record's header block; more is no record

Opener = Callable[[int], BinaryIO]


def read_archive(open_at: Opener, source: str, limits: Limits = Limits()) -> Iterator[RawDocument | Failure | str]:
    """Documents of a WET/WARC file; a warcinfo's snapshot (``isPartOf``) is yielded as a str.

    ``open_at(offset)`` opens the file's raw bytes from ``offset``.
    """
    junk = _Junk(source)
    with open_at(0) as stream:
        raw = _Raw(stream)
        if raw.peek(3) == GZIP_MAGIC:
            yield from _gzip_members(raw, source, limits, junk)
        else:
            records = _Records(_Buffer(raw.read), source, limits, junk, reopen=open_at)
            try:
                yield from records.documents(lambda offset, index: (offset, 0), lambda offset: f"offset {offset}")
            finally:
                records.close()
    yield from junk.flush()


class _Raw:
    """A compressed byte stream with a position, look-ahead and push-back."""

    def __init__(self, stream: BinaryIO):
        self.stream = stream
        self.position = 0
        self.pending = b""

    def read(self, size: int = RAW_CHUNK) -> bytes:
        if self.pending:
            data, self.pending = self.pending[:size], self.pending[size:]
        else:
            data = self.stream.read(size)
        self.position += len(data)
        return data

    def unread(self, data: bytes) -> None:
        self.pending = data + self.pending
        self.position -= len(data)

    def peek(self, size: int) -> bytes:
        data = self.read(size)
        self.unread(data)
        return data


class _Buffer:
    """A forward byte stream read through a buffer that keeps what the cutter may go back to."""

    def __init__(self, read: Callable[[int], bytes] | None, base: int = 0, data: bytes = b""):
        self._read = read
        self.data = bytearray(data)
        self.start = base  # absolute offset of data[0]
        self.ended = read is None  # (all of it given as ``data``)

    @property
    def end(self) -> int:
        return self.start + len(self.data)

    def fill(self, until: int) -> bool:
        """Read until ``until`` is buffered; False if the input ends first."""
        while self.end < until:
            if self.ended:
                return False
            chunk = self._read(max(RAW_CHUNK, until - self.end))  # type: ignore[misc]
            if not chunk:
                self.ended = True
                return False
            self.data += chunk
        return True

    def forget(self, before: int) -> None:
        if before > self.start:
            del self.data[: before - self.start]
            self.start = before

    def slice(self, start: int, end: int) -> bytes:
        return bytes(self.data[start - self.start : end - self.start])

    def find(self, pattern: re.Pattern, start: int, end: int | None = None) -> re.Match | None:
        stop = len(self.data) if end is None else end - self.start
        return pattern.search(self.data, start - self.start, stop)


class _Junk:
    """Bytes that are no record, reported once per stretch (which may span gzip members)."""

    def __init__(self, source: str):
        self.source = source
        self.location: str | None = None

    def note(self, location: str) -> None:
        self.location = self.location or location

    def flush(self) -> Iterator[Failure]:
        if self.location is not None:
            yield Failure(self.source, self.location, "unreadable_record", "bytes that are no WARC record")
            self.location = None


class _Records:
    """Cuts one stream of uncompressed WARC bytes into records and parses each."""

    def __init__(self, buffer: _Buffer, source: str, limits: Limits, junk: _Junk, reopen: Opener | None = None):
        self.buffer = buffer
        self.source = source
        self.limits = limits
        self.junk = junk
        self.reopen = reopen  # a stream that opens at any offset: a record too long that proves whole is skipped
        self._reopened: BinaryIO | None = None

    def documents(self, place: Callable[[int, int], tuple[int, int]], where: Callable[[int], str],
                  cut_short: Callable[[], bool] | None = None) -> Iterator[RawDocument | Failure | str]:
        """Every record of the stream. ``place(offset, index)`` gives the offset and index a
        document reports, ``where(offset)`` a failure's location. When ``cut_short()`` says at
        the end that the stream was cut (a gzip member the file ends inside), its last record,
        whole or not, is unverified: one ``truncated_archive`` failure stands for it."""
        outcomes = self._outcomes(place, where)
        if cut_short is None:
            yield from outcomes
            return
        held: RawDocument | Failure | None = None
        for outcome in outcomes:
            if isinstance(outcome, RawDocument | Failure):
                if held is not None:
                    yield held
                held = outcome
            else:
                yield outcome
        if not cut_short():
            if held is not None:
                yield held
            return
        self.junk.location = None
        yield Failure(self.source, where(0), "truncated_archive", "the file ends inside a gzip member")

    def _outcomes(self, place: Callable[[int, int], tuple[int, int]],
                  where: Callable[[int], str]) -> Iterator[RawDocument | Failure | str]:
        position, index = self.buffer.start, 0
        while (start := self._next_record(position, where)) is not None:
            record, position = self._cut(start, where)
            if self.junk.location is not None:
                yield from self.junk.flush()
            if isinstance(record, Failure):
                yield record
                continue
            offset, number = place(start, index)
            index += 1
            parsed = parse_record(record, self.source, offset, number, self.limits, where(start))
            if parsed is not None:
                yield parsed

    def close(self) -> None:
        if self._reopened is not None:
            self._reopened.close()

    def _next_record(self, position: int, where: Callable[[int], str]) -> int | None:
        """The record at or after ``position``: blank lines are skipped; other bytes are junk up
        to the next ``WARC/1.x`` line."""
        buffer = self.buffer
        while True:
            buffer.forget(position)
            buffer.fill(position + 16)
            if RECORD_START.match(buffer.data, position - buffer.start):
                return position
            blank = BLANKS.match(buffer.data, position - buffer.start)
            position = buffer.start + blank.end()
            if position >= buffer.end:  # blank to the end of what is read
                if buffer.ended:
                    return None
                continue
            buffer.fill(position + 16)
            if RECORD_START.match(buffer.data, position - buffer.start):
                return position
            self.junk.note(where(position))
            found = self._resync(position)
            if found is None:
                return None
            position = found

    def _resync(self, after: int) -> int | None:
        """The start of the first ``WARC/1.x`` line after ``after``, holding little while searching."""
        buffer, search = self.buffer, after
        while True:
            found = buffer.find(WARC_LINE, search)
            if found is not None:
                return buffer.start + found.start() + 1
            search = max(search, buffer.end - 12)
            buffer.forget(search)
            if not buffer.fill(buffer.end + RAW_CHUNK):
                found = buffer.find(WARC_LINE, search)
                return None if found is None else buffer.start + found.start() + 1

    def _cut(self, start: int, located: Callable[[int], str]) -> tuple[bytes | Failure, int]:
        """The bytes of the record at ``start``, or the failure it is, and where reading goes on."""
        buffer = self.buffer
        where = located(start)
        header_end = self._header_end(start)
        if header_end is None:
            return self._fail(where, "truncated_record", "the record's headers end early", start)
        length = CONTENT_LENGTH.search(buffer.data, start - buffer.start, header_end - buffer.start)
        if length is None:
            return self._fail(where, "truncated_record", "no Content-Length: the record's headers end early", start)
        if not length.group(1).isdigit():
            return self._fail(where, "invalid_content_length", f"Content-Length {length.group(1)[:40]!r}", start)
        size = int(length.group(1))
        end = header_end + size
        if size > self.limits.max_record_bytes:
            return self._too_large(where, header_end, size)
        if not buffer.fill(end):
            return self._fail(where, "truncated_record", f"{end - buffer.end} of {size} bytes missing", header_end)
        if not self._ends_record(end):
            return self._fail(where, "invalid_content_length",
                              "the record is not followed by the blank line its Content-Length promises", header_end)
        return buffer.slice(start, end), end

    def _ends_record(self, end: int) -> bool:
        """Whether the rest of the line at ``end`` is blank (warcio's rule), or the input ends there."""
        buffer = self.buffer
        buffer.fill(end + 64)
        if RECORD_END.match(buffer.data, end - buffer.start):
            return True
        return buffer.ended and not buffer.slice(end, buffer.end).strip(b" \t\r")

    def _header_end(self, start: int) -> int | None:
        """The offset just past the blank line that ends the headers of the record at ``start``."""
        buffer, search = self.buffer, start
        while True:
            blank = buffer.find(HEADERS_END, search)
            if blank is not None:
                return buffer.start + blank.end()
            search = max(start, buffer.end - 4)
            if buffer.end - start > MAX_HEADERS or not buffer.fill(buffer.end + RAW_CHUNK):
                return None

    def _too_large(self, where: str, header_end: int, size: int) -> tuple[Failure, int]:
        """A record longer than ``max_record_bytes``: skipped whole where the file can be opened
        at its end and its length proves true there, else reading resumes after its headers."""
        failure = Failure(self.source, where, "record_too_large",
                          f"a record of {size >> 20} MB, longer than {self.limits.max_record_bytes >> 20} MB")
        end = header_end + size
        if self.reopen is not None:
            stream = self.reopen(end)  # (a file, or a member's bytes: a length past its end proves false)
            probe = stream.read(64)
            if PROBE_END.match(probe) and (len(probe) < 64 or probe.strip(b" \t\r\n")):
                self.close()
                self._reopened, self.buffer = stream, _Buffer(stream.read, end)
                self.buffer.data += probe
                return failure, end
            stream.close()
        return failure, self._resume(header_end)

    def _fail(self, where: str, reason: str, detail: str, resume_after: int) -> tuple[Failure, int]:
        return Failure(self.source, where, reason, detail), self._resume(resume_after)

    def _resume(self, after: int) -> int:
        found = self._resync(after)
        return self.buffer.end if found is None else found


def _single_record(data: bytes, limits: Limits) -> bytes | None:
    """The record a member holds when it holds exactly one whole record (CommonCrawl writes one
    per member), else None: then the member is cut as any stream is."""
    if not RECORD_START.match(data):
        return None
    headers = HEADERS_END.search(data)
    length = headers and CONTENT_LENGTH.search(data, 0, headers.end())
    if not length or not length.group(1).isdigit() or int(length.group(1)) > limits.max_record_bytes:
        return None
    end = headers.end() + int(length.group(1))
    return data[:end] if len(data) >= end and not data[end:].strip(b" \t\r\n") else None


def _gzip_members(raw: _Raw, source: str, limits: Limits, junk: _Junk) -> Iterator[RawDocument | Failure | str]:
    while raw.peek(1):
        member = _Member(raw, limits)
        where = f"offset {member.start}"

        def place(offset: int, index: int, start: int = member.start) -> tuple[int, int]:
            return start, index

        def located(offset: int, start: int = member.start) -> str:
            return f"offset {start}" if offset == 0 else f"offset {start} (+{offset} uncompressed)"

        try:
            chunks = member.chunks()
            pieces, size = [], 0
            for piece in chunks:
                pieces.append(piece)
                size += len(piece)
                if size > MEMBER_BLOCK:  # a whole file gzipped at once: cut as it streams
                    stream = _ChunkStream(b"".join(pieces), chunks)
                    records = _Records(_Buffer(stream.read), source, limits, junk)
                    yield from records.documents(place, located, cut_short=lambda member=member: not member.ended)
                    break
            else:
                data = b"".join(pieces)
                single = _single_record(data, limits) if member.ended else None
                if single is not None:  # CommonCrawl's layout: one whole record, nothing else
                    if junk.location is not None:
                        yield from junk.flush()
                    parsed = parse_record(single, source, member.start, 0, limits, where)
                    if parsed is not None:
                        yield parsed
                    continue
                records = _Records(_Buffer(None, data=data), source, limits, junk,
                                   reopen=lambda offset, data=data: io.BytesIO(data[offset:]))
                yield from records.documents(place, located, cut_short=lambda member=member: not member.ended)
            if not member.ended:
                return
        except LimitExceeded as error:
            yield from junk.flush()
            yield Failure(source, where, error.reason, str(error))
            return
        except zlib.error as error:
            yield from junk.flush()
            yield Failure(source, where, "corrupt_member", f"zlib: {error}; resuming at the next gzip member")
            if not _next_member(raw, bytes(member.consumed[1:])):
                return


class _Member:
    """One gzip member, decompressed as it is read; ``ended`` once its trailer is through."""

    def __init__(self, raw: _Raw, limits: Limits):
        self.raw = raw
        self.limits = limits
        self.decompressor = zlib.decompressobj(31)
        self.start = raw.position
        self.ended = False
        self.produced = 0
        self.consumed = bytearray()  # raw bytes read for this member, kept while small (for resynchronising)

    def chunks(self) -> Iterator[bytes]:
        """Decompressed pieces until the member ends or the input does (then not ``ended``)."""
        while not self.ended:
            data = self.raw.read()
            if not data:
                return
            if len(self.consumed) < MEMBER_BLOCK:
                self.consumed += data
            while data:
                out = self.decompressor.decompress(data, RAW_CHUNK)
                data = self.decompressor.unconsumed_tail
                self.produced += len(out)
                consumed = self.raw.position - self.start
                if self.produced > EXPANSION_FLOOR and self.produced > consumed * self.limits.max_expansion:
                    raise LimitExceeded("decompression_bomb", f"a gzip member expands more than "
                                        f"{self.limits.max_expansion:g}x")
                if out:
                    yield out
                if self.decompressor.eof:
                    self.ended = True
                    left = self.decompressor.unused_data  # (at the end, unconsumed_tail holds the same bytes)
                    if left:
                        del self.consumed[len(self.consumed) - len(left) :]
                    self.raw.unread(left)
                    return


def _next_member(raw: _Raw, searched_again: bytes) -> bool:
    """Move ``raw`` to the next gzip header, looking again at ``searched_again`` (the bytes of
    the bad member after its first) first; False at the end of the input."""
    raw.unread(searched_again)
    tail = b""
    while True:
        data = raw.read()
        if not data:
            return False
        window = tail + data
        found = window.find(GZIP_MAGIC)
        if found >= 0:
            raw.unread(window[found:])
            return True
        tail = window[-2:]


class _ChunkStream:
    """The decompressed pieces of a streamed member, read ``size`` bytes at a time."""

    def __init__(self, head: bytes, rest: Iterator[bytes]):
        self.pending = head
        self.rest = rest

    def read(self, size: int) -> bytes:
        parts, total = [self.pending], len(self.pending)
        while total < size:
            piece = next(self.rest, b"")
            if not piece:
                break
            parts.append(piece)
            total += len(piece)
        data = b"".join(parts)
        self.pending = data[size:]
        return data[:size]
