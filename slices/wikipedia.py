"""Wikipedia: MediaWiki ``pages-articles`` dumps to clean article text (recipe §6).

Reads plain, bz2 and multistream bz2 dumps; a multistream dump is split into byte
ranges at stream boundaries (from its index file when present, else by scanning for
stream headers) so that one huge dump spreads over many workers.
"""

from __future__ import annotations

import bz2
import codecs
import re
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import quote

from redpajama import manifests
from redpajama.core import storage, streams
from redpajama.core.errors import SourceError, UsageError, failure_reason
from redpajama.core.records import Drop, Failure, Record, Step, StepResult, make_record
from redpajama.core.streams import DECOMPRESSION_ERRORS
from redpajama.filters.wikitext import DEFAULT_CATEGORY_PREFIXES, DEFAULT_MEDIA_PREFIXES, WikitextCleaner
from redpajama.formats import mediawiki
from redpajama.slices.base import Keyed, Slice, WorkUnit
from redpajama.slices.options import SliceOptions, comma_list, compat_option, compat_rules, option

DUMP_DATE_IN_NAME = re.compile(r"(?:^|[/.\-])([a-z_]+)wiki-(\d{8})-")
WIKI_IN_NAME = re.compile(r"(?:^|[/.\-])([a-z_]+?)wiki-")
ARTICLE_NAMESPACE = 0
COMPAT = {
    "empty-sections": "sections that clean to nothing still joined, leaving runs of blank lines",
    "namespace-table": "media and category prefixes from the 2021 alias table only, not also from the dump's siteinfo",
}
_MANIFEST = manifests.load("wikipedia")


class SelectArticles(Step):
    """Keep pages of the article namespace that are not redirects (as the HF builder)."""

    name = "select_articles"
    description = "select_articles: keep namespace 0, drop redirects and pages without text"

    def apply(self, record: Record) -> StepResult:
        meta = record["meta"]
        namespace = meta.pop("_namespace")
        if namespace != ARTICLE_NAMESPACE:
            return Drop("not_article_namespace", scores={"namespace": namespace})
        redirect = meta.pop("_redirect")
        if redirect:
            return Drop("redirect", scores={"redirect": redirect})
        if not record["text"]:
            return Drop("no_text")
        return record


class CleanWikitext(Step):
    """Wikitext to plain text with the wiki's media and category prefixes (see ``filters.wikitext``)."""

    name = "clean_wikitext"
    unbounded_cost = True  # mwparserfromhell is quadratic on unclosed tags
    description = (
        "clean_wikitext: mwparserfromhell; drop File/Image/Media links (with the wiki's names and aliases),"
        " <ref> and <table>, templates and magic words; keep link and category text"
    )

    def __init__(self, namespaces: dict[str, dict[str, list[str]]], keep_empty_sections: bool = False,
                 table_only: bool = False):
        self._namespaces = namespaces
        self._keep_empty_sections = keep_empty_sections
        self._table_only = table_only
        self._cleaners: dict[tuple, WikitextCleaner] = {}

    def _cleaner(self, language: str, media: tuple, category: tuple) -> WikitextCleaner:
        key = (language, media, category)
        if key not in self._cleaners:
            self._cleaners[key] = WikitextCleaner(
                [*DEFAULT_MEDIA_PREFIXES, *self._namespaces["media"].get(language, ())],
                [*DEFAULT_CATEGORY_PREFIXES, *self._namespaces["category"].get(language, ())],
                () if self._table_only else media, () if self._table_only else category, self._keep_empty_sections,
            )
        return self._cleaners[key]

    def apply(self, record: Record) -> StepResult:
        meta = record["meta"]
        cleaner = self._cleaner(
            meta["language"], tuple(meta.pop("_media_names")), tuple(meta.pop("_category_names"))
        )
        text = cleaner.clean(record["text"])
        if not text:
            return Drop("empty_after_cleaning")
        record["text"] = text
        return record


@dataclass(frozen=True)
class DumpOptions(SliceOptions):
    """Where dumps come from and how they are split (shared by the slices that read dumps)."""

    mirror: str | None = option(None, "base URL replacing https://dumps.wikimedia.org in the default sources")
    split_mb: float = option(
        64.0, "target MB per work unit when splitting a multistream .bz2 dump (compressed MB) or a plain .xml dump; "
        "a plain .bz2 is read whole (its blocks are not byte-aligned)")


def dump_date_help(default: str) -> str:
    return (f"dump date YYYYMMDD for default sources and meta.timestamp (default: {default}; "
            "local files use the date in their name)")


@dataclass(frozen=True)
class WikipediaOptions(DumpOptions):
    languages: str | None = option(
        None, f"comma-separated wiki languages for the default sources (default: RedPajama's {len(_MANIFEST['languages'])})")
    dump_date: str | None = option(None, dump_date_help(_MANIFEST["dump_date"]))
    redpajama_compat: str | None = compat_option(COMPAT)


