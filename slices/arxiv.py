"""arXiv: LaTeX sources to text (recipe §5), from bulk source tars or local paper folders.

A bulk tar (``arXiv_src_YYMM_NNN.tar``) holds ``YYMM/<id>.gz`` members: a gzipped tar of
the project, or one gzipped TeX file; papers with only a PDF are counted and skipped.
Archives are untrusted: member names that escape, links and devices are refused, and
every decompression is capped (a bomb fails its paper only). Folders given with
``--input`` are a paper each (or hold one paper per sub-folder).
"""

from __future__ import annotations

import functools
import gzip
import io
import os
import posixpath
import re
import stat
import tarfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone

from redpajama.core import storage
from redpajama.core.errors import SourceError, UsageError, failure_reason
from redpajama.core.records import Failure, Record, Step, StepResult, make_record
from redpajama.filters.langid import LanguageTagger
from redpajama.filters.latex import CleanLatex, LatexRules
from redpajama.formats import arxiv_manifest
from redpajama.models import catalog
from redpajama.slices.base import Keyed, Slice, WorkUnit
from redpajama.slices.options import SliceOptions, compat_option, compat_rules, option

MANIFEST = "s3://arxiv/src/arXiv_src_manifest.xml"  # requester pays
NEW_ID = re.compile(r"^(\d{4})\.\d{4,5}(v\d+)?$")
OLD_ID = re.compile(r"^([a-z\-]+(?:\.[A-Z]{2})?)(\d{7})(v\d+)?$")
TEXT_SUFFIXES = (".tex",)  # what RedPajama read; styles and classes are not text
MB = 1 << 20
COMPAT = {
    "archive-order": "every .tex file in archive order, each cleaned alone, joined by newlines",
    "cut-regexes": "RedPajama's section, appendix and bibliography expressions",
    "comments": "RedPajama's comment expressions (eats the character before %)",
    "macros": "RedPajama's macro table and re.sub templates (a failing template drops the paper)",
    "utf8-only": "a paper with a .tex file that is not UTF-8 is dropped",
}


class PaperTooLarge(Exception):
    """A paper decompresses beyond the cap (a decompression bomb or a huge project)."""


class TexTooLarge(PaperTooLarge):
    """A paper's TeX is larger than a record may be (``--max-record-mb``): ``record_too_large``
    before its text is decoded, as a page over the limit fails before it is cleaned."""


def format_arxiv_id(stem: str) -> str:
    """``math0601001`` -> ``math/0601001``; new-style ids stay as they are."""
    match = OLD_ID.match(stem)
    return f"{match.group(1)}/{match.group(2)}" if match else stem


def yymm_of(arxiv_id: str, folder: str = "") -> str:
    if re.fullmatch(r"\d{4}", folder):
        return folder
    match = NEW_ID.match(arxiv_id)
    if match:
        return match.group(1)
    old = OLD_ID.match(arxiv_id.replace("/", ""))
    return old.group(2)[:4] if old else ""


def member_time(mtime: float) -> str:
    """RedPajama's timestamp of a bulk tar's paper: the local-time ISO string of the member's
    mtime (part of the data arXiv ships), on a machine set to UTC."""
    return datetime.fromtimestamp(mtime, tz=timezone.utc).replace(tzinfo=None).isoformat()


def month_start(yymm: str) -> str | None:
    """A paper folder's timestamp: midnight on the first day of its arXiv id's month (files'
    mtimes differ between checkouts); None without an id. arXiv ids start in 1991."""
    if not re.fullmatch(r"\d{4}", yymm) or not 1 <= int(yymm[2:]) <= 12:
        return None
    year = int(yymm[:2]) + (1900 if int(yymm[:2]) >= 91 else 2000)
    return f"{year}-{yymm[2:]}-01T00:00:00"


def safe_name(name: str) -> str | None:
    """A member name inside the archive, or None if it is absolute or climbs out."""
    if name.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", name):
        return None
    normal = posixpath.normpath(name)
    return None if normal.startswith("..") or normal == "." else normal


def read_capped(stream, limit: int) -> bytes:
    """Read at most ``limit`` bytes, raising :class:`PaperTooLarge` beyond it."""
    data = stream.read(limit + 1)
    if len(data) > limit:
        raise PaperTooLarge(f"more than {limit // MB} MB decompressed")
    return data


