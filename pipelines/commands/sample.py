"""``redpajama sample OUT --dest DIR``: a deterministic subset, like RedPajama-Data-1T-Sample.

Each document is kept when a seeded hash of its id (or of its text, for records without
one) falls below the slice's fraction: no global shuffle, one streaming pass, the same
subset every time. ``--fraction`` applies to every slice (the 1T-Sample took 0.1 %);
``--tokens N`` splits a token budget by RedPajama's published slice proportions, using
each slice's token count (from ``report.json`` when present, else counted).
"""

from __future__ import annotations

import json
import os
from typing import Any

from redpajama.core import storage
from redpajama.core.errors import SourceError, UsageError
from redpajama.filters.token_count import load_token_counter
from redpajama.pipelines.commands.report import read_json, slice_folders
from redpajama.pipelines.runs import output_folder
from redpajama.pipelines.runs.rejects import selected
from redpajama.pipelines.runs.tokens import BATCH, Counts, count_texts, read_records, record_files
from redpajama.slices.registry import registry


def slice_tokens(output: str, folders: dict[str, str], tokenizer: str) -> dict[str, int]:
    """Tokens per slice (one EOD per document): from ``report.json`` when it covers the slice, else counted."""
    known: dict[str, int] = {}
    report_path = output_folder.join(output, "report.json")
    if storage.exists(report_path):
        report = read_json(report_path)
        if report.get("eod_per_document", True):
            try:
                known = {row["slice"]: row["tokens"] for row in report["slices"] if row.get("tokens") is not None}
            except (KeyError, TypeError, AttributeError) as error:
                raise SourceError(f"cannot read {report_path}: no slices with their tokens") from error
    from redpajama.pipelines.runs.tokens import count_files

    for name, folder in folders.items():
        if name not in known:
            known[name] = sum(c.tokens for c in count_files(record_files(folder), tokenizer, True).values())
    return known


def published_tokens() -> dict[str, float]:
    """RedPajama's published tokens of each slice that has them (its report target)."""
    return {name: cls.report_target().redpajama_tokens for name, cls in registry().items()
            if cls.report_target().redpajama_tokens is not None}


def shares_of_budget(tokens: int, available: dict[str, int]) -> dict[str, float]:
    """The tokens each slice present should give: ``tokens`` split in RedPajama's published proportions
    (a slice RedPajama did not publish gives none)."""
    published = published_tokens()
    total = sum(published[name] for name in available if name in published)
    return {name: tokens * published[name] / total if name in published else 0.0 for name in available}


def fractions_for_budget(tokens: int, available: dict[str, int]) -> dict[str, float]:
    """Per-slice fractions that spend ``tokens`` in RedPajama's published proportions."""
    return {name: min(1.0, share / available[name]) if available[name] else 0.0
            for name, share in shares_of_budget(tokens, available).items()}


SAMPLING_SLACK = 0.02  # a seeded selection of whole documents lands near its target, not on it


def shortfall(asked: int, available: dict[str, int], delivered: dict[str, int]) -> list[str]:
    """Why a ``--tokens`` sample gave less than asked, slice by slice (empty when it did not)."""
    total = sum(delivered.values())
    if total >= asked * (1 - SAMPLING_SLACK):
        return []
    reasons, off = [], []
    for name, share in shares_of_budget(asked, available).items():
        have = available[name]
        if have < share:
            reasons.append(f"{name} holds {have:,} tokens, less than its share of {round(share):,}: all of it taken")
        elif delivered.get(name, 0) < share * (1 - SAMPLING_SLACK):
            off.append(f"{name} {delivered.get(name, 0):,} of its {round(share):,}")
    if off:
        reasons.append(f"{', '.join(off)}: documents are drawn whole by a seeded hash, so a slice of few or long "
                       "documents lands off its share")
    missing = sorted(set(published_tokens()) - set(available))
    if missing and reasons:
        reasons.append(f"the budget was split among the slices present only ({', '.join(missing)}: no output here), "
                       "which raises each one's share")
    return reasons


def check_dest(output: str, dest: str) -> None:
    """Refuse a ``--dest`` inside a slice folder: the sample would be read as that slice's output
    (by this very sample, which then never ends) and is a file no run wrote there."""
    for folder in slice_folders(output).values():
        if _inside(dest, folder):
            raise UsageError(f"--dest {dest} is inside the slice folder {folder}: the sample would be read as "
                             "its output; choose a --dest outside the slice folders")


def _inside(path: str, folder: str) -> bool:
    if "://" not in path and "://" not in folder:
        path, folder = os.path.realpath(path), os.path.realpath(folder)
    path, folder = path.rstrip("/"), folder.rstrip("/")
    return path == folder or path.startswith(folder + "/")


def sample(output: str, dest: str, fractions: dict[str, float], seed: int, tokenizer: str | None,
           asked: int | None = None, available: dict[str, int] | None = None) -> dict[str, Any]:
    """Write ``<dest>/<slice>_sample.jsonl`` for every slice and ``sample_report.json``; with a token
    budget (``asked``, split over the ``available`` tokens), what it delivered and why it fell short.
    A sample that fails part way (a cut shard) removes what it wrote."""
    check_dest(output, dest)
    written: list[str] = []
    try:
        return _sample(output, dest, fractions, seed, tokenizer, asked, available, written)
    except BaseException:
        for path in written:
            if storage.exists(path):
                output_folder.delete_file(path)
        raise


def _sample(output: str, dest: str, fractions: dict[str, float], seed: int, tokenizer: str | None,
            asked: int | None, available: dict[str, int] | None, written: list[str]) -> dict[str, Any]:
    folders = slice_folders(output)
    loaded = load_token_counter(tokenizer) if tokenizer else None
    report: dict[str, Any] = {"output": output, "seed": seed, "slices": []}
    for name, folder in folders.items():
        fraction = fractions.get(name, fractions.get("*", 0.0))
        counts, read = Counts(), 0
        batch: list[str] = []
        path = output_folder.join(dest, f"{name}_sample.jsonl")
        written.append(path)
        with storage.create(path) as handle:
            for source in record_files(folder):
                for record in read_records(source):
                    read += 1
                    if not selected(record, fraction, seed):
                        continue
                    handle.write(json.dumps(record, ensure_ascii=False).encode("utf-8") + b"\n")
                    counts.documents += 1
                    counts.bytes += len(record["text"].encode("utf-8", "surrogatepass"))
                    if loaded is not None:
                        batch.append(record["text"])
                        if len(batch) >= BATCH:
                            counts.tokens += count_texts(batch, loaded, True)
                            batch = []
        if loaded is not None and batch:
            counts.tokens += count_texts(batch, loaded, True)
        report["slices"].append({"slice": name, "fraction": fraction, "read": read, "documents": counts.documents,
                                 "bytes": counts.bytes, "tokens": counts.tokens if loaded else None, "file": path})
    if asked is not None and loaded is not None:
        delivered = {row["slice"]: row["tokens"] for row in report["slices"]}
        report["budget"] = {"asked": asked, "delivered": sum(delivered.values()),
                            "short_because": shortfall(asked, available or {}, delivered)}
    written.append(output_folder.join(dest, "sample_report.json"))
    output_folder.write_json(written[-1], report)
    return report
