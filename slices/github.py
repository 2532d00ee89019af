"""GitHub: permissively licensed code, deduplicated and quality-filtered (recipe §3).

Two inputs: RedPajama's BigQuery export (JSONL rows joining ``contents``, ``files``,
``licenses`` and ``languages``; the licence comes from the row), or local repositories
(each ``--input`` folder is one repository; its licence is the one GitHub's licensee would
give it, from its root licence files). Exact dedup on the md5 of the raw content is a shuffle across the
whole run, keeping the first copy by (repo, ref, path) rather than by listing order.
"""

from __future__ import annotations

import functools
import os
import re
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from redpajama import manifests
from redpajama.core import storage
from redpajama.core.errors import UsageError
from redpajama.core.records import (
    Drop,
    Failure,
    KeepFirstStep,
    Record,
    Step,
    StepResult,
    input_columns,
    is_utf8,
    make_record,
    printable,
    spare_name,
)
from redpajama.core.streams import json_row, numbered_lines
from redpajama.core.tables import TableQuery
from redpajama.dedup import exact
from redpajama.filters import license as licenses
from redpajama.filters.code import CleanCode, CodeQuality, content_hash, skipped_path
from redpajama.models import catalog
from redpajama.slices.base import Keyed, Slice, WorkUnit
from redpajama.slices.options import SliceOptions, option

SKIPPED_DIRS = {".git", ".hg", ".svn"}
FILES_PER_UNIT = 2000
GITHUB_REMOTE = re.compile(r"url\s*=\s*\S*github\.com[:/]([^/\s]+/[^/\s]+?)(?:\.git)?\s*$", re.MULTILINE)
BIGQUERY_QUERY = "github_bigquery.sql"  # in manifests/
BIGQUERY_SUFFIXES = (".json", ".jsonl", ".json.gz", ".jsonl.gz", ".jsonl.zst", ".json.zst")
STATS_KEYS = ("line_count", "max_line_length", "avg_line_length", "alnum_prop")


# --- repositories on disk ---------------------------------------------------------------------


def repository_name(folder: str) -> str:
    """``owner/name`` from the checkout's GitHub remote, else the folder's name."""
    match = GITHUB_REMOTE.search(git_file(folder, "config"))
    return match.group(1) if match else printable(os.path.basename(os.path.normpath(folder)))


def repository_ref(folder: str) -> str:
    """The checked-out branch (``refs/heads/main``) or commit, or "" without git metadata."""
    return git_file(folder, "HEAD").strip().removeprefix("ref: ")


def git_file(folder: str, name: str, limit: int = 1 << 20) -> str:
    """``.git/<name>`` of a repository, or "" when it is missing, larger than ``limit``, not a
    regular file or (through links) outside the repository: nothing outside it is ever read."""
    path = os.path.join(folder, ".git", name)
    if not inside(folder, path):
        return ""
    try:
        data = read_regular(path, limit)
    except OSError:
        return ""
    return data.decode("utf-8", errors="replace") if data is not None else ""


def read_regular(path: str, limit: int) -> bytes | None:
    """The bytes of a regular file that is not a link, or None if it is larger than ``limit``;
    raises OSError for anything else (a link, a FIFO: opened without blocking and refused)."""
    descriptor = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    with os.fdopen(descriptor, "rb") as handle:
        status = os.fstat(descriptor)
        if not stat.S_ISREG(status.st_mode):
            raise OSError(f"{path} is not a regular file")
        return handle.read() if status.st_size <= limit else None


@dataclass(frozen=True)
class RepositoryListing:
    """What a repository folder holds: its regular files, and the entries that cannot be read."""

    files: list[str]  # relative, ``/``-separated, sorted
    special: list[str]  # FIFOs, sockets, devices: never opened
    undecodable: list[str]  # names that are not UTF-8: no record or output line can carry them


