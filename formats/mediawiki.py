"""Streaming reader for MediaWiki ``pages-articles`` XML dumps (plain, bz2, multistream).

The dump is scanned for ``<page>...</page>`` elements by XML's lexical rules (comments and
CDATA sections skipped whole: text content cannot open or close a page) and each page is
parsed by lxml on its own, so memory stays at one page, a malformed page fails alone, and a
byte range that starts at a page (a stream of a multistream file, a planned range of a plain
one) reads like a whole file.
"""

from __future__ import annotations

import bz2
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from lxml import etree
from redpajama.core.streams import iter_chunks
from redpajama.formats.xml_markup import HoldTooLong, MarkupScanner

PAGE_OPEN = re.compile(rb"<page[\s>]")
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


def scan_pages(chunks: Iterable[bytes], base_offset: int = 0, max_page: int = 1 << 30) -> Iterator[tuple[int, bytes] | bytes]:
    """Yield the header (bytes before the first page) once, then ``(offset, page_bytes)``.

    Pages are cut at their ``<page>`` and ``</page>`` tags as XML's lexical rules find them
    (:class:`~redpajama.formats.xml_markup.MarkupScanner`): a comment or CDATA section
    inside a page cannot end it or start another. A page that a new ``<page>`` interrupts is
    yielded as it stands (its parse then fails alone). Raises :class:`DumpError`
    ``truncated_page`` at the end if a page was left open, ``page_too_large`` when a page
    grows past ``max_page`` bytes (a bomb, not an article), and ``invalid_xml`` when a comment
    or CDATA section never ends (nothing after it can be read).
    """
    scanner = MarkupScanner(chunks, rb"page|/page", base_offset, max_hold=HEADER_LIMIT)
    scanner.hold = base_offset  # the header, until the first page
    header_sent = False
    opened: int | None = None
    try:
        for offset, name in scanner:
            if name == b"/page":
                end = scanner.end_tag_end(offset) if opened is not None else None
                if end is not None:  # (an end tag outside a page is no page)
                    yield opened, scanner.slice(opened, end)
                    opened = scanner.hold = None
                continue
            if not header_sent:
                yield scanner.slice(base_offset, offset)
                header_sent, scanner.max_hold = True, max_page
            elif opened is not None:  # interrupted: this page ends where the next one starts
                yield opened, scanner.slice(opened, offset)
            opened = scanner.hold = offset
    except HoldTooLong as error:
        if not header_sent:
            raise DumpError("not_a_mediawiki_dump", f"no <page> in the first {HEADER_LIMIT} bytes") from None
        raise DumpError("page_too_large", f"the page at byte {error.offset} is longer than {max_page >> 20} MB") from None
    if not header_sent:  # no page at all: everything is the header
        yield scanner.slice(base_offset, scanner.end)
        return
    if opened is not None:
        raise DumpError("truncated_page", f"input ends inside the page at byte {opened}")
    if scanner.unterminated is not None:
        raise DumpError("invalid_xml", f"a comment or CDATA section at byte {scanner.unterminated} never ends")


def page_starts(chunks: Iterable[bytes]) -> Iterator[int]:
    """Offsets of every ``<page>`` tag, found as :func:`scan_pages` finds them, holding nothing."""
    for offset, name in MarkupScanner(chunks, rb"page"):
        if name == b"page":
            yield offset


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