class TexFiles(dict):
    """A paper's text files (name -> text, in archive order) and the names that were not UTF-8."""

    def __init__(self):
        super().__init__()
        self.latin1: list[str] = []
        self.special: list[str] = []  # FIFOs, devices, sockets: never opened

    def add(self, name: str, data: bytes) -> None:
        """UTF-8, else Latin-1 (RedPajama dropped the whole paper on one non-UTF-8 file)."""
        try:
            self[name] = data.decode("utf-8")
        except UnicodeDecodeError:
            self[name] = data.decode("latin-1")
            self.latin1.append(name)


def project_files(payload: bytes, limit: int, tex_limit: int | None = None) -> TexFiles:
    """The text files of one paper's ``.gz``: a gzipped tar project or a single gzipped TeX file.
    Beyond ``limit`` bytes unpacked: :class:`PaperTooLarge`; beyond ``tex_limit`` bytes of TeX:
    :class:`TexTooLarge`."""
    raw = read_capped(gzip.GzipFile(fileobj=io.BytesIO(payload)), limit)
    files = TexFiles()
    try:
        archive = tarfile.open(fileobj=io.BytesIO(raw), mode="r:")
    except tarfile.TarError:
        _check_tex(len(raw), limit, tex_limit)
        files.add("main.tex", raw)
        return files
    total = 0
    with archive:
        for member in archive:
            name = safe_name(member.name)
            if name is None or not member.isfile() or not name.endswith(TEXT_SUFFIXES):
                continue
            total += member.size
            _check_tex(total, limit, tex_limit)
            files.add(name, archive.extractfile(member).read())
    return files


def _check_tex(total: int, limit: int, tex_limit: int | None) -> None:
    if total > limit:
        raise PaperTooLarge(f"more than {limit // MB} MB of TeX")
    if tex_limit is not None and total > tex_limit:
        raise TexTooLarge(f"more than {tex_limit / MB:g} MB of TeX, past --max-record-mb")


def folder_files(folder: str, limit: int, tex_limit: int | None = None) -> TexFiles:
    files = TexFiles()
    total = 0
    for root, dirs, names in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(names):
            path = os.path.join(root, name)
            if not name.endswith(TEXT_SUFFIXES) or os.path.islink(path):
                continue
            if not stat.S_ISREG(os.stat(path).st_mode):  # opening a FIFO would block forever
                files.special.append(path)
                continue
            total += os.path.getsize(path)
            _check_tex(total, limit, tex_limit)
            with open(path, "rb") as handle:
                files.add(os.path.relpath(path, folder).replace(os.sep, "/"), handle.read())
    return files


class TagLanguage(Step):
    """RedPajama's arXiv language tag: lid.176 on the lower-cased text; recorded, not filtered."""

    name = "language_id"
    description = "language_id: fastText lid.176 on the lower-cased text (recorded, not filtered)"

    def __init__(self, model_location: str):
        self.tagger = LanguageTagger(model_location)

    def setup(self) -> None:
        self.tagger.setup()

    def apply(self, record: Record) -> StepResult:
        language, _ = self.tagger.predict(record["text"].lower().replace("\t", " "))
        record["meta"]["language"] = language
        return record


@dataclass(frozen=True)
class ArxivOptions(SliceOptions):
    keep_appendix: bool = option(False, "keep appendices (RedPajama cut the text at \\appendix)")
    max_paper_mb: float = option(256.0, "cap on one paper's decompressed size in MB")
    lid_model: str | None = option(None, "fastText language ID model (path, URL or gs://)")
    redpajama_compat: str | None = compat_option(COMPAT)
    until: str | None = option(None, "read only the bulk tars of months up to this one (arXiv_src_YYMM_NNN.tar; "
                               "RedPajama downloaded in about April 2023: 2303)", metavar="YYMM")
    manifest: str = option(MANIFEST, "arXiv's source manifest; without --input the tars it lists (up to --until) "
                           "are read from its folder", metavar="PATH")

    def __post_init__(self) -> None:
        if self.until is not None and not re.fullmatch(r"\d{2}(0[1-9]|1[0-2])", self.until):
            raise UsageError(f"--until: expected a month as YYMM, got {self.until!r}")


