"""Token counting with the GPT-NeoX-20B tokenizer (exact ``tokenizers`` counts, see
:mod:`redpajama.filters.token_count`), and reading outputs.

RedPajama counted with GPT-NeoX's ``preprocess_data.py`` and ``--append-eod``: one extra
token per document. ``eod=True`` does the same. Output folders are read whatever wrote
them: this project's ``.jsonl.zst`` shards or a RedPajama download's ``.jsonl``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass

from apache_beam.io.filesystems import FileSystems
from redpajama.core import storage, streams
from redpajama.models import catalog

SKIPPED_PARTS = ("/_errors/", "/_dropped/", "/_temporary/")
RECORD_SUFFIXES = (".jsonl", ".jsonl.zst", ".jsonl.gz", ".json.gz", ".jsonl.xz")
BATCH = 256
# Output folder names -> slice names (RedPajama's download layout uses common_crawl and book).
SLICE_OF_FOLDER = {"common_crawl": "commoncrawl", "book": "books"}


@dataclass
class Counts:
    documents: int = 0
    tokens: int = 0
    bytes: int = 0

    def add(self, other: Counts) -> None:
        self.documents += other.documents
        self.tokens += other.tokens
        self.bytes += other.bytes


def record_files(folder: str) -> list[str]:
    """The record files below a folder (local or gs://), without dead letters, samples or staging."""
    root = folder.rstrip("/")
    matched = FileSystems.match([root + "/**"])[0].metadata_list
    return sorted(
        m.path for m in matched
        if m.path.endswith(RECORD_SUFFIXES) and not any(p in m.path[len(root) :] for p in SKIPPED_PARTS)
    )


def read_records(path: str) -> Iterator[dict]:
    with storage.open_range(path) as stream:
        for _, line in streams.iter_lines(streams.decompressed_chunks(stream, path)):
            if line.strip():
                yield json.loads(line)


def count_texts(texts: list[str], counter, eod: bool) -> int:
    """Tokens of a batch of texts (plus one end-of-document token each when ``eod``)."""
    return sum(counter.count(texts)) + (len(texts) if eod else 0)


def count_file(path: str, tokenizer_location: str, eod: bool) -> Counts:
    """Documents, tokens and UTF-8 bytes of text in one record file."""
    tokenizer = catalog.load_token_counter(tokenizer_location)
    counts = Counts()
    batch: list[str] = []
    for record in read_records(path):
        text = record.get("text", "")
        counts.documents += 1
        counts.bytes += len(text.encode("utf-8", "surrogatepass"))
        batch.append(text)
        if len(batch) >= BATCH:
            counts.tokens += count_texts(batch, tokenizer, eod)
            batch = []
    if batch:
        counts.tokens += count_texts(batch, tokenizer, eod)
    return counts


def _count_job(job: tuple[str, str, bool]) -> tuple[str, Counts]:
    path, tokenizer_location, eod = job
    return path, count_file(path, tokenizer_location, eod)


def count_files(paths: list[str], tokenizer_location: str, eod: bool, processes: int = 1) -> dict[str, Counts]:
    """Counts per file, over ``processes`` worker processes (each loads the tokenizer once)."""
    jobs = [(path, tokenizer_location, eod) for path in paths]
    if processes <= 1 or len(jobs) <= 1:
        return dict(map(_count_job, jobs))
    import multiprocessing

    with multiprocessing.get_context("spawn").Pool(processes, initializer=_leave_interrupts_to_the_parent) as pool:
        return dict(pool.imap(_count_job, jobs))


def _leave_interrupts_to_the_parent() -> None:
    """Ctrl-C reaches the whole process group: the parent ends the pool, its workers stay quiet."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)
