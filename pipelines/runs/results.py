"""What an executor left in ``_temporary/`` besides the output, read into ``stats.json``: failures
by reason, the slice's counts, kept documents and bytes per unit, the output's tokens."""

from __future__ import annotations

import json
import posixpath
import sys
from typing import Any

from redpajama.core import storage
from redpajama.pipelines.runs import sink
from redpajama.pipelines.runs.output_folder import ERRORS, INPUT_LIST, STATS, UNIT_YIELDS, clear, join, write_json
from redpajama.slices.base import UnitId


def failure_reasons(errors: str) -> dict[str, int]:
    """Failed units by reason (as ``failed`` counts them), from the dead-letter files a run wrote."""
    found: dict[str, int] = {}
    for path in storage.list_files(errors):
        with storage.open_range(path) as handle:
            for line in handle:
                if line.strip():
                    failure = json.loads(line)
                    reason = failure.get("reason", "unknown")
                    found[reason] = found.get(reason, 0) + int(failure.get("units", 1))
    return dict(sorted(found.items()))


def keep_only_errors(temporary: str, stats: dict[str, Any]) -> None:
    """A run whose every unit failed commits nothing: ``_temporary/`` keeps only its dead letters
    and its stats, for the user to read, until the next run discards them."""
    errors = join(temporary, ERRORS) + "/"
    for path in storage.list_files(temporary):
        if not path.startswith(errors):
            storage.delete(path)
    write_json(join(temporary, STATS), stats)


def counts_summary(folder: str, name: str, top: int = 100) -> dict[str, Any]:
    """What ``<name>-counts-*.txt`` holds: every key when there are few, else the most frequent."""
    counts: list[tuple[str, int]] = []
    for path in storage.list_files(folder):
        if posixpath.basename(path).startswith(f"{name}-counts-"):
            with storage.open_range(path) as handle:
                for line in handle.read().decode("utf-8").splitlines():
                    key, _, count = line.rpartition("\t")
                    counts.append((key, int(count)))
    counts.sort(key=lambda kv: (-kv[1], kv[0]))
    return {"distinct": len(counts), "total": sum(c for _, c in counts),
            ("all" if len(counts) <= top else f"top_{top}"): dict(counts[:top])}


def take_unit_yields(temporary: str) -> dict[str, Any]:
    """Kept documents and bytes per unit and per input file that kept any (each sorted by unit:
    input, then start), from the ``_unit_yields`` bookkeeping, which is then removed: it is not output."""
    folder = join(temporary, UNIT_YIELDS)
    found: dict[UnitId | None, list[int]] = {}
    for path in storage.list_files(folder):
        with storage.open_range(path) as handle:
            for line in handle.read().splitlines():
                unit, documents, size = sink.read_unit_yield(line)
                found[unit] = [documents, size]
    clear(folder)
    unattributed = found.pop(None, [0, 0])
    per_input: dict[str, list[int]] = {}
    for unit, (documents, size) in found.items():
        total = per_input.setdefault(unit.source, [0, 0])
        total[0] += documents
        total[1] += size
    return {"per_unit": [found[unit] for unit in sorted(found)],
            "per_input": [per_input[name] for name in sorted(per_input)], "unattributed": unattributed}


def drop_input_list(folder: str) -> None:
    """Remove the input list a run with many inputs wrote for its workers: bookkeeping, not output."""
    path = join(folder, INPUT_LIST)
    if storage.exists(path):
        storage.delete(path)


def count_output_tokens(folder: str, tokenizer: str, processes: int) -> dict[str, Any]:
    """GPT-NeoX tokens of the written records (one EOD per document, as RedPajama counted)."""
    from redpajama.pipelines.runs.tokens import count_files, record_files

    print(f"counting tokens with {tokenizer}", file=sys.stderr, flush=True)
    counts = count_files(record_files(folder), tokenizer, eod=True, processes=processes, max_line=None)
    return {"tokens": sum(c.tokens for c in counts.values()),
            "tokens_counted_with": {"tokenizer": tokenizer, "eod_per_document": True}}