def repository_files(folder: str) -> RepositoryListing:
    """The entries below ``folder``; VCS folders and links are skipped (not followed)."""
    files, special, undecodable = [], [], []
    for root, dirs, names in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if d not in SKIPPED_DIRS and not os.path.islink(os.path.join(root, d)))
        for name in names:
            path = os.path.join(root, name)
            if os.path.islink(path):
                continue
            relative = os.path.relpath(path, folder).replace(os.sep, "/")
            if not is_utf8(relative):
                undecodable.append(relative)
            elif os.path.isfile(path):
                files.append(relative)
            elif os.path.exists(path):
                special.append(relative)
    return RepositoryListing(sorted(files), sorted(special), sorted(undecodable))


def inside(folder: str, path: str) -> bool:
    """Whether ``path``, links resolved, stays inside ``folder``."""
    root = os.path.realpath(folder)
    return os.path.commonpath([root, os.path.realpath(path)]) == root


def license_texts(folder: str, limit: int = 1 << 20) -> dict[str, str]:
    """The root licence files of a repository (name -> text). A link is followed only while it
    stays inside the repository; special files and files over ``limit`` bytes are skipped."""
    texts = {}
    for name in sorted(os.listdir(folder)):
        path = os.path.join(folder, name)
        if name.startswith(".") or not licenses.is_license_file(name) or not inside(folder, path):
            continue
        if os.path.isfile(path) and os.path.getsize(path) <= limit:
            with open(path, "rb") as handle:  # invalid UTF-8 is dropped, as licensee drops it
                texts[name] = handle.read().decode("utf-8", "ignore")
    return texts


def decode_source(data: bytes) -> str | None:
    """The file's text, or None for binary content (a NUL byte, or not UTF-8)."""
    if b"\0" in data[:8192]:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def bigquery_row_problem(row: Any) -> str | None:
    """Why a BigQuery export row cannot be used, or None: the columns the recipe reads must
    have their types (``repo_name`` and ``path`` non-empty strings, ``ref``, ``license`` and
    ``content`` strings or null)."""
    if not isinstance(row, dict):
        return f"a row is a JSON object, not {type(row).__name__}"
    for column in ("repo_name", "path"):
        if not isinstance(row.get(column), str) or not row[column]:
            return f"{column} is {type(row.get(column)).__name__}, not a non-empty string"
    for column in ("ref", "license", "content"):
        if row.get(column) is not None and not isinstance(row[column], str):
            return f"{column} is {type(row[column]).__name__}, not a string"
    return None


# --- steps ---------------------------------------------------------------------------------


class SelectFiles(Step):
    """Drops what the reader marked: licence, skipped paths, binary or oversized files."""

    name = "select_files"
    description = ("select_files: licence MIT/BSD/Apache, skip *.crt and the root LICENSE, drop binary files "
                   "and files over the size cap")

    def apply(self, record: Record) -> StepResult:
        reason = record["meta"].pop("_skip", None)
        return Drop(reason) if reason else record


def dedup_step() -> KeepFirstStep:
    return exact.keep_first_step(
        "exact_dedup",
        key=lambda record: record["meta"]["content_hash"],
        reason="duplicate_content",
        description="exact_dedup: md5 of the raw content across the whole run, keep the first by (repo, ref, path)",
    )


@dataclass(frozen=True)
class GitHubOptions(SliceOptions):
    tokenizer: str | None = option(None, "GPT-NeoX tokenizer.json (path, URL or gs://; default: the hub's)")
    max_file_kb: int = option(1024, "drop files larger than this (BigQuery's contents table stops at 1 MiB)")
    bigquery: bool = option(False, "read bigquery-public-data.github_repos with RedPajama's query "
                            "(manifests/github_bigquery.sql) instead of --input")
    bigquery_project: str | None = option(None, "the project billed for the query, which holds its result table "
                                          "(default: --project)", metavar="PROJECT")
    bigquery_dataset: str = option("redpajama", "dataset of that project for the result table (made in the US, "
                                   "beside the public data, with tables kept 30 days)", metavar="DATASET")


