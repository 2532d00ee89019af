"""Token counting with the GPT-NeoX-20B tokenizer (exact ``tokenizers`` counts, see
:mod:`redpajama.filters.token_count`), and reading outputs.

RedPajama counted with GPT-NeoX's ``preprocess_data.py`` and ``--append-eod``: one extra
token per document. ``eod=True`` does the same. Output folders are read whatever wrote
them: this project's ``.jsonl.zst`` shards or a RedPajama download's ``.jsonl``.
"""

from __future__ import annotations

import json
import posixpath
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from redpajama.core import storage, streams
from redpajama.core.errors import SourceError, UsageError
from redpajama.filters.token_count import load_token_counter
from redpajama.models import catalog
from redpajama.pipelines.runs import output_folder

SKIPPED_PARTS = ("/_errors/", "/_dropped/", "/_temporary/")
RECORD_SUFFIXES = (".jsonl", ".jsonl.zst", ".jsonl.gz", ".json.gz", ".jsonl.xz")
BATCH = 256
MAX_LINE_BYTES = 256 << 20  # one output line: a record of the default --max-record-mb (64) with its JSON escapes
BOUNDED = -1  # a max_line that means MAX_LINE_BYTES (as it is when the file is read)


@dataclass
class Counts:
    documents: int = 0
    tokens: int = 0
    bytes: int = 0
    words: int = 0  # white-space separated, counted only per group
    per_document: list[int] = field(default_factory=list)  # tokens of each document, only per group
    groups: dict[str, Counts] = field(default_factory=dict)  # by ``group(meta)`` when asked (books by corpus)

    def add(self, other: Counts) -> None:
        self.documents += other.documents
        self.tokens += other.tokens
        self.bytes += other.bytes
        self.words += other.words
        self.per_document += other.per_document
        for name, counts in other.groups.items():
            self.groups.setdefault(name, Counts()).add(counts)


@dataclass(frozen=True)
class TokenizerChoice:
    """The tokenizer a command counts with (None: none available) and one line saying where it
    came from, or why there is none."""

    location: str | None
    says: str


def choose_tokenizer(option: str | None) -> TokenizerChoice:
    """``--tokenizer`` when given (fetched now: an unreachable one is one line before any work);
    else the GPT-NeoX-20B tokenizer in the model cache (where ``make demo`` puts it); else its
    download, when the network answers; else none, with the reason."""
    spec = catalog.NEOX_TOKENIZER
    if option:
        location = catalog.tokenizer_location(option)
        if not catalog.available_here(location):
            if storage.is_url(location) and not storage.exists(location):
                raise UsageError(f"--tokenizer: cannot reach {location} (offline?); pass a local tokenizer.json")
            catalog.fetch(location, posixpath.basename(location))
        return TokenizerChoice(location, f"tokenizer: {catalog.origin(location)}")
    cached = catalog.cached_copy(spec)
    if cached:
        return TokenizerChoice(cached, f"tokenizer: {spec.description} from {catalog.origin(cached)}")
    if storage.exists(spec.url):
        try:
            catalog.fetch(spec.url, posixpath.basename(spec.url))
        except catalog.ModelNotFound as error:
            return TokenizerChoice(None, f"tokens not counted: {error}; pass --tokenizer PATH")
        return TokenizerChoice(spec.url, f"tokenizer: {spec.description} from {catalog.origin(spec.url)}")
    return TokenizerChoice(None, f"tokens not counted: the {spec.description} is not in the model cache "
                           f"({catalog.cache_dir() / spec.filename}) and {spec.url} is unreachable (offline?); "
                           "pass --tokenizer PATH to a tokenizer.json (make demo puts one in the cache)")


def record_files(folder: str) -> list[str]:
    """The record files below a folder (local or gs://, its name taken literally), without dead
    letters, samples or staging."""
    root = folder.rstrip("/")
    return sorted(
        path for path in output_folder.list_files(root)
        if path.endswith(RECORD_SUFFIXES) and not any(p in path[len(root) :] for p in SKIPPED_PARTS)
    )