def check_dump_date(date: str | None) -> None:
    if date and not re.fullmatch(r"\d{8}", date):
        raise UsageError(f"--dump-date must be YYYYMMDD, got {date!r}")


def dump_urls(languages: list[str], date: str, mirror: str | None = None) -> list[str]:
    """The pages-articles multistream dump of each language on a date (on ``mirror`` if given)."""
    urls = []
    for language in languages:
        url = _MANIFEST["dump_url"].format(wiki=f"{language.replace('-', '_')}wiki", date=date)
        if mirror:
            url = url.replace("https://dumps.wikimedia.org", mirror.rstrip("/"))
        urls.append(url)
    return urls


class Wikipedia(Slice):
    name = "wikipedia"
    summary = "Wikipedia articles in 20 languages, markup stripped"
    Options = WikipediaOptions
    options: WikipediaOptions

    @classmethod
    def describe_sources(cls) -> str:
        return (
            f"MediaWiki pages-articles multistream dumps of {_MANIFEST['dump_date']} for "
            f"{' '.join(_MANIFEST['languages'])} ({_MANIFEST['dump_url']}); "
            "local .xml, .xml.bz2 (plain or multistream), .xml.xz and .xml.gz files."
        )

    def default_inputs(self) -> list[str]:
        languages = comma_list(self.options.languages) or _MANIFEST["languages"]
        return dump_urls(languages, self.options.dump_date or _MANIFEST["dump_date"], self.options.mirror)

    def validate(self) -> None:
        compat_rules(self.options.redpajama_compat, COMPAT)
        check_dump_date(self.options.dump_date)

    def steps(self) -> list[Step]:
        namespaces = manifests.load(_MANIFEST["namespaces"].removesuffix(".json"))
        compat = compat_rules(self.options.redpajama_compat, COMPAT)
        return [SelectArticles(), CleanWikitext(namespaces, "empty-sections" in compat, "namespace-table" in compat)]

    # --- reading ---------------------------------------------------------------------
    def plan(self, source: str) -> Iterator[WorkUnit | Failure]:
        if source.lower().endswith(".xml"):
            yield from self._plan_xml(source)
            return
        if not source.lower().endswith(".bz2"):
            yield WorkUnit(source)
            return
        try:
            offsets = self._stream_offsets(source)
        except SourceError as error:
            yield Failure(source, "stream index", failure_reason(error), str(error), step="plan")
            return
        except DECOMPRESSION_ERRORS as error:
            yield Failure(source, "stream index", "unreadable_input", str(error), step="plan")
            return
        if len(offsets) < 2:
            yield WorkUnit(source)
            return
        try:
            with storage.open_range(source, offsets[0], offsets[1]) as head:
                pages = mediawiki.scan_pages(streams.iter_chunks(bz2.BZ2File(head)))
                siteinfo = mediawiki.parse_siteinfo(next(pages)).as_dict()
        except (mediawiki.DumpError, SourceError, *DECOMPRESSION_ERRORS) as error:
            yield Failure(source, "first stream", "unreadable_header", str(error), step="plan")
            return
        target = max(1, int(self.options.split_mb * (1 << 20)))
        size = storage.size(source)
        start = 0
        for offset in offsets[1:]:
            if offset - start >= target:
                yield WorkUnit(source, start, offset, {"siteinfo": siteinfo})
                start = offset
        yield WorkUnit(source, start, size, {"siteinfo": siteinfo})

    def _plan_xml(self, source: str) -> Iterator[WorkUnit | Failure]:
        """An uncompressed dump in byte ranges of about ``--split-mb``, each starting at a page:
        the dump is scanned for its pages' starts (XML's lexical rules, as the reader cuts
        pages), so no range starts inside a page, a comment or a CDATA section."""
        target = max(1, int(self.options.split_mb * (1 << 20)))
        try:
            size = storage.size(source)
            if size <= target:
                yield WorkUnit(source)
                return
            with storage.open_range(source, 0, min(size, mediawiki.HEADER_LIMIT)) as head:
                data = head.read()
            opening = mediawiki.PAGE_OPEN.search(data)
            if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)) or opening is None:
                yield WorkUnit(source)  # UTF-16 cannot be cut at any byte; no page: the reader says why
                return
            try:
                siteinfo = mediawiki.parse_siteinfo(data[: opening.start()]).as_dict()
            except mediawiki.DumpError as error:
                yield Failure(source, "header", error.reason, str(error), step="plan")
                return
            with storage.open_range(source) as stream:
                starts = [0, *_range_starts(mediawiki.page_starts(streams.iter_chunks(stream)), target)]
        except SourceError as error:
            yield Failure(source, "header", failure_reason(error), str(error), step="plan")
            return
        for start, end in zip(starts, [*starts[1:], size], strict=True):
            yield WorkUnit(source, start, end, {"siteinfo": siteinfo})

    def _stream_offsets(self, source: str) -> list[int]:
        index = mediawiki.index_path_for(source)
        if index and storage.exists(index):
            with storage.open_range(index) as stream:
                offsets = mediawiki.index_stream_offsets(stream)
            return sorted({0, *offsets})
        with storage.open_range(source) as stream:
            return mediawiki.bz2_stream_offsets(stream)

    def read(self, unit: WorkUnit) -> Iterator[Keyed | Failure]:
        source = unit.source
        where = unit.location
        try:
            stream = storage.open_range(source, unit.start, unit.end)
        except SourceError as error:
            yield Failure(source, where, failure_reason(error), str(error))
            return
        plain = not streams.is_compressed(source)  # offsets in the file itself, else in the unit's decompressed bytes
        with stream:
            chunks = streams.decompressed_chunks(stream, source, limits=self.context.limits)
            pages = mediawiki.scan_pages(streams.utf8_chunks(chunks), unit.start if plain else 0,
                                         max_page=self.context.limits.max_record_bytes)
            seen = PageIds()
            try:
                header = next(pages)
                if "siteinfo" in unit.context:
                    siteinfo = mediawiki.SiteInfo.from_dict(unit.context["siteinfo"])
                elif not header.strip() and unit.start == 0:
                    yield Failure(source, where, "empty_input", "no content")
                    return
                else:
                    siteinfo = mediawiki.parse_siteinfo(header)
                describe = _PageDescriber(source, siteinfo, self.options.dump_date)
                for offset, data in pages:
                    try:
                        page = mediawiki.parse_page(offset, data)
                    except mediawiki.DumpError as error:
                        yield Failure(source, f"{where}, page at byte {offset}", error.reason, str(error))
                        continue
                    if not seen.add(page.page_id):
                        yield Failure(source, f"{where}, page at byte {offset}", "duplicate_page_id",
                                      f"page id {page.page_id} came earlier in this input: the first is kept")
                        continue
                    yield describe(page)
            except mediawiki.DumpError as error:
                yield Failure(source, where, error.reason, str(error))
            except UnicodeDecodeError as error:
                yield Failure(source, where, "invalid_encoding", str(error))
            except DECOMPRESSION_ERRORS as error:
                yield Failure(source, where, "corrupt_compression", f"{type(error).__name__}: {error}")
            except SourceError as error:
                yield Failure(source, where, failure_reason(error), str(error))