class GitHub(Slice):
    name = "github"
    summary = "GitHub code under MIT/BSD/Apache, exact dedup, RedPajama's quality filters"
    Options = GitHubOptions
    options: GitHubOptions
    reads_folders = True  # a repository folder is one input

    @classmethod
    def describe_sources(cls) -> str:
        return ("RedPajama's BigQuery export of bigquery-public-data.github_repos (JSONL rows, license taken from the "
                "row), or local repository folders (licence of the root LICENSE/COPYING files, as GitHub's licensee decides).")

    def default_inputs(self) -> list[str]:
        if self.options.bigquery:
            return []
        raise UsageError("github needs --bigquery (the public dataset) or --input: BigQuery export files "
                         "(github_*.jsonl.gz) or repository folders")

    def table_query(self) -> TableQuery | None:
        """With ``--bigquery``: RedPajama's query over the public dataset (see the .sql file's notes)."""
        if not self.options.bigquery:
            return None
        return TableQuery(manifests.text(BIGQUERY_QUERY), "github", self.options.bigquery_dataset,
                          self.options.bigquery_project)

    def fingerprint(self) -> dict[str, Any]:
        found = super().fingerprint()
        if self.context.table is not None:  # the result table read, as made (a remade one is another input)
            found["table"] = [self.context.table.table, self.context.table.rows]
        return found

    def run_info(self) -> dict[str, Any]:
        """The result table's row count: the report's full-scale count for a --bigquery run."""
        if self.context.table is None:
            return {}
        source = self.context.table
        return {"bigquery": {"table": source.table, "rows": source.rows, "bytes_processed": source.bytes_processed,
                             "reused": source.reused, "query": BIGQUERY_QUERY}}

    def read_row(self, row: dict[str, Any]) -> Keyed | Failure:
        """One row of the query's result, as the export path reads a JSON line."""
        return self._bigquery_columns(f"bigquery:{self.context.table.table if self.context.table else ''}",
                                      "row", dict(row))

    def validate(self) -> None:
        """The tokenizer of the alpha-per-token rule is found (and fetched into the cache) here,
        before any work, not after retries on the workers."""
        location = self.tokenizer_location
        if storage.is_url(location) and not catalog.cached_path(location, os.path.basename(location)).is_file():
            hint = "pass --tokenizer PATH to a tokenizer.json (the GPT-NeoX-20B one)"
            if not storage.exists(location):
                raise UsageError(f"cannot reach {location} (offline?): {hint}")
            try:
                catalog.fetch(location, os.path.basename(location))
            except catalog.ModelNotFound as error:
                raise UsageError(f"GPT-NeoX tokenizer: {error}; {hint}") from None

    @functools.cached_property
    def tokenizer_location(self) -> str:
        """Chosen on the launcher (the packaged, cached or hub tokenizer) and carried to the workers."""
        return catalog.tokenizer_location(self.options.tokenizer)

    def models(self) -> dict[str, str]:
        return {"tokenizer": self.tokenizer_location}

    def steps(self) -> list:
        return [SelectFiles(), dedup_step(), CleanCode(), CodeQuality(self.tokenizer_location)]

    def _max_bytes(self) -> int:
        return self.options.max_file_kb * 1024

    # --- planning: a repository folder is split into units of files ------------------------
    def plan(self, source: str) -> Iterator[WorkUnit | Failure]:
        if not os.path.isdir(source):
            yield WorkUnit(source, context={"kind": "bigquery"})
            return
        detected = licenses.detect(license_texts(source))
        context = {
            "kind": "repository",
            "repo": repository_name(source),
            "ref": repository_ref(source),
            "license": detected.license,
            "license_confidence": detected.confidence,
            "allowed": detected.allowed,
        }
        listing = repository_files(source)
        for path in listing.special:
            yield Failure(os.path.join(source, path), "file", "not_regular_file",
                          "a FIFO, device or socket is never read", step="plan")
        for path in listing.undecodable:
            yield Failure(os.path.join(source, path), "file", "invalid_file_name",
                          "the name is not UTF-8: no output line can hold it", step="plan")
        files = listing.files
        for start in range(0, len(files), FILES_PER_UNIT):
            yield WorkUnit(source, start, start + FILES_PER_UNIT, dict(context, files=files[start : start + FILES_PER_UNIT]))

    def read(self, unit: WorkUnit) -> Iterator[Keyed | Failure]:
        if unit.context.get("kind") == "repository":
            yield from self._read_repository(unit)
        else:
            yield from self._read_bigquery(unit.source)

    def _read_repository(self, unit: WorkUnit) -> Iterator[Keyed | Failure]:
        context = unit.context
        for path in context["files"]:
            full = os.path.join(unit.source, path)
            skip, text, size = None, "", 0
            try:
                size = os.path.getsize(full)
                if not context["allowed"]:
                    skip = "license_not_allowed"
                elif skipped_path(path):
                    skip = "skipped_path"
                elif size > self._max_bytes():
                    skip = "too_large"
                else:
                    data = read_regular(full, self._max_bytes())
                    decoded = decode_source(data) if data is not None else None
                    if data is None:
                        skip = "too_large"
                    elif decoded is None:
                        skip = "binary"
                    else:
                        text = decoded
            except OSError as error:
                yield Failure(full, "file", "unreadable_file", str(error))
                continue
            columns = {"repo_name": context["repo"], "ref": context["ref"], "path": path,
                       "license": context["license"], "license_confidence": context["license_confidence"], "size": size}
            yield self._keyed(text, columns, skip)

    def _read_bigquery(self, source: str) -> Iterator[Keyed | Failure]:
        for item in numbered_lines(source, self.context.limits):
            yield item if isinstance(item, Failure) else self._bigquery_row(source, *item)

    def _bigquery_row(self, source: str, number: int, line: bytes) -> Keyed | Failure:
        try:
            row = json_row(line)
        except ValueError as error:
            return Failure(source, f"line {number + 1}", "invalid_record", f"{type(error).__name__}: {error}")
        return self._bigquery_columns(source, f"line {number + 1}", row)

    def _bigquery_columns(self, source: str, where: str, row: Any) -> Keyed | Failure:
        """A row of RedPajama's query (an export line or a result-table row) to a keyed record."""
        problem = bigquery_row_problem(row)
        if problem:
            return Failure(source, where, "invalid_record", problem)
        content = row.pop("content", None)
        row = input_columns(row)  # a column named like working state (``_skip``) is kept as ``row__skip``
        for ours in ("content_hash", "timestamp", "source", *STATS_KEYS):
            if ours in row:  # a column named like one of our meta keys keeps its value under another name
                row[spare_name(f"row_{ours}", row)] = row.pop(ours)
        skip = None
        if not licenses.bigquery_allowed(row.get("license")):
            skip = "license_not_allowed"
        elif skipped_path(row["path"]):
            skip = "skipped_path"
        elif row.get("binary") or not isinstance(content, str):
            skip, content = "binary", ""
        elif len(content.encode("utf-8", "surrogatepass")) > self._max_bytes():
            skip = "too_large"
        if "id" in row:
            row[spare_name("blob_id", row)] = row.pop("id")  # BigQuery's blob id; ``id`` is the record's own
        return self._keyed(content or "", row, skip)

    @staticmethod
    def _keyed(content: str, columns: dict[str, Any], skip: str | None) -> Keyed:
        ref = columns.get("ref") or ""
        meta: dict[str, Any] = {"content_hash": content_hash(content), "timestamp": "", "source": "github"}
        meta.update({key: 0 for key in STATS_KEYS})
        meta.update(columns)
        meta["id"] = f"github/{columns['repo_name']}/{ref}/{columns['path']}"
        if skip:
            meta["_skip"] = skip
        return f"{columns['repo_name']}|{ref}|{columns['path']}", make_record(content, **meta)
