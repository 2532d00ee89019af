"""Reading WET and WARC files with warcio: one raw document per ``conversion`` or ``response``.

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

import base64
import hashlib
import io
import re
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import BinaryIO

from redpajama.filters.base import Failure
from redpajama.pipelines.sources import LimitExceeded, Limits

SNAPSHOT_IN_TEXT = re.compile(r"CC-MAIN-(\d{4}-\d{2})")
DOCUMENT_TYPES = ("conversion", "response")
GZIP_MAGIC = b"\x1f\x8b\x08"
WARC_LINE = re.compile(rb"(?:^|\n)WARC/1\.\d\r?\n")
RAW_CHUNK = 1 << 16
MEMBER_BLOCK = 16 << 20  # a member this large is streamed, not held (CC's records are far smaller)

Opener = Callable[[int], BinaryIO]


@dataclass
class RawDocument:
    """One WET conversion (``text`` set) or WARC response (``html`` set) record."""

    offset: int
    record_type: str
    url: str
    date: str
    digest: str
    record_id: str
    length: int
    text: str | None = None
    html: bytes | None = None
    content_type: str | None = None
    index: int = 0  # the record's place in its gzip member (CC: always 0)


def snapshot_in(text: str) -> str | None:
    """``2019-30`` from a path or a warcinfo ``isPartOf: CC-MAIN-2019-30``."""
    found = SNAPSHOT_IN_TEXT.search(text)
    return found.group(1) if found else None


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


# --- gzip, member by member ------------------------------------------------------------------------


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
                yield from _parse(io.BytesIO(b"".join(pieces)), source, member.start, limits)
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
    yield from _parse(stream, source, member.start, limits, stop_on_error=True)
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


# --- uncompressed ---------------------------------------------------------------------------------


def _plain(open_at: Opener, source: str, limits: Limits) -> Iterator[RawDocument | Failure | str]:
    position = 0
    while True:
        with open_at(position) as stream:
            outcome = yield from _parse(stream, source, position, limits, stop_on_error=True, absolute=True)
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


# --- records ---------------------------------------------------------------------------------------


class _Stopped:
    """What :func:`_parse` returns when warcio failed: the start of the last good record, if any."""

    def __init__(self, last_good: int | None, last_good_was_bad: bool = False):
        self.last_good = last_good
        self.last_good_was_bad = last_good_was_bad  # its Content-Length was wrong: what follows is intact


def _QuietIterator(*args, **kwargs):  # noqa: N802 - a class, made on first use (warcio loads late)
    global _QUIET
    if _QUIET is None:
        _QUIET = _quiet_iterator_class()
    return _QUIET(*args, **kwargs)


_QUIET = None


def _parse(stream: BinaryIO, source: str, base: int, limits: Limits, stop_on_error: bool = False,
           absolute: bool = False):
    """Records of one member (or of a stream) through warcio; a failure ends it.

    Returns None when the stream ended cleanly, else ``_Stopped`` (with ``stop_on_error``).
    """
    iterator = _QuietIterator(stream, check_digests=True)
    offset, index, last_good = base, -1, None
    pending: RawDocument | None = None  # held until warcio has checked what follows it

    def settled() -> RawDocument | Failure | None:
        if pending is not None and iterator.err_count:
            iterator.err_count = 0
            return Failure(source, f"offset {pending.offset}", "invalid_content_length",
                           "the record is not followed by the blank line its Content-Length promises")
        return pending

    try:
        for index, record in enumerate(iterator):
            if pending is not None:
                yield settled()
                pending = None
            iterator.err_count = 0
            payload = b""
            if record.rec_type in ("warcinfo", *DOCUMENT_TYPES):
                payload = record.content_stream().read(limits.max_record_bytes + 1)
            # warcio's offset bookkeeping needs the block read first
            offset = base + iterator.get_record_offset() if absolute else base
            last_good = offset
            if len(payload) > limits.max_record_bytes:
                yield Failure(source, f"offset {offset}", "record_too_large",
                              f"a record longer than {limits.max_record_bytes >> 20} MB")
                continue
            if record.rec_type == "warcinfo":
                snapshot = snapshot_in(payload.decode("utf-8", "replace"))
                if snapshot:
                    yield snapshot
                continue
            if record.rec_type not in DOCUMENT_TYPES:
                continue
            problem = _integrity_problem(record)
            if problem:
                yield Failure(source, f"offset {offset}", problem[0], problem[1])
                if absolute and record.rec_headers.get_header("Content-Length") is None:
                    return _Stopped(offset, last_good_was_bad=True)  # warcio read on to the end: resync after it
                continue
            pending = _document(record, payload, offset, index if not absolute else 0)
        if pending is not None:
            yield settled()
    except LimitExceeded:
        raise
    except Exception as error:  # warcio's ArchiveLoadFailed, chunking errors, bad headers
        if pending is not None and iterator.err_count:  # warcio stumbled over a record's wrong length
            yield settled()
            return _Stopped(last_good, last_good_was_bad=True) if stop_on_error else None
        if pending is not None:
            yield settled()
        where = f"after offset {last_good}" if last_good is not None and absolute else f"offset {base}"
        yield Failure(source, where, "unreadable_record", f"{type(error).__name__}: {error}".strip())
        return _Stopped(last_good) if stop_on_error else None
    return None


def _quiet_iterator_class():
    from warcio.archiveiterator import ArchiveIterator

    class QuietIterator(ArchiveIterator):
        """warcio's iterator without its stderr warning; ``err_count`` says a record's
        Content-Length did not match what followed it."""

        INC_RECORD = ""

    return QuietIterator


def _document(record, payload: bytes, offset: int, index: int) -> RawDocument:
    document = RawDocument(
        offset=offset,
        record_type=record.rec_type,
        url=_header(record, "WARC-Target-URI"),
        date=_header(record, "WARC-Date"),
        digest=_digest(record, payload),
        record_id=_header(record, "WARC-Record-ID"),
        length=int(record.length or 0),
        index=index,
    )
    if record.rec_type == "conversion":
        document.text = payload.decode("utf-8", "replace")
    else:
        document.html = payload
        document.content_type = record.http_headers.get_header("Content-Type") if record.http_headers else None
    return document


def _header(record, name: str) -> str:
    value = record.rec_headers.get_header(name) or ""
    return value.strip().removeprefix("<").removesuffix(">")  # WARC/1.1 writes URIs in <...>


def _digest(record, payload: bytes) -> str:
    """The WET text's Block-Digest (cc_net's ``digest``), a response's Payload-Digest, else computed."""
    names = ("WARC-Block-Digest",) if record.rec_type == "conversion" else ("WARC-Payload-Digest", "WARC-Block-Digest")
    for name in names:
        value = _header(record, name)
        if value:
            return value
    return "sha1:" + base64.b32encode(hashlib.sha1(payload).digest()).decode("ascii")


def _integrity_problem(record) -> tuple[str, str] | None:
    if record.rec_headers.get_header("Content-Length") is None:  # mandatory: the headers were cut
        return "truncated_record", "no Content-Length: the record's headers end early"
    remaining = getattr(record.raw_stream, "limit", 0) or 0
    if remaining > 0:
        return "truncated_record", f"{remaining} of {record.length} bytes missing"
    checker = record.digest_checker
    if checker.passed is False:
        return "digest_mismatch", "; ".join(checker.problems)
    return None
