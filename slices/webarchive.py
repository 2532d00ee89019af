"""Reading WET and WARC files with warcio: one raw document per ``conversion`` or ``response``.

Records are streamed (gzip member by member, or uncompressed). Every record's digest is
checked where the file declares one, and a record shorter than its Content-Length is
refused: such records become failures, never documents. An unreadable stretch of a
file fails the rest of that file only; every document before it is kept.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

from redpajama.filters.base import Failure

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


def snapshot_in(text: str) -> str | None:
    """``2019-30`` from a path or a warcinfo ``isPartOf: CC-MAIN-2019-30``."""
    found = SNAPSHOT_IN_TEXT.search(text)
    return found.group(1) if found else None


def _header(record, name: str) -> str:
    value = record.rec_headers.get_header(name) or ""
    return value.strip().removeprefix("<").removesuffix(">")  # WARC/1.1 writes URIs in <...>


def read_archive(stream: BinaryIO, source: str) -> Iterator[RawDocument | Failure | str]:
    """Documents of a WET/WARC stream; a warcinfo's snapshot (``isPartOf``) is yielded as a str."""
    from warcio.archiveiterator import ArchiveIterator

    iterator = ArchiveIterator(stream, check_digests=True)
    offset = 0
    try:
        for record in iterator:
            # Read the block first: warcio's offset bookkeeping consumes an unread record.
            payload = record.content_stream().read() if record.rec_type in ("warcinfo", *DOCUMENT_TYPES) else b""
            offset = iterator.get_record_offset()
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
                continue
            document = RawDocument(
                offset=offset,
                record_type=record.rec_type,
                url=_header(record, "WARC-Target-URI"),
                date=_header(record, "WARC-Date"),
                digest=_digest(record, payload),
                record_id=_header(record, "WARC-Record-ID"),
                length=int(record.length or 0),
            )
            if record.rec_type == "conversion":
                document.text = payload.decode("utf-8", "replace")
            else:
                document.html = payload
                document.content_type = record.http_headers.get_header("Content-Type") if record.http_headers else None
            yield document
    except Exception as error:  # warcio's ArchiveLoadFailed, zlib/gzip errors, dropped streams
        yield Failure(source, f"after offset {offset}", "unreadable_archive", f"{type(error).__name__}: {error}".strip())


def _digest(record, payload: bytes) -> str:
    """The WET text's Block-Digest (cc_net's ``digest``), a response's Payload-Digest, else computed."""
    names = ("WARC-Block-Digest",) if record.rec_type == "conversion" else ("WARC-Payload-Digest", "WARC-Block-Digest")
    for name in names:
        value = _header(record, name)
        if value:
            return value
    return "sha1:" + base64.b32encode(hashlib.sha1(payload).digest()).decode("ascii")


def _integrity_problem(record) -> tuple[str, str] | None:
    remaining = getattr(record.raw_stream, "limit", 0) or 0
    if remaining > 0:
        return "truncated_record", f"{remaining} of {record.length} bytes missing"
    checker = record.digest_checker
    if checker.passed is False:
        return "digest_mismatch", "; ".join(checker.problems)
    return None
