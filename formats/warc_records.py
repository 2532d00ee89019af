"""WARC/WET records to documents with warcio: one raw document per ``conversion`` or
``response`` record, its digest checked where the file declares one, a record shorter than its
Content-Length refused. :mod:`redpajama.formats.webarchive` hands this module the bytes of one
gzip member (or a plain stream) at a time."""

from __future__ import annotations

import base64
import hashlib
import re
from dataclasses import dataclass
from typing import BinaryIO

from redpajama.core.errors import LimitExceeded
from redpajama.core.records import Failure
from redpajama.core.streams import Limits

SNAPSHOT_IN_TEXT = re.compile(r"CC-MAIN-(\d{4}-\d{2})")
DOCUMENT_TYPES = ("conversion", "response")


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


class Stopped:
    """What :func:`parse_records` returns when warcio failed: the start of the last good record, if any."""

    def __init__(self, last_good: int | None, last_good_was_bad: bool = False):
        self.last_good = last_good
        self.last_good_was_bad = last_good_was_bad  # its Content-Length was wrong: what follows is intact


def _QuietIterator(*args, **kwargs):  # noqa: N802 - a class, made on first use (warcio loads late)
    global _QUIET
    if _QUIET is None:
        _QUIET = _quiet_iterator_class()
    return _QUIET(*args, **kwargs)


_QUIET = None


def parse_records(stream: BinaryIO, source: str, base: int, limits: Limits, stop_on_error: bool = False,
           absolute: bool = False):
    """Records of one member (or of a stream) through warcio; a failure ends it.

    Returns None when the stream ended cleanly, else ``Stopped`` (with ``stop_on_error``).
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
                    return Stopped(offset, last_good_was_bad=True)  # warcio read on to the end: resync after it
                continue
            pending = _document(record, payload, offset, index if not absolute else 0)
        if pending is not None:
            yield settled()
    except LimitExceeded:
        raise
    except Exception as error:  # warcio's ArchiveLoadFailed, chunking errors, bad headers
        if pending is not None and iterator.err_count:  # warcio stumbled over a record's wrong length
            yield settled()
            return Stopped(last_good, last_good_was_bad=True) if stop_on_error else None
        if pending is not None:
            yield settled()
        where = f"after offset {last_good}" if last_good is not None and absolute else f"offset {base}"
        yield Failure(source, where, "unreadable_record", f"{type(error).__name__}: {error}".strip())
        return Stopped(last_good) if stop_on_error else None
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
