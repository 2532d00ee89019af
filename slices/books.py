"""Books: PG-19 (and Books3 where a user has it) with exact and MinHash near-duplicate removal (recipe §4).

RedPajama used SimHash (character 6-grams, Hamming distance <= 5) with two bugs: PG-19
and Books3 ids collided, and 602 PG-19 training books were overwritten. Here every corpus
has its own ids, exact duplicates (same normalised text) go first, then near-duplicates by
MinHash LSH at word 5-gram Jaccard >= 0.8: two books sharing 90 % of their content each
(the LLaMA rule) have Jaccard 0.9 / 1.1 = 0.82.
"""

from __future__ import annotations

import hashlib
import posixpath
import re
from collections.abc import Iterator
from dataclasses import dataclass

from redpajama.core import storage, streams
from redpajama.core.errors import LimitExceeded, SourceError, UsageError, failure_reason
from redpajama.core.records import Failure, NearDedupStep, input_columns, make_record
from redpajama.core.streams import DECOMPRESSION_ERRORS, json_row, numbered_lines
from redpajama.dedup import exact
from redpajama.dedup.minhash import words
from redpajama.slices.base import Keyed, Slice, WorkUnit
from redpajama.slices.options import SliceOptions, option

TITLE_LINE = re.compile(r"^\s*Title:\s*(.+?)\s*$", re.MULTILINE)
DEFAULT_THRESHOLD = 0.8


def decode_book(data: bytes) -> str:
    """UTF-8 (with or without BOM), else Latin-1: older Gutenberg files are ISO-8859-1."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("latin-1")


CONTROL = re.compile(r"[\x00-\x08\x0e-\x1f\x7f-\x9f]")
MAX_CONTROL_SHARE = 0.01  # real text, UTF-8 or Latin-1, has next to none; binary read as Latin-1 ~20 %


def not_text(text: str) -> str | None:
    """Why a decoded file is not a book (NUL and control bytes: binary, or mojibake), or None."""
    sample = text[:1 << 20]
    if not sample:
        return "no text"
    share = len(CONTROL.findall(sample)) / len(sample)
    return f"{share:.0%} control characters: binary, not text" if share > MAX_CONTROL_SHARE else None


def json_value(value):
    """A parquet cell as JSON can hold it (dates as ISO strings); raises TypeError for bytes and the like."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, list | tuple):
        return [json_value(item) for item in value]
    if isinstance(value, dict):
        return {str(key): json_value(item) for key, item in value.items()}
    if hasattr(value, "isoformat"):
        return value.isoformat()
    raise TypeError(f"a {type(value).__name__} column cannot be written as JSON")


def normalized_digest(text: str) -> str:
    """Exact-duplicate key: the book's words, lower-cased, whatever the encoding or layout."""
    return hashlib.sha1(" ".join(words(text)).encode("utf-8")).hexdigest()


def file_stem(path: str) -> str:
    name = posixpath.basename(path)
    for suffix in (".gz", ".zst", ".xz", ".jsonl", ".json", ".parquet", ".txt"):
        name = name.removesuffix(suffix)
    return name


CORPORA = ("pg19", "gutenberg", "books3")


def corpus_of(meta: dict) -> str:
    """The corpus of a book record, ours (``meta.source``) or RedPajama's (PG-19 rows keep
    ``short_book_title``/``publication_date``/``url``, Books3 rows only ``title``)."""
    source = meta.get("source")
    if source in CORPORA:
        return source
    return "pg19" if any(key in meta for key in ("short_book_title", "publication_date", "url")) else "books3"


@dataclass(frozen=True)
class BooksOptions(SliceOptions):
    threshold: float = option(DEFAULT_THRESHOLD, "word 5-gram Jaccard at which books are near-duplicates")
    num_perm: int = option(128, "MinHash permutations")
    no_verify: bool = option(False, "skip the exact Jaccard check of candidate pairs")
    max_bucket: int = option(1000, "cap on documents per LSH bucket")


