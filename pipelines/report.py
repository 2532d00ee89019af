"""``redpajama report OUT``: documents, tokens and bytes per slice against the published counts.

Works on any output folder (local or gs://) holding slice folders, ours or a RedPajama
download. For each slice: documents, tokens (GPT-NeoX-20B, EOD per document optional),
bytes, tokens per document, share of the total, RedPajama's and LLaMA's published figures,
and a projection to full scale: tokens x (units of the full input / units processed, from
the run's ``stats.json``) with a 95% bootstrap interval over the processed units (see
:mod:`redpajama.pipelines.projection`). CommonCrawl's full count is read from its
listings, arXiv's from its source manifest. Writes ``report.md``, ``report.json`` and
``report.png``, and says which Wikipedia-reference classifier a CommonCrawl run used.
"""

from __future__ import annotations

import json
from typing import Any

from apache_beam.io.filesystems import FileSystems
from redpajama import manifests
from redpajama.pipelines import io, projection
from redpajama.pipelines.tokens import SLICE_OF_FOLDER, Counts, count_files, record_files

SLICES = ("commoncrawl", "c4", "github", "books", "arxiv", "wikipedia", "stackexchange")


def slice_folders(output: str) -> dict[str, str]:
    """Slice name -> its folder, for the slice folders under ``output`` that hold records."""
    root = output.rstrip("/")
    found = {}
    for path in record_files(root):
        folder = path[len(root) + 1 :].split("/", 1)[0]
        slice_name = SLICE_OF_FOLDER.get(folder, folder)
        if slice_name in SLICES:
            found[slice_name] = f"{root}/{folder}"
    return dict(sorted(found.items(), key=lambda kv: SLICES.index(kv[0])))


def _stats(folder: str) -> dict[str, Any] | None:
    path = io.join(folder, io.STATS)
    if not FileSystems.exists(path):
        return None
    with FileSystems.open(path) as handle:
        return json.loads(handle.read())


def _units_processed(stats: dict | None, key: str) -> int | None:
    if not stats:
        return None
    if key == "read":
        return stats.get("read")
    units = stats.get("units", {})
    if key == "inputs":
        return units.get("inputs") or units.get("read")
    return units.get(key)


def _unit_yields(stats: dict | None, key: str) -> list[int] | None:
    """Kept bytes per processed unit (or per input file), when the run recorded them completely."""
    yields = (stats or {}).get("unit_yields")
    if not yields or yields.get("unattributed", [0, 0])[0] or key == "read":
        return None
    rows = yields["per_unit" if key == "planned" else "per_input"]
    return [size for _, size in rows]


def build_report(output: str, tokenizer: str, eod: bool = True, processes: int = 1, cc_mirror: str | None = None,
                 arxiv_manifest: str | None = None, arxiv_until: str | None = None) -> dict[str, Any]:
    """Count every slice under ``output`` and compare it with ``manifests/targets.json``."""
    targets = manifests.load("targets")
    folders = slice_folders(output)
    files = {name: record_files(folder) for name, folder in folders.items()}
    per_file = count_files([p for paths in files.values() for p in paths], tokenizer, eod, processes)
    rows = []
    for name, folder in folders.items():
        counts = Counts()
        for path in files[name]:
            counts.add(per_file[path])
        stats = _stats(folder)
        unit = targets["full_scale_units"].get(name, {})
        key = unit.get("stats_key", "planned")
        processed = _units_processed(stats, key)
        full = projection.full_units(name, unit, cc_mirror, arxiv_manifest, arxiv_until) if unit else None
        count = full.count if full else None
        projected = counts.tokens * count / processed if count and processed else None
        yields = _unit_yields(stats, key)
        spread = projection.interval(yields, processed, count, counts.tokens) if projected and yields is not None else None
        published = targets["redpajama"]["tokens"].get(name)
        rows.append({
            "slice": name,
            "documents": counts.documents,
            "tokens": counts.tokens,
            "bytes": counts.bytes,
            "tokens_per_document": round(counts.tokens / counts.documents, 1) if counts.documents else 0,
            "redpajama_tokens": published,
            "llama_tokens_estimate": round(targets["llama"]["sampling_share"][name] * targets["llama"]["total_tokens"]),
            "units_processed": processed,
            "units_full_scale": count,
            "units_full_scale_source": full.source if full else None,
            "unit": unit.get("unit"),
            "projected_tokens": round(projected) if projected else None,
            "projected_interval": list(spread) if spread else None,
            "projected_vs_redpajama": float(f"{projected / published:.4g}") if projected and published else None,
            "wikiref_classifier": ((stats or {}).get("recipe", {}).get("wikiref") or {}).get("recipe"),
        })
    total = sum(row["tokens"] for row in rows)
    for row in rows:
        row["share"] = round(row["tokens"] / total, 4) if total else 0
    return {
        "output": output,
        "tokenizer": tokenizer,
        "eod_per_document": eod,
        "slices": rows,
        "total": {"documents": sum(r["documents"] for r in rows), "tokens": total, "bytes": sum(r["bytes"] for r in rows)},
        "published": {"redpajama": targets["redpajama"]["source"], "llama": targets["llama"]["source"]},
    }


