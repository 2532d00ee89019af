"""GitHub: RedPajama's pipeline as the recipe documents it (§3.1-3.2), computed here from the inputs.

RedPajama's GitHub code is not among the shared references, and its BigQuery input cannot
be fetched again, so its output is computed by :func:`redpajama_github`, written from the
recipe and independent of the product:

1. the export query: rows whose ``license`` starts with ``mit``, ``bsd`` or ``apache`` and
   whose ``content`` is not null, in listing order (files in the order given, rows in file order);
2. rows whose path ends in ``.crt`` or is exactly ``LICENSE`` skipped; exact dedup on the md5
   of the raw content, the first row kept;
3. the copyright stripper: the first ``/* ... */`` comment is cut when it mentions
   "copyright", and a file with a block comment is otherwise left alone; else every leading
   line that starts with ``//``, ``#`` or ``--`` or is empty goes;
4. the statistics of the cleaned text and the meta ``content_hash, timestamp (""), source,
   line_count, max_line_length, avg_line_length, alnum_prop`` followed by every column of
   the row but ``content``;
5. the filter, in order: empty, extension whitelist (66, case-sensitive suffixes), longest
   line > 1000, average line > 100, alphanumeric < 0.25, letters per GPT-NeoX token < 1.5.

Local repositories are turned into the rows BigQuery would hold for them: one per regular
file (VCS folders and links left out) with ``repo_name`` (the GitHub remote, else the folder
name), ``ref`` (the checked-out branch), ``path``, ``license`` (what GitHub gives the
repository, given to the case; RedPajama's query reads it from BigQuery) and ``size``;
``content`` is null for a file with a NUL byte in its first 8 KiB, not UTF-8, or over 1 MiB.

The emulated rows ``github-dedup-order`` (the first copy by the string ``repo|ref|path``) and
``github-comment-lines`` (leading comment lines go only when they mention "copyright")
recompute this output with our behaviour; then the product's output must equal it, meta
and key order included, after ``github-blob-id`` and ``github-local-repos``.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import re
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

import zstandard

from tests.fidelity.harness import Doc, Situation

ALLOWED = ("mit", "bsd", "apache")
EXTENSIONS = tuple(
    ".asm .bat .cmd .c .h .cs .cpp .hpp .c++ .h++ .cc .hh .C .H .cmake .css .dockerfile .f90 .f .f03 .f08 .f77 "
    ".f95 .for .fpp .go .hs .html .java .js .jl .lua .md .markdown .php .php3 .php4 .php5 .phps .phpt .pl .pm .pod "
    ".perl .ps1 .psd1 .psm1 .py .rb .rs .sql .scala .sh .bash .command .zsh .ts .tsx .tex .vb Dockerfile Makefile "
    ".xml .rst .m .smali".split()
)
BLOCK_COMMENT = re.compile(r"/\*[^*]*\*+(?:[^/*][^*]*\*+)*/")
COMMENT_STARTS = ("//", "#", "--")
MAX_CONTENT = 1 << 20
REMOTE = re.compile(r"url\s*=\s*\S*github\.com[:/]([^/\s]+/[^/\s]+?)(?:\.git)?\s*$", re.MULTILINE)


def file_key(doc: dict) -> tuple[str, str, str]:
    meta = doc["meta"]
    return meta["repo_name"], meta.get("ref") or "", meta["path"]


# --- rows ----------------------------------------------------------------------------------------


def export_rows(path: str) -> Iterator[dict]:
    """The rows of a BigQuery JSONL export file (plain, gzip or zstd)."""
    data = Path(path).read_bytes()
    if path.endswith(".gz"):
        data = gzip.decompress(data)
    elif path.endswith(".zst"):
        data = zstandard.ZstdDecompressor().stream_reader(io.BytesIO(data)).read()
    for line in data.decode("utf-8").splitlines():
        if line.strip():
            yield json.loads(line)


def repository_rows(folder: str, license: str | None) -> Iterator[dict]:
    """The rows BigQuery would hold for a repository on disk (see the module docstring)."""
    name, ref = os.path.basename(os.path.normpath(folder)), ""
    config, head = os.path.join(folder, ".git", "config"), os.path.join(folder, ".git", "HEAD")
    if os.path.isfile(config):
        match = REMOTE.search(Path(config).read_text("utf-8", "replace"))
        name = match.group(1) if match else name
    if os.path.isfile(head):
        ref = Path(head).read_text("utf-8", "replace").strip().removeprefix("ref: ")
    paths = []
    for root, dirs, names in os.walk(folder):
        dirs[:] = [d for d in dirs if d not in (".git", ".hg", ".svn") and not os.path.islink(os.path.join(root, d))]
        paths += [os.path.join(root, n) for n in names if os.path.isfile(os.path.join(root, n))
                  and not os.path.islink(os.path.join(root, n))]
    for path in sorted(os.path.relpath(p, folder).replace(os.sep, "/") for p in paths):
        data = Path(folder, path).read_bytes()
        yield {"repo_name": name, "ref": ref, "path": path, "license": license, "size": len(data),
               "content": _text(data)}


def _text(data: bytes) -> str | None:
    if b"\0" in data[:8192] or len(data) > MAX_CONTENT:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def input_rows(inputs: Iterable[str], licenses: Mapping[str, str | None]) -> list[dict]:
    rows: list[dict] = []
    for source in inputs:
        rows += repository_rows(source, licenses.get(source)) if os.path.isdir(source) else export_rows(source)
    return rows


# --- RedPajama's steps ---------------------------------------------------------------------------


def strip_copyright(content: str, only_copyright: bool = False) -> str:
    block = BLOCK_COMMENT.search(content)
    if block:
        if "copyright" in block.group().lower():
            return content[: block.start()] + content[block.end() :]
        return content
    lines = content.split("\n")
    skip = 0
    while skip < len(lines) and (lines[skip].startswith(COMMENT_STARTS) or not lines[skip]):
        skip += 1
    if skip and (not only_copyright or "copyright" in "\n".join(lines[:skip]).lower()):
        return "\n".join(lines[skip:])
    return content


def statistics(text: str) -> dict[str, float]:
    lengths = [len(line) for line in text.splitlines()]
    if not lengths:
        return {"line_count": 0, "max_line_length": 0, "avg_line_length": 0, "alnum_prop": 0}
    return {"line_count": len(lengths), "max_line_length": max(lengths), "avg_line_length": len(text) / len(lengths),
            "alnum_prop": sum(char.isalnum() for char in text) / len(text)}


def discarded(record: dict, tokenizer) -> bool:
    text, meta = record["text"], record["meta"]
    if not text or not meta["path"].endswith(EXTENSIONS):
        return True
    if meta["max_line_length"] > 1000 or meta["avg_line_length"] > 100 or meta["alnum_prop"] < 0.25:
        return True
    tokens = len(tokenizer.encode(text, add_special_tokens=False).ids)
    return sum(char.isalpha() for char in text) / tokens < 1.5


def redpajama_github(rows: Iterable[dict], tokenizer, emulated: frozenset[str] = frozenset()) -> list[dict]:
    """RedPajama's GitHub output for ``rows`` (see the module docstring), with the emulated rows' behaviour."""
    selected = [row for row in rows if isinstance(row.get("license"), str) and row["license"].startswith(ALLOWED)
                and row.get("content") is not None]
    if "github-dedup-order" in emulated:  # the order key is one string: "a/b-c|..." comes before "a/b|..."
        selected.sort(key=lambda row: f"{row['repo_name']}|{row.get('ref') or ''}|{row['path']}")
    seen, records = set(), []
    for row in selected:
        if row["path"].endswith(".crt") or row["path"] == "LICENSE":
            continue
        digest = hashlib.md5(row["content"].encode("utf8")).hexdigest()
        if digest in seen:
            continue
        seen.add(digest)
        text = strip_copyright(row["content"], only_copyright="github-comment-lines" in emulated)
        meta = {"content_hash": digest, "timestamp": "", "source": "github", **statistics(text),
                **{column: value for column, value in row.items() if column != "content"}}
        record = {"text": text, "meta": meta}
        if not discarded(record, tokenizer):
            records.append(record)
    return records


def reference(licenses: Mapping[str, str | None], tokenizer_path: str):
    """The case's reference: RedPajama's output for its inputs, with the emulated rows given."""
    from tokenizers import Tokenizer

    def compute(inputs: list[str], emulated: frozenset[str]) -> list[dict]:
        return redpajama_github(input_rows(inputs, licenses), Tokenizer.from_file(tokenizer_path), emulated)

    return compute


def blob_id(ref: Doc, ours: Doc, situation: Situation) -> tuple[Doc, Doc]:
    """BigQuery's ``id`` column is ours as ``blob_id``, after the row's columns; ``id`` is our record's."""
    if ref is not None and "id" in ref["meta"]:
        meta = {k: v for k, v in ref["meta"].items() if k != "id"}
        ref = {"text": ref["text"], "meta": {**meta, "blob_id": ref["meta"]["id"]}}
    if ours is not None:
        ours = {"text": ours["text"], "meta": {k: v for k, v in ours["meta"].items() if k != "id"}}
    return ref, ours
