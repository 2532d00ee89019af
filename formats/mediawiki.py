"""Streaming reader for MediaWiki ``pages-articles`` XML dumps (plain, bz2, multistream).

The dump is scanned for ``<page>...</page>`` elements as bytes and each page is parsed
on its own, so memory stays at one page, a malformed page fails alone, and a byte range
of a multistream file (which starts at a page boundary) reads like a whole file.
Text content cannot hold a literal ``<page`` (XML escapes ``<``), so the scan is exact.
"""

from __future__ import annotations

import bz2
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from lxml import etree
from redpajama.core.streams import iter_chunks

PAGE_OPEN = re.compile(rb"<page[\s>]")
PAGE_CLOSE = b"</page>"
PAGE_OPEN_BYTES = len(b"<page ")
BZ2_STREAM_MAGIC = re.compile(rb"BZh[1-9]\x31\x41\x59\x26\x53\x59")
HEADER_LIMIT = 16 << 20  # siteinfo is a few KB; more before the first page is not a dump

_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=True, load_dtd=False)


class DumpError(ValueError):
    """The input is not a readable MediaWiki dump; ``reason`` is a stable short code."""

    def __init__(self, reason: str, detail: str):
        super().__init__(detail)
        self.reason = reason


@dataclass(frozen=True)
class SiteInfo:
    """What the dump says about its wiki: database name, base URL, namespace names."""

    dbname: str = ""
    base: str = ""
    namespaces: dict[int, str] = field(default_factory=dict)
    content_language: str = ""  # xml:lang of <mediawiki>: the content language, not always the wiki's code

    @property
    def language(self) -> str:
        """``enwiki`` -> ``en``; ``be_x_oldwiki`` -> ``be-x-old``; empty if not a wikipedia."""
        if self.dbname.endswith("wiki"):
            return self.dbname[: -len("wiki")].replace("_", "-")
        return ""

    def as_dict(self) -> dict:
        return {"dbname": self.dbname, "base": self.base, "namespaces": self.namespaces,
                "content_language": self.content_language}

    @classmethod
    def from_dict(cls, data: dict) -> SiteInfo:
        return cls(data["dbname"], data["base"], {int(k): v for k, v in data["namespaces"].items()},
                   data.get("content_language", ""))


@dataclass(frozen=True)
class Page:
    """One ``<page>`` of the dump, with its byte offset in the decompressed XML."""

    offset: int
    page_id: int
    title: str
    namespace: int
    redirect: bool
    text: str | None
    timestamp: str


def scan_pages(chunks: Iterable[bytes], base_offset: int = 0, max_page: int = 1 << 30,
               resume_until: int | None = None) -> Iterator[tuple[int, bytes] | bytes]:
    """Yield the header (bytes before the first page) once, then ``(offset, page_bytes)``.

    Raises :class:`DumpError` ``truncated_page`` at the end if a page was left open, and
    ``page_too_large`` when a page grows past ``max_page`` bytes (a bomb, not an article).
    With ``resume_until`` the chunks start anywhere in a dump (a byte range of it): what comes
    before the first page is the end of an earlier range's page, dropped as it streams (the
    header is then empty), and a range in which no page starts before ``resume_until`` yields
    no page.
    """
    buffer = b""
    consumed = base_offset  # absolute offset of buffer[0] in the decompressed input
    header_sent = False
    for chunk in chunks:
        buffer += chunk
        position = 0
        while True:
            opening = PAGE_OPEN.search(buffer, position)
            if opening is None:
                if header_sent:  # keep a tail that may hold the start of a split '<page'
                    position = max(position, len(buffer) - len(PAGE_CLOSE))
                break
            if not header_sent:
                if resume_until is None:
                    yield buffer[: opening.start()]
                else:  # the end of an earlier range's page: not a header, and maybe past this range
                    yield b""
                    if consumed + opening.start() >= resume_until:
                        return
                header_sent = True
            closing = buffer.find(PAGE_CLOSE, opening.end())
            if closing < 0:
                position = opening.start()
                if len(buffer) - position > max_page:
                    raise DumpError("page_too_large", f"the page at byte {consumed + position} is longer "
                                    f"than {max_page >> 20} MB")
                break
            end = closing + len(PAGE_CLOSE)
            yield consumed + opening.start(), buffer[opening.start() : end]
            position = end
        if not header_sent and resume_until is not None:
            dropped = max(0, len(buffer) - PAGE_OPEN_BYTES)  # keep what may begin a split '<page'
            buffer, consumed = buffer[dropped:], consumed + dropped
            if consumed >= resume_until:
                yield b""
                return
            continue
        if not header_sent and len(buffer) > HEADER_LIMIT:
            raise DumpError("not_a_mediawiki_dump", f"no <page> in the first {HEADER_LIMIT} bytes")
        buffer = buffer[position:]
        consumed += position
    if not header_sent:
        yield buffer
        return
    opening = PAGE_OPEN.search(buffer)
    if opening is not None:
        raise DumpError(
            "truncated_page", f"input ends inside the page at byte {consumed + opening.start()}"
        )


