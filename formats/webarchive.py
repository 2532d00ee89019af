"""Reading WET and WARC files: the file cut into records' bytes, each parsed by
:mod:`redpajama.formats.warc_records` (warcio) into one raw document per ``conversion`` or ``response``.

A gzipped file is read gzip member by gzip member, as CommonCrawl writes it (one record per
member): each member is decompressed here, with its size bounded, and only a member that
ended is handed to warcio, so a cut file never yields a shortened or phantom record. A member
warcio cannot parse fails alone; a member whose compressed bytes are corrupt fails alone too,
and reading resumes at the next gzip header. A member much larger than a record (a file
gzipped whole) is streamed through warcio instead. An uncompressed file is streamed through
warcio and, after a malformed record, resumes at the next ``WARC/1.x`` line.

Every record's digest is checked where the file declares one, and a record shorter than its
Content-Length is refused: such records become failures, never documents.
"""

from __future__ import annotations

import io
import re
import zlib
from collections.abc import Callable, Iterator
from typing import BinaryIO

from redpajama.core.errors import LimitExceeded
from redpajama.core.records import Failure
from redpajama.core.streams import Limits
from redpajama.formats.warc_records import RawDocument, parse_records

GZIP_MAGIC = b"\x1f\x8b\x08"
WARC_LINE = re.compile(rb"(?:^|\n)WARC/1\.\d\r?\n")
RAW_CHUNK = 1 << 16
MEMBER_BLOCK = 16 << 20  # a member this large is streamed, not held (CC's records are far smaller)

Opener = Callable[[int], BinaryIO]


def read_archive(open_at: Opener, source: str, limits: Limits = Limits()) -> Iterator[RawDocument | Failure | str]:
    """Documents of a WET/WARC file; a warcinfo's snapshot (``isPartOf``) is yielded as a str.

    ``open_at(offset)`` opens the file's raw bytes from ``offset``.
    """
    with open_at(0) as stream:
        raw = _Raw(stream)
        if raw.peek(3) == GZIP_MAGIC:
            yield from _gzip_members(raw, source, limits)
            return
    yield from _plain(open_at, source, limits)


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
                if self.produced > (64 << 20) and self.produced > consumed * self.limits.max_expansion:
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


def _gzip_members(raw: _Raw, source: str, limits: Limits) -> Iterator[RawDocument | Failure | str]:
    while raw.peek(1):
        member = _Member(raw, limits)
        where = f"offset {member.start}"
        pieces, size = [], 0
        try:
            chunks = member.chunks()
            for piece in chunks:
                pieces.append(piece)
                size += len(piece)
                if size > MEMBER_BLOCK:
                    yield from _stream_member(b"".join(pieces), chunks, member, source, limits)
                    break
            else:
                if not member.ended:
                    yield Failure(source, where, "truncated_archive", "the file ends inside a gzip member")
                    return
                yield from parse_records(io.BytesIO(b"".join(pieces)), source, member.start, limits)
        except LimitExceeded as error:
            yield Failure(source, where, error.reason, str(error))
            return
        except zlib.error as error:
            yield Failure(source, where, "corrupt_member", f"zlib: {error}; resuming at the next gzip member")
            if not _next_member(raw, bytes(member.consumed[1:])):
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


def _stream_member(head: bytes, rest: Iterator[bytes], member: _Member, source: str,
                   limits: Limits) -> Iterator[RawDocument | Failure | str]:
    """A member too large to hold (a whole file gzipped at once), streamed through warcio."""
    stream = _ChunkStream(head, rest)
    yield from parse_records(stream, source, member.start, limits, stop_on_error=True)
    for _ in stream.remaining():  # read through to the member's end to reach the next one
        pass
    if not member.ended:
        yield Failure(source, f"offset {member.start}", "truncated_archive", "the file ends inside a gzip member")


class _ChunkStream(io.RawIOBase):
    def __init__(self, head: bytes, rest: Iterator[bytes]):
        self.buffer = head
        self.rest = rest

    def readable(self) -> bool:
        return True

    def readinto(self, target) -> int:
        while not self.buffer:
            self.buffer = next(self.rest, b"")
            if not self.buffer:
                return 0
        size = min(len(target), len(self.buffer))
        target[:size], self.buffer = self.buffer[:size], self.buffer[size:]
        return size

    def remaining(self) -> Iterator[bytes]:
        yield self.buffer
        yield from self.rest


def _plain(open_at: Opener, source: str, limits: Limits) -> Iterator[RawDocument | Failure | str]:
    position = 0
    while True:
        with open_at(position) as stream:
            outcome = yield from parse_records(stream, source, position, limits, stop_on_error=True, absolute=True)
        if outcome is None:
            return
        # the failing record starts here, or at the first WARC line after the last good record
        failing = position if outcome.last_good is None else _next_line_after(open_at, outcome.last_good + 1)
        if outcome.last_good_was_bad:  # that record was counted; the next one is whole
            if failing is None:
                return
            position = failing
            continue
        following = None if failing is None else _next_line_after(open_at, failing + 1)
        if following is None:
            return
        position = following


def _next_line_after(open_at: Opener, offset: int) -> int | None:
    """Offset of the first ``WARC/1.x`` line at or after ``offset``, or None."""
    with open_at(offset) as stream:
        found = _find_warc_line(stream)
    return None if found is None else offset + found


def _find_warc_line(stream: BinaryIO) -> int | None:
    """Offset of the next ``WARC/1.x`` line in ``stream``, or None."""
    tail, consumed = b"", 0
    while data := stream.read(RAW_CHUNK):
        window = tail + data
        found = WARC_LINE.search(window)
        if found:
            start = found.start() + (1 if window[found.start() : found.start() + 1] == b"\n" else 0)
            return consumed - len(tail) + start
        tail = window[-12:]
        consumed += len(data)
    return None