def _range_starts(page_starts: Iterator[int], target: int) -> Iterator[int]:
    """Where ranges after the first start: at the first page at least ``target`` bytes after
    the previous range's start, once that range holds a page."""
    start, holds_page = 0, False
    for offset in page_starts:
        if holds_page and offset - start >= target:
            yield offset
            start = offset
        holds_page = True


class PageIds:
    """The page ids of one input seen so far: a bitmap for the dense ids MediaWiki gives, a set
    for the rest (a hostile dump's), so a whole dump's ids take a few MB."""

    DENSE = 1 << 28

    def __init__(self):
        self.bits = bytearray()
        self.others: set[int] = set()

    def add(self, page_id: int) -> bool:
        """Remember ``page_id``; False if it was seen before."""
        if not 0 <= page_id < self.DENSE:
            if page_id in self.others:
                return False
            self.others.add(page_id)
            return True
        index, bit = divmod(page_id, 8)
        if index >= len(self.bits):
            self.bits.extend(bytes(max(index + 1 - len(self.bits), len(self.bits))))
        if self.bits[index] >> bit & 1:
            return False
        self.bits[index] |= 1 << bit
        return True


class _PageDescriber:
    """Turns pages of one dump into keyed records carrying what the steps need."""

    def __init__(self, source: str, siteinfo: mediawiki.SiteInfo, dump_date: str | None):
        name_match = WIKI_IN_NAME.search(source)
        self.language = (siteinfo.language or (name_match.group(1).replace("_", "-") if name_match else "")
                         or siteinfo.content_language)
        date_match = DUMP_DATE_IN_NAME.search(source)
        self.dump_date = dump_date or (date_match.group(2) if date_match else None)
        if siteinfo.base and "/wiki/" in siteinfo.base:
            self.url_prefix = siteinfo.base.split("/wiki/")[0] + "/wiki/"
        else:
            self.url_prefix = f"https://{self.language}.wikipedia.org/wiki/"
        names = siteinfo.namespaces
        self.media_names = [n for n in (names.get(-2), names.get(6)) if n]
        self.category_names = [n for n in (names.get(14),) if n]

    def __call__(self, page: mediawiki.Page) -> Keyed:
        timestamp = self.dump_date or page.timestamp[:10].replace("-", "")
        record = make_record(
            page.text or "",
            title=page.title,
            url=self.url_prefix + quote(page.title),
            language=self.language,
            timestamp=timestamp,
            source="wikipedia",
            id=f"wikipedia/{self.language}/{page.page_id}",
            _namespace=page.namespace,
            _redirect=page.redirect,
            _media_names=self.media_names,
            _category_names=self.category_names,
        )
        return f"{self.language}/{page.page_id:012d}", record