def parse_siteinfo(header: bytes) -> SiteInfo:
    """Read ``<siteinfo>`` from the bytes before the first page."""
    if b"<mediawiki" not in header:
        raise DumpError("not_a_mediawiki_dump", "no <mediawiki> root element before the first page")
    lang = re.search(rb"<mediawiki[^>]*?\sxml:lang=\"([^\"]*)\"", header)
    content_language = lang.group(1).decode("ascii", "replace") if lang else ""
    match = re.search(rb"<siteinfo>.*?</siteinfo>", header, re.S)
    if match is None:
        return SiteInfo(content_language=content_language)
    try:
        root = etree.fromstring(match.group(0), _PARSER)
    except etree.XMLSyntaxError as error:
        raise DumpError("invalid_siteinfo", str(error)) from error
    namespaces = {
        int(ns.get("key")): (ns.text or "")
        for ns in root.iterfind("namespaces/namespace")
        if ns.get("key", "").lstrip("-").isdigit()
    }
    return SiteInfo(root.findtext("dbname", ""), root.findtext("base", ""), namespaces, content_language)


def parse_page(offset: int, data: bytes) -> Page:
    """Parse one ``<page>`` element; raises :class:`DumpError` if it is not valid XML."""
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise DumpError("invalid_utf8", f"{error.reason} at byte {offset + error.start}") from error
    try:
        page = etree.fromstring(data, _PARSER)
    except etree.XMLSyntaxError as error:
        raise DumpError("invalid_xml", str(error)) from error
    try:
        page_id = int(page.findtext("id"))
        namespace = int(page.findtext("ns", "0"))
    except (TypeError, ValueError) as error:
        raise DumpError("invalid_page", f"page without a numeric <id>/<ns>: {error}") from error
    return Page(
        offset=offset,
        page_id=page_id,
        title=page.findtext("title", ""),
        namespace=namespace,
        redirect=page.find("redirect") is not None,
        text=page.findtext("revision/text"),
        timestamp=page.findtext("revision/timestamp", ""),
    )


def bz2_stream_offsets(stream, chunk_size: int = 8 << 20) -> list[int]:
    """Byte offsets at which the bz2 streams of a multistream file start (by scanning)."""
    offsets: list[int] = []
    tail = b""
    consumed = 0
    for chunk in iter_chunks(stream, chunk_size):
        data = tail + chunk
        base = consumed - len(tail)
        for match in BZ2_STREAM_MAGIC.finditer(data):
            offset = base + match.start()
            if not offsets or offset > offsets[-1]:
                offsets.append(offset)
        tail = data[-9:]
        consumed += len(chunk)
    return offsets


def index_stream_offsets(index_stream) -> list[int]:
    """Stream offsets from a multistream ``-index.txt.bz2`` (lines ``offset:page_id:title``)."""
    offsets: set[int] = set()
    for line in bz2.BZ2File(index_stream):
        head, _, _ = line.partition(b":")
        if head.strip().isdigit():
            offsets.add(int(head))
    return sorted(offsets)


def index_path_for(dump_path: str) -> str | None:
    """The conventional index file beside a multistream dump, or None for other dumps."""
    suffix = ".xml.bz2"
    if "multistream" not in dump_path or not dump_path.endswith(suffix):
        return None
    return dump_path[: -len(suffix)] + "-index.txt.bz2"