def _human(value: float | None) -> str:
    if value is None:
        return "n/a"
    for unit, size in (("T", 1e12), ("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(value) >= size:
            return f"{value / size:.2f} {unit}"
    return f"{value:.0f}"


def markdown(report: dict[str, Any]) -> str:
    eod = "with one EOD token per document" if report["eod_per_document"] else "without EOD tokens"
    lines = [
        f"# Token counts: {report['output']}",
        "",
        f"Tokenizer {report['tokenizer']}, {eod}. Published: RedPajama ({report['published']['redpajama']}); "
        f"LLaMA share x 1.4 T ({report['published']['llama']}).",
        "",
        "| slice | documents | tokens | bytes | tokens/doc | share | RedPajama | LLaMA (est.) | units | projected "
        "| projected / RedPajama |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: | ---: |",
    ]
    notes = []
    for row in report["slices"]:
        units = f"{row['units_processed']} of {row['units_full_scale']} {row['unit']}" if row["units_full_scale"] else (
            f"{row['units_processed']} ({row['unit']}; full count unknown)" if row["unit"] else "n/a")
        ratio = f"{row['projected_vs_redpajama']:.3g}" if row["projected_vs_redpajama"] is not None else "n/a"
        lines.append(
            f"| {row['slice']} | {row['documents']:,} | {_human(row['tokens'])} | {_human(row['bytes'])}B | "
            f"{row['tokens_per_document']:,} | {row['share']:.1%} | {_human(row['redpajama_tokens'])} | "
            f"{_human(row['llama_tokens_estimate'])} | {units} | {_projected(row)} | {ratio} |"
        )
        if row.get("units_full_scale_source") and not row["units_full_scale"]:
            notes.append(f"- {row['slice']}: full-scale units {row['units_full_scale_source'].rstrip('.')}.")
        if row.get("wikiref_classifier"):
            notes.append(f"- {row['slice']}: Wikipedia-reference classifier {row['wikiref_classifier']}.")
    total = report["total"]
    lines += ["", f"Total: {total['documents']:,} documents, {_human(total['tokens'])} tokens, {_human(total['bytes'])}B."]
    if notes:
        lines += ["", "Projected: tokens x full-scale units / units processed; in brackets the 95% bootstrap interval "
                  "over the processed units.", *notes]
    return "\n".join(lines) + "\n"


def _projected(row: dict[str, Any]) -> str:
    if row["projected_tokens"] is None:
        return "n/a"
    spread = row.get("projected_interval")
    return _human(row["projected_tokens"]) + (f" ({_human(spread[0])}-{_human(spread[1])})" if spread else "")


def chart(report: dict[str, Any], path: str) -> None:
    """Projected (or counted) tokens per slice next to RedPajama's published counts, log scale."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = report["slices"]
    names = [row["slice"] for row in rows]
    ours = [row["projected_tokens"] or row["tokens"] for row in rows]
    published = [row["redpajama_tokens"] or 0 for row in rows]
    figure, axis = plt.subplots(figsize=(8, 4))
    positions = range(len(names))
    axis.bar([p - 0.2 for p in positions], ours, width=0.4, label="this output (projected where known)")
    axis.bar([p + 0.2 for p in positions], published, width=0.4, label="RedPajama published")
    axis.set_xticks(list(positions), names, rotation=20)
    axis.set_yscale("log")
    axis.set_ylabel("tokens")
    axis.set_title("Tokens per slice")
    axis.legend()
    figure.tight_layout()
    with FileSystems.create(path) as handle:
        figure.savefig(handle, format="png", dpi=120)
    plt.close(figure)


def write_report(report: dict[str, Any], output: str) -> list[str]:
    paths = [io.join(output, name) for name in ("report.json", "report.md", "report.png")]
    io.write_json(paths[0], report)
    with FileSystems.create(paths[1]) as handle:
        handle.write(markdown(report).encode("utf-8"))
    chart(report, paths[2])
    return paths