class Arxiv(Slice):
    name = "arxiv"
    summary = "arXiv LaTeX sources cleaned to text"
    Options = ArxivOptions
    options: ArxivOptions
    reads_folders = True  # a paper folder is one input

    @classmethod
    def describe_sources(cls) -> str:
        return ("arXiv's bulk source tars as arXiv_src_manifest.xml lists them, read where they are "
                "(s3://arxiv/src/arXiv_src_YYMM_NNN.tar, requester pays), up to --until YYMM; or --input tars "
                "(local, gs://, s3://) or local folders of paper sources.")

    def default_inputs(self) -> list[str]:
        """The tars the manifest lists up to ``--until``, in the manifest's folder (s3://arxiv/src/)."""
        listed = self.listed_tars
        folder = posixpath.dirname(self.options.manifest)
        return [posixpath.join(folder, posixpath.basename(tar.name)) for tar in listed
                if arxiv_manifest.up_to(tar.yymm, self.options.until)]

    @functools.cached_property
    def listed_tars(self) -> list[arxiv_manifest.SourceTar]:
        """The manifest's tars (read once, on the launcher)."""
        where = self.options.manifest
        try:
            with storage.open_range(where) as stream:
                tars = arxiv_manifest.parse(stream.read())
        except (SourceError, OSError, ValueError) as error:
            raise UsageError(f"arxiv: cannot read the source manifest {where} ({error}); give a copy with "
                             "--manifest or the tars with --input") from None
        if not tars:
            raise UsageError(f"arxiv: {where} lists no arXiv_src_YYMM_NNN.tar")
        return tars

    def run_info(self) -> dict:
        """Where the run's tars came from, for the report's projection (full count up to ``--until``)."""
        if "listed_tars" not in vars(self):  # the tars were given with --input
            return {}
        chosen = [tar for tar in self.listed_tars if arxiv_manifest.up_to(tar.yymm, self.options.until)]
        return {"source_manifest": {"path": self.options.manifest, "until": self.options.until,
                                    "tars_listed": len(self.listed_tars), "tars": len(chosen),
                                    "bytes": sum(tar.size for tar in chosen), "papers": sum(tar.papers for tar in chosen)}}

    def validate(self) -> None:
        self.rules()
        self.lid_location  # noqa: B018 - resolved on the launcher, carried to the workers

    @functools.cached_property
    def lid_location(self) -> str:
        return catalog.locate(catalog.LID, self.options.lid_model)

    def models(self) -> dict[str, str]:
        return {"lid": self.lid_location}

    def rules(self) -> LatexRules:
        chosen = compat_rules(self.options.redpajama_compat, COMPAT)
        return LatexRules(
            archive_order="archive-order" in chosen, cut_regexes="cut-regexes" in chosen,
            comments="comments" in chosen, macros="macros" in chosen, utf8_only="utf8-only" in chosen,
            keep_appendix=self.options.keep_appendix,
        )

    def _limit(self) -> int:
        return int(self.options.max_paper_mb * MB)

    def steps(self) -> list[Step]:
        return [CleanLatex(self.rules(), self.context.limits.max_record_bytes), TagLanguage(self.lid_location)]

    # --- reading -----------------------------------------------------------------------
    def plan(self, source: str) -> Iterator[WorkUnit | Failure]:
        if os.path.isdir(source):
            papers = [source] if _has_tex(source, deep=False) else [
                os.path.join(source, d) for d in sorted(os.listdir(source)) if _has_tex(os.path.join(source, d))
            ]
            if not papers:
                yield Failure(source, "folder", "no_tex_files", "no .tex file in the folder or its sub-folders", "plan")
            for paper in papers:
                yield WorkUnit(paper, context={"folder": True})
            return
        if not arxiv_manifest.up_to(arxiv_manifest.yymm_of(source) or self.options.until, self.options.until):
            return  # a bulk tar of a month after --until
        yield WorkUnit(source)

    def read(self, unit: WorkUnit) -> Iterator[Keyed | Failure]:
        if unit.context.get("folder"):
            yield from self._folder_paper(unit.source)
            return
        try:
            stream = storage.open_range(unit.source)
        except SourceError as error:
            yield Failure(unit.source, "whole file", failure_reason(error), str(error))
            return
        with stream:
            yield from self._bulk_tar(unit.source, stream)

    def _folder_paper(self, folder: str) -> Iterator[Keyed | Failure]:
        """The paper in a folder; each special file in it is skipped and counted as a failure."""
        stem = os.path.basename(os.path.normpath(folder))
        try:
            files = folder_files(folder, self._limit(), self.context.limits.max_record_bytes)
        except PaperTooLarge as error:
            yield Failure(folder, "folder", _too_large(error), str(error))
            return
        for path in files.special:
            yield Failure(path, "file", "not_regular_file", "a FIFO, device or socket is never read")
        arxiv_id = stem.split("-")[0] if NEW_ID.match(stem.split("-")[0]) else stem
        yymm = yymm_of(arxiv_id)
        yield self._keyed(arxiv_id, yymm, month_start(yymm), files, None, folder)

    def _bulk_tar(self, source: str, stream) -> Iterator[Keyed | Failure]:
        try:
            with tarfile.open(fileobj=stream, mode="r|*") as archive:
                for member in archive:
                    if not member.isfile():
                        skipped = _skipped_member(source, member)
                        if skipped:
                            yield skipped
                        continue
                    name = safe_name(member.name)
                    if name is None:
                        yield Failure(source, member.name, "unsafe_member_name", "absolute or escaping path")
                        continue
                    folder, base = posixpath.split(name)
                    stem, suffix = posixpath.splitext(base)
                    arxiv_id = format_arxiv_id(stem)
                    where = f"{source}:{name}"
                    if suffix == ".pdf":
                        yield self._keyed(arxiv_id, yymm_of(arxiv_id, posixpath.basename(folder)),
                                          member_time(member.mtime), {}, "pdf_only", where)
                        continue
                    if suffix != ".gz":
                        continue
                    if member.size > self._limit():
                        yield Failure(source, name, "too_large", f"{member.size // MB} MB compressed")
                        continue
                    payload = archive.extractfile(member).read()
                    try:
                        files = project_files(payload, self._limit(), self.context.limits.max_record_bytes)
                    except PaperTooLarge as error:
                        yield Failure(source, name, _too_large(error), str(error))
                        continue
                    except (OSError, EOFError, zlib.error, tarfile.TarError) as error:
                        yield Failure(source, name, "corrupt_paper", f"{type(error).__name__}: {error}")
                        continue
                    yield self._keyed(arxiv_id, yymm_of(arxiv_id, posixpath.basename(folder)),
                                      member_time(member.mtime), files, None, where)
        except (tarfile.TarError, OSError, EOFError, zlib.error) as error:
            yield Failure(source, "archive", "corrupt_archive", f"{type(error).__name__}: {error}")

    @staticmethod
    def _keyed(arxiv_id: str, yymm: str, timestamp: str | None, files: dict, skip: str | None, where: str) -> Keyed:
        meta = {
            "timestamp": timestamp,
            "yymm": yymm,
            "arxiv_id": arxiv_id,
            "language": None,
            "url": f"https://arxiv.org/abs/{arxiv_id}",
            "source": "arxiv",
            "id": f"arxiv/{arxiv_id}",
            "_files": dict(files),
            "_latin1": list(getattr(files, "latin1", ())),
            "_source_bytes": sum(len(text.encode("utf-8", "surrogatepass")) for text in files.values()),
        }
        if skip:
            meta["_skip"] = skip
        record = make_record("", **meta)
        return f"{yymm}|{arxiv_id}|{where}", record


def _skipped_member(source: str, member: tarfile.TarInfo) -> Failure | None:
    """A bulk tar's member that is not a file: a link or special file is counted, a folder is not."""
    if member.issym() or member.islnk():
        return Failure(source, member.name, "link_member", f"a link to {member.linkname!r} is never followed")
    if not member.isdir():
        return Failure(source, member.name, "not_regular_file", "a FIFO or device member is never read")
    return None


def _too_large(error: PaperTooLarge) -> str:
    return "record_too_large" if isinstance(error, TexTooLarge) else "too_large"


def _has_tex(folder: str, deep: bool = True) -> bool:
    """Whether ``folder`` holds a .tex file (directly, or anywhere below it when ``deep``)."""
    if not os.path.isdir(folder):
        return False
    if not deep:
        return any(name.endswith(".tex") for name in os.listdir(folder))
    return any(name.endswith(".tex") for _, _, names in os.walk(folder) for name in names)
