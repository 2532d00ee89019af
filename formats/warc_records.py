"""WARC/WET records to documents with warcio: one raw document per ``conversion`` or
``response`` record, its digest checked where the file declares one, a record shorter than its
Content-Length refused. :mod:`redpajama.formats.webarchive` cuts the records and hands this
module the bytes of one at a time."""

from __future__ import annotations

import base64
import hashlib
import io
import re
from dataclasses import dataclass

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


_LOADER = None


def _loader():
    """warcio's record parser, made once per process (warcio loads late; the parsers hold no state)."""
    global _LOADER
    if _LOADER is None:
        from warcio.recordloader import ArcWarcRecordLoader

        _LOADER = ArcWarcRecordLoader(verify_http=False, arc2warc=False)
    return _LOADER


def parse_record(data: bytes, source: str, offset: int, index: int, limits: Limits,
                 where: str | None = None) -> RawDocument | Failure | str | None:
    """One record's bytes (cut at its Content-Length) through warcio: a document, the
    snapshot a warcinfo names, a failure (``where`` locates it), or None for other records."""
    from warcio.bufferedreaders import BufferedReader

    where = where or f"offset {offset}"
    try:
        record = _loader().parse_record_stream(BufferedReader(io.BytesIO(data)), check_digests=True)
        payload = b""
        if record.rec_type in ("warcinfo", *DOCUMENT_TYPES):
            payload = record.content_stream().read(limits.max_record_bytes + 1)
        if len(payload) > limits.max_record_bytes:
            return Failure(source, where, "record_too_large", f"a record longer than {limits.max_record_bytes >> 20} MB")
        if record.rec_type == "warcinfo":
            return snapshot_in(payload.decode("utf-8", "replace"))
        if record.rec_type not in DOCUMENT_TYPES:
            return None
        problem = _integrity_problem(record)
        if problem:
            return Failure(source, where, problem[0], problem[1])
        return _document(record, payload, offset, index)
    except LimitExceeded:
        raise
    except Exception as error:  # warcio's ArchiveLoadFailed, chunking errors, bad headers
        return Failure(source, where, "unreadable_record", f"{type(error).__name__}: {error}".strip())


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