def read_records(path: str, max_line: int | None = BOUNDED) -> Iterator[dict]:
    """The records of one output file; a file that is cut, corrupt or not JSON lines, or holds a
    line longer than ``max_line`` bytes, raises :class:`SourceError` naming it (and the line)."""
    number = 0
    max_line = MAX_LINE_BYTES if max_line == BOUNDED else max_line
    try:
        with storage.open_range(path) as stream:
            for _, line in streams.iter_lines(streams.decompressed_chunks(stream, path), max_line):
                number += 1
                if line.strip():
                    record = json.loads(line)
                    if not isinstance(record, dict):
                        raise ValueError("not a JSON object")
                    yield record
    except (SourceError, ValueError, *streams.DECOMPRESSION_ERRORS) as error:
        where = f"line {number}" if isinstance(error, ValueError) else f"after line {number}"
        detail = str(error).removeprefix(f"{path}: ")
        raise SourceError(f"cannot read {path} ({where}): {detail}") from error


def count_texts(texts: list[str], counter, eod: bool) -> int:
    """Tokens of a batch of texts (plus one end-of-document token each when ``eod``)."""
    return sum(counter.count(texts)) + (len(texts) if eod else 0)


Group = Callable[[dict], str]


def count_file(path: str, tokenizer_location: str | None, eod: bool, group: Group | None = None,
               max_line: int | None = BOUNDED) -> Counts:
    """Documents, tokens and UTF-8 bytes of text in one record file (no tokens without a tokenizer).
    With ``group``, also per group of ``group(meta)``: words and each document's tokens."""
    tokenizer = load_token_counter(tokenizer_location) if tokenizer_location else None
    counts = Counts()
    batch: list[str] = []
    names: list[str] = []

    def flush() -> None:
        if group is None:
            counts.tokens += count_texts(batch, tokenizer, eod)
            return
        each = tokenizer.count(batch)
        for name, tokens in zip(names, each, strict=True):
            tokens += 1 if eod else 0
            counts.groups[name].tokens += tokens
            counts.groups[name].per_document.append(tokens)
            counts.tokens += tokens
        names.clear()

    for record in read_records(path, max_line):
        text = record.get("text", "")
        size = len(text.encode("utf-8", "surrogatepass"))
        counts.documents += 1
        counts.bytes += size
        if group is not None:
            name = group(record.get("meta") or {})
            part = counts.groups.setdefault(name, Counts())
            part.documents += 1
            part.bytes += size
            part.words += len(text.split())
            names.append(name)
        if tokenizer is None:
            continue
        batch.append(text)
        if len(batch) >= BATCH:
            flush()
            batch = []
    if batch:
        flush()
    return counts


def _count_job(job: tuple[str, str | None, bool, Group | None, int | None]) -> tuple[str, Counts]:
    path, tokenizer_location, eod, group, max_line = job
    return path, count_file(path, tokenizer_location, eod, group, max_line)


def count_files(paths: list[str], tokenizer_location: str | None, eod: bool, processes: int = 1,
                groups: dict[str, Group] | None = None, max_line: int | None = BOUNDED) -> dict[str, Counts]:
    """Counts per file, over ``processes`` worker processes (each loads the tokenizer once);
    ``groups`` maps a path prefix (a slice folder) to the grouping of its documents; lines past
    ``max_line`` bytes fail (None: a run's own output, bounded by its --max-record-mb)."""
    jobs = [(path, tokenizer_location, eod, _group_of(path, groups or {}), max_line) for path in paths]
    if processes <= 1 or len(jobs) <= 1:
        return dict(map(_count_job, jobs))
    import multiprocessing

    with multiprocessing.get_context("spawn").Pool(processes, initializer=_leave_interrupts_to_the_parent) as pool:
        return dict(pool.imap(_count_job, jobs))


def _group_of(path: str, groups: dict[str, Group]) -> Group | None:
    return next((group for prefix, group in groups.items() if path.startswith(prefix.rstrip("/") + "/")), None)


def _leave_interrupts_to_the_parent() -> None:
    """Ctrl-C reaches the whole process group: the parent ends the pool, its workers stay quiet."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)