class Books(Slice):
    name = "books"
    summary = "PG-19 / Gutenberg texts (and Books3 if given), exact + MinHash near-duplicate removal"
    shard_name = "book"  # RedPajama's name for its book shards
    Options = BooksOptions
    options: BooksOptions

    @staticmethod
    def corpus(meta: dict) -> str:
        return corpus_of(meta)

    @classmethod
    def describe_sources(cls) -> str:
        return ("PG-19 as published (rows short_book_title, publication_date, url, text; JSONL or parquet), "
                "Books3-format JSONL (title, text), or plain Project Gutenberg .txt files.")

    def default_inputs(self) -> list[str]:
        raise UsageError("books needs --input: PG-19 files (JSONL or parquet), Books3 JSONL, or Gutenberg .txt files")

    def validate(self) -> None:
        threshold = self.options.threshold
        if not 0 < threshold <= 1:
            raise UsageError(f"--threshold must be in (0, 1], got {threshold}")

    def steps(self) -> list:
        return [
            exact.keep_first_step(
                "exact_dedup",
                key=lambda record: normalized_digest(record["text"]),
                reason="exact_duplicate",
                description="exact_dedup: same words (lower-cased) = same book, keep the first by (corpus, file, row)",
            ),
            NearDedupStep(
                name="near_dedup",
                text=lambda record: record["text"],
                threshold=self.options.threshold,
                num_perm=self.options.num_perm,
                verify=not self.options.no_verify,
                max_bucket=self.options.max_bucket,
                description="near_dedup: MinHash LSH on word 5-grams, exact Jaccard check, connected components; "
                "keep the first of each cluster",
            ),
        ]

    # --- reading -----------------------------------------------------------------------
    def read(self, unit: WorkUnit) -> Iterator[Keyed | Failure]:
        source = unit.source
        name = source.lower()
        if name.endswith(".parquet"):
            yield from self._read_parquet(source)
        elif re.search(r"\.jsonl?(\.(gz|zst|xz))?$", name):
            yield from self._read_jsonl(source)
        else:
            yield from self._read_text(source)

    def _read_text(self, source: str) -> Iterator[Keyed | Failure]:
        try:
            data = self._whole_file(source)
        except SourceError as error:
            yield Failure(source, "whole file", failure_reason(error), str(error))
            return
        except DECOMPRESSION_ERRORS as error:
            yield Failure(source, "whole file", "unreadable_input", f"{type(error).__name__}: {error}")
            return
        if not data.strip():
            yield Failure(source, "whole file", "empty_input", "no text (an empty file)")
            return
        text = decode_book(data)
        problem = not_text(text)
        if problem:
            yield Failure(source, "whole file", "not_text", problem)
            return
        title = TITLE_LINE.search(text[:20_000])
        path = self.relative_name(source)
        record = make_record(text, title=title.group(1) if title else file_stem(source), source="gutenberg",
                             id=f"gutenberg/{path}")
        yield f"gutenberg|{path}|{0:09d}", record

    def _whole_file(self, source: str) -> bytes:
        """The decompressed file, at most ``max_record_bytes`` of it (a book is one record)."""
        parts, size = [], 0
        with storage.open_range(source) as stream:
            for chunk in streams.decompressed_chunks(stream, source, limits=self.context.limits):
                size += len(chunk)
                if size > self.context.limits.max_record_bytes:
                    raise LimitExceeded("record_too_large",
                                                f"more than {self.context.limits.max_record_bytes >> 20} MB of text")
                parts.append(chunk)
        return b"".join(parts)

    def _read_jsonl(self, source: str) -> Iterator[Keyed | Failure]:
        stem = file_stem(source)
        for item in numbered_lines(source, self.context.limits):
            yield item if isinstance(item, Failure) else self._row(source, stem, *item)

    def _row(self, source: str, stem: str, number: int, line: bytes) -> Keyed | Failure:
        try:
            row = json_row(line)
        except ValueError as error:
            return Failure(source, f"line {number + 1}", "invalid_record", f"{type(error).__name__}: {error}")
        if not isinstance(row, dict) or not isinstance(row.get("text"), str):
            return Failure(source, f"line {number + 1}", "invalid_record", "not an object with a string text")
        return self._book(row.pop("text"), row, stem, number)

    def _read_parquet(self, source: str) -> Iterator[Keyed | Failure]:
        import pyarrow.parquet as pq

        stem = file_stem(source)
        number = 0
        try:
            with storage.open_range(source) as stream:
                table = pq.ParquetFile(stream)
                for batch in table.iter_batches(batch_size=64):
                    for row in batch.to_pylist():
                        text = row.pop("text", None)
                        try:
                            columns = {key: json_value(value) for key, value in row.items()}
                        except TypeError as error:
                            yield Failure(source, f"row {number}", "invalid_record", str(error))
                        else:
                            if isinstance(text, str):
                                yield self._book(text, columns, stem, number)
                            else:
                                yield Failure(source, f"row {number}", "invalid_record", "no text")
                        number += 1
        except SourceError as error:
            yield Failure(source, f"after row {number}", failure_reason(error), str(error))
        except Exception as error:  # pyarrow raises its own error types for damaged files
            yield Failure(source, f"after row {number}", "unreadable_input", f"{type(error).__name__}: {error}")

    @staticmethod
    def _book(text: str, row: dict, stem: str, number: int) -> Keyed:
        """PG-19 rows keep their columns; Books3 rows their title. Ids are per corpus and file;
        a column named ``source``, ``id`` or ``_...`` keeps its value as ``row_source``, ``row_id``, ``row__...``."""
        corpus = "pg19" if "short_book_title" in row or "url" in row else "books3"
        meta = input_columns({key: value for key, value in row.items() if key != "meta"}, reserved=("source", "id"))
        meta.update(source=corpus, id=f"{corpus}/{stem}/{number}")
        record = make_record(text, **meta)
        return f"{corpus}|{stem}|{number:09d}", record
