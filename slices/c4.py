"""C4: allenai/c4 ``en`` reformatted to ``{"text", "meta"}`` (recipe §2), with the CommonCrawl overlap.

RedPajama changed nothing but the layout. Its ``*.json.gz`` glob also swept in the eight
validation files; here they are read only with ``--include-validation``. RedPajama never
compared C4 with its CommonCrawl slice: given ``--commoncrawl-output``, the documents whose
URL is in that output are counted (``matched`` in ``stats.json``), and dropped with
``--drop-commoncrawl-urls``.
"""

from __future__ import annotations

import posixpath
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass

from redpajama import manifests
from redpajama.core import storage
from redpajama.core.errors import UsageError
from redpajama.core.records import Drop, Failure, Record, ReferenceStep, StepResult, make_record
from redpajama.core.streams import json_row, numbered_lines
from redpajama.slices.base import Keyed, Slice, WorkUnit
from redpajama.slices.options import SliceOptions, option

VALIDATION = re.compile(r"c4-validation\.\d+-of-\d+")
OUTPUT_PATTERNS = ("*.jsonl.zst", "*/*.jsonl.zst")


def file_stem(path: str) -> str:
    """``.../c4-train.00000-of-01024.json.gz`` -> ``c4-train.00000-of-01024``."""
    name = posixpath.basename(path)
    for suffix in (".gz", ".zst", ".json", ".jsonl"):
        name = name.removesuffix(suffix)
    return name


def output_urls(path: str) -> Iterator[str | Failure]:
    """The ``meta.url`` of every record in one output shard (.jsonl or .jsonl.zst); a line that
    is not a record is a failure, and so is the rest of a shard that cannot be read on."""
    for item in numbered_lines(path):
        if isinstance(item, Failure):
            yield item
            continue
        number, line = item
        try:
            meta = json_row(line).get("meta", {})
            url = meta.get("url")
        except (ValueError, AttributeError) as error:  # not JSON, or not an object (with an object meta)
            yield Failure(path, f"line {number + 1}", "invalid_reference", f"{type(error).__name__}: {error}")
            continue
        if url and isinstance(url, str):
            yield url


def _overlap(drop: bool):
    def apply(record: Record, found: bool) -> StepResult:
        return Drop("url_in_commoncrawl") if found and drop else record

    return apply


@dataclass(frozen=True)
class C4Options(SliceOptions):
    include_validation: bool = option(False, "also read c4-validation files (RedPajama's glob included them by accident)")
    commoncrawl_output: str | None = option(
        None, "a CommonCrawl slice output (e.g. out/common_crawl): count C4 URLs found there", metavar="DIR")
    drop_commoncrawl_urls: bool = option(False, "with --commoncrawl-output: drop C4 documents whose URL is in it")
    mirror: str | None = option(None, "base URL replacing https://huggingface.co in the default sources")


class C4(Slice):
    name = "c4"
    summary = "allenai/c4 en, reformatted; overlap with the CommonCrawl output counted"
    Options = C4Options
    options: C4Options

    @classmethod
    def describe_sources(cls) -> str:
        manifest = manifests.load("c4")
        return (f"{manifest['train_files']} files {manifest['train']} (validation with --include-validation); "
                "local c4-*.json.gz files.")

    def default_inputs(self) -> list[str]:
        manifest = manifests.load("c4")
        urls = [manifest["train"].format(index=i) for i in range(manifest["train_files"])]
        if self.options.include_validation:
            urls += [manifest["validation"].format(index=i) for i in range(manifest["validation_files"])]
        if self.options.mirror:
            urls = [url.replace("https://huggingface.co", self.options.mirror.rstrip("/")) for url in urls]
        return urls

    def validate(self) -> None:
        output = self.options.commoncrawl_output
        if self.options.drop_commoncrawl_urls and not output:
            raise UsageError("--drop-commoncrawl-urls needs --commoncrawl-output")
        if output and not storage.exists(output):
            raise UsageError(f"--commoncrawl-output {output}: not found (run `redpajama run commoncrawl` first)")

    def steps(self) -> list:
        output = self.options.commoncrawl_output
        if not output:
            return []
        drop = self.options.drop_commoncrawl_urls
        return [
            ReferenceStep(
                name="commoncrawl_overlap",
                references=tuple(posixpath.join(output.rstrip("/"), pattern) for pattern in OUTPUT_PATTERNS),
                read_keys=output_urls,
                key=lambda record: record["meta"]["url"],
                apply=_overlap(drop),
                description="commoncrawl_overlap: count documents whose URL is in the CommonCrawl output"
                + (" and drop them" if drop else ""),
            )
        ]

    def step_descriptions(self) -> list[str]:
        return super().step_descriptions() or ["reformat only (RedPajama applied no filter)"]

    # --- reading -----------------------------------------------------------------------
    def plan(self, source: str) -> Iterator[WorkUnit | Failure]:
        if VALIDATION.search(posixpath.basename(source)) and not self.options.include_validation:
            print(f"  c4: skipping validation file {source} (--include-validation reads it)", file=sys.stderr)
            return
        yield WorkUnit(source)

    def read(self, unit: WorkUnit) -> Iterator[Keyed | Failure]:
        stem = file_stem(unit.source)
        for item in numbered_lines(unit.source, self.context.limits):
            yield item if isinstance(item, Failure) else self._record(unit.source, stem, *item)

    @staticmethod
    def _record(source: str, stem: str, number: int, line: bytes) -> Keyed | Failure:
        try:
            row = json_row(line)
            text, url, timestamp = row["text"], row["url"], row["timestamp"]
        except (ValueError, KeyError, TypeError) as error:
            return Failure(source, f"line {number + 1}", "invalid_record", f"{type(error).__name__}: {error}")
        wrong = [name for name, value in (("text", text), ("url", url), ("timestamp", timestamp)) if not isinstance(value, str)]
        if wrong:
            return Failure(source, f"line {number + 1}", "invalid_record", f"{', '.join(wrong)} not a string")
        record = make_record(text, timestamp=timestamp, url=url, language="en", source="c4", id=f"c4/{stem}/{number}")
        return f"{stem}|{number:09d}", record
