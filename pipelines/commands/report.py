"""``redpajama report OUT``: documents, tokens and bytes per slice against the published counts.

Works on any output folder (local or gs://) holding slice folders, ours or a RedPajama
download. For each slice: documents, tokens (GPT-NeoX-20B, EOD per document optional),
bytes, tokens per document, share of the total, RedPajama's and LLaMA's published figures,
and a projection to full scale: tokens x (units of the full input / units processed, from
the run's ``stats.json``) with a 95% bootstrap interval where the units allow one, and in
words how sure it is (see :mod:`redpajama.pipelines.commands.projection`). Books are projected by
book and by corpus, each against its own part of RedPajama's books. CommonCrawl's full count
is read from its listings, arXiv's from its source manifest (as the run recorded it, or given to
the report), GitHub's from the row count of the query's result table a ``--bigquery`` run read.
Writes ``report.md``, ``report.json`` and ``report.png``, and says which Wikipedia-reference
classifier a CommonCrawl run used.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from redpajama import manifests
from redpajama.core import storage
from redpajama.core.errors import SourceError
from redpajama.pipelines.commands import projection
from redpajama.pipelines.runs import output_folder
from redpajama.pipelines.runs.tokens import Counts, count_files, record_files
from redpajama.slices.base import Slice
from redpajama.slices.manifest import ReportTarget
from redpajama.slices.registry import registry


def slice_of_folder() -> dict[str, str]:
    """Folder name -> slice, for every slice: its folder, its name, and the folder RedPajama's
    download keeps it in (``book``)."""
    found: dict[str, str] = {}
    for name, cls in registry().items():
        release = cls.report_target().release_folder
        for folder in (cls.folder, name, *([release] if release else [])):
            found.setdefault(folder, name)
    return found


def report_order(names) -> list[str]:
    """Slices in the report's order: as RedPajama's table lists them, then the others by name."""
    slices = registry()
    return sorted(names, key=lambda name: (slices[name].report_target().row is None,
                                           slices[name].report_target().row or 0, name))


def slice_folders(output: str) -> dict[str, str]:
    """Slice name -> its folder, for the slice folders under ``output`` that hold records."""
    root = output.rstrip("/")
    known = slice_of_folder()
    found = {}
    for path in record_files(root):
        folder = path[len(root) + 1 :].split("/", 1)[0]
        if folder in known:
            found[known[folder]] = f"{root}/{folder}"
    return {name: found[name] for name in report_order(found)}


def _stats(folder: str) -> dict[str, Any] | None:
    path = output_folder.join(folder, output_folder.STATS)
    if not storage.exists(path):
        return None
    return read_json(path)


def read_json(path: str) -> dict[str, Any]:
    """A JSON object file of an output; one that is cut or not an object raises :class:`SourceError` naming it."""
    try:
        with storage.open_range(path) as handle:
            data = json.loads(handle.read().decode("utf-8"))
    except (SourceError, OSError, ValueError) as error:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        raise SourceError(f"cannot read {path}: {str(error).removeprefix(f'cannot open {path}: ')}") from error
    if not isinstance(data, dict):
        raise SourceError(f"cannot read {path}: not a JSON object")
    return data


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


def build_report(output: str, tokenizer: str | None, eod: bool = True, processes: int = 1, cc_mirror: str | None = None,
                 arxiv_manifest: str | None = None, arxiv_until: str | None = None,
                 tokenizer_says: str | None = None) -> dict[str, Any]:
    """Count every slice under ``output`` and compare it with ``manifests/targets.json``.

    Without a tokenizer the tokens come from each run's ``stats.json`` where the run counted
    them, else they are missing and ``tokenizer_says`` (why) is kept in the report.
    """
    from redpajama.models import catalog

    if tokenizer_says is None:
        tokenizer_says = f"tokenizer: {catalog.origin(tokenizer)}" if tokenizer else "tokens not counted: no tokenizer"
    targets = manifests.load("targets")
    slices = registry()
    folders = slice_folders(output)
    files = {name: record_files(folder) for name, folder in folders.items()}
    groups = {folder: slices[name].corpus for name, folder in folders.items()
              if slices[name].report_target().full_scale.get("corpora")}
    per_file = count_files([p for paths in files.values() for p in paths], tokenizer, eod, processes, groups)
    rows = []
    for name, folder in folders.items():
        counts = Counts()
        for path in files[name]:
            counts.add(per_file[path])
        stats = _stats(folder)
        tokens, tokens_from = _tokens(counts, stats, tokenizer, eod)
        target = slices[name].report_target()
        unit = target.full_scale
        published = target.redpajama_tokens
        share = target.llama_share
        row: dict[str, Any] = {
            "slice": name,
            "documents": counts.documents,
            "tokens": tokens,
            "tokens_from": tokens_from,
            "tokens_missing": None if tokens is not None else tokenizer_says,
            "bytes": counts.bytes,
            "tokens_per_document": round(tokens / counts.documents, 1) if counts.documents and tokens is not None else None,
            "redpajama_tokens": published,
            "llama_tokens_estimate": round(share * targets["llama"]["total_tokens"]) if share is not None else None,
            "unit": unit.get("unit"),
            "wikiref_classifier": ((stats or {}).get("recipe", {}).get("wikiref") or {}).get("recipe"),
        }
        if unit.get("corpora"):
            row.update(_by_corpus(folder, counts, stats, target, tokens_from, slices[name]))
        else:
            row.update(_projection(tokens, stats, target, cc_mirror, arxiv_manifest, arxiv_until))
        rows.append(row)
    total = sum(row["tokens"] or 0 for row in rows)
    for row in rows:
        row["share"] = round(row["tokens"] / total, 4) if total and row["tokens"] is not None else None
    return {
        "output": output,
        "tokenizer": tokenizer,
        "tokenizer_says": tokenizer_says,
        "eod_per_document": eod,
        "slices": rows,
        "total": {"documents": sum(r["documents"] for r in rows), "tokens": total if tokenizer or total else None,
                  "bytes": sum(r["bytes"] for r in rows)},
        "published": {"redpajama": targets["redpajama"]["source"], "llama": targets["llama"]["source"]},
        "minimum_units_for_an_interval": projection.MIN_UNITS,
    }


def _tokens(counts: Counts, stats: dict | None, tokenizer: str | None, eod: bool) -> tuple[int | None, str | None]:
    """The slice's tokens and where they come from: counted here, or the run's own count."""
    if tokenizer:
        return counts.tokens, "counted"
    counted = (stats or {}).get("tokens")
    how = (stats or {}).get("tokens_counted_with") or {}
    if counted is None or stats.get("kept") != counts.documents:
        return None, None
    if how.get("eod_per_document", True) and not eod:
        counted -= counts.documents
    return counted, f"stats.json (counted by the run with {how.get('tokenizer', 'its tokenizer')})"


def _projection(tokens: int | None, stats: dict | None, target: ReportTarget, cc_mirror: str | None,
                arxiv_manifest: str | None, arxiv_until: str | None) -> dict[str, Any]:
    """Full-scale projection of one slice, its interval and how sure it is, in words."""
    unit, published = target.full_scale, target.redpajama_tokens
    key = unit.get("stats_key", "planned")
    recorded = projection.from_run(stats)
    if recorded and not (unit.get("manifest") and arxiv_manifest):  # a source manifest given to the report wins
        full, key, unit = recorded[0], recorded[1], dict(unit, unit=recorded[2], per=recorded[2])
    else:
        full = projection.full_units(unit, target.source, cc_mirror, arxiv_manifest, arxiv_until) if unit else None
    processed = _units_processed(stats, key)
    count = full.count if full else None
    projected = tokens * count / processed if tokens and count and processed else None
    if projected is None:
        if tokens is None:
            why = "tokens not counted"
        elif full and not count:
            why = f"no full-scale count of {unit.get('unit', 'units')}: {full.source.removeprefix('unknown: ')}"
        elif not processed:
            why = "no stats.json: the units processed are unknown"
        else:
            why = "no full-scale count"
        spread = projection.Spread(None, None, f"no projection: {why}")
    elif unit.get("draw") == "chosen" and processed < count:
        spread = projection.Spread(None, None, "no interval")
    elif processed >= count:  # every unit read (a --bigquery run reads its whole result table)
        spread = projection.bootstrap([], processed, count, 1.0, unit.get("per", "units"))
    else:
        yields = _unit_yields(stats, key)
        if yields is None or not sum(yields):
            spread = projection.Spread(None, None, "no interval: the run recorded no kept bytes per unit")
        else:
            spread = projection.bootstrap(yields, processed, count, tokens / sum(yields), unit.get("per", "units"))
    notes = [spread.why] + ([unit["spread"]] if unit.get("spread") and projected is not None else [])
    return {
        "unit": unit.get("unit"),
        "units_processed": processed,
        "units_full_scale": count,
        "units_full_scale_source": full.source if full else None,
        "projected_tokens": round(projected) if projected else None,
        "projected_interval": list(spread.bounds) if spread.bounds else None,
        "projected_vs_redpajama": float(f"{projected / published:.4g}") if projected and published else None,
        "certainty": _sentences(notes),
    }


def _by_corpus(folder: str, counts: Counts, stats: dict | None, target: ReportTarget, tokens_from: str | None,
               slc: type[Slice]) -> dict[str, Any]:
    """Books: each corpus against its own part of RedPajama's books, by book; a corpus RedPajama's part of
    which cannot be rebuilt (Books3) as not reproducible, with the rest of RedPajama's tokens."""
    unit = target.full_scale
    processed, unattributed = _books_processed(folder, stats, counts.groups, slc.corpus)
    published = target.published_by_corpus
    parts = []
    estimated = None  # RedPajama's tokens of the part estimated from its words
    for corpus, spec in unit["corpora"].items():
        group = counts.groups.get(corpus)
        like = published.get(spec["like"], {})
        if group is None:
            if like.get("reproducible") is False:
                parts.append({"corpus": corpus, "label": spec["label"], "documents": 0, "tokens": None,
                              "reproducible": False, "certainty": f"not reproducible: {like['why']}"})
            continue
        tokens = group.tokens if tokens_from == "counted" else None
        part: dict[str, Any] = {"corpus": corpus, "label": spec["label"], "documents": group.documents,
                                "tokens": tokens, "bytes": group.bytes, "words": group.words,
                                "unit": spec["unit"], "units_processed": processed.get(corpus),
                                "units_full_scale": spec["count"], "reproducible": like.get("reproducible", True)}
        n = processed.get(corpus)
        if tokens is None or not n:
            why = "tokens per book not counted" if tokens is None else "no stats.json: the books processed are unknown"
            spread, projected = projection.Spread(None, None, f"no projection: {why}"), None
        else:
            projected = tokens * spec["count"] / n
            spread = projection.bootstrap(group.per_document, n, spec["count"], 1.0, unit.get("per", "units"))
        part["projected_tokens"] = round(projected) if projected else None
        part["projected_interval"] = list(spread.bounds) if spread.bounds else None
        notes = [spread.why, unit.get("spread", "") if projected else "", spec.get("note", ""), unattributed]
        if "words_read" in like and tokens is not None and group.words:
            estimated = like["words_read"] * tokens / group.words
            part["redpajama_tokens_estimate"] = round(estimated)
            notes.append(f"RedPajama's part is estimated from words: {like['words_note']} That is "
                         f"{like['words_read'] / 1e9:.2f} B words, at this run's {tokens / group.words:.3f} tokens per word")
        if like.get("reproducible") is False:
            notes.insert(0, f"not reproducible: {like['why']}")
        part["certainty"] = _sentences(notes)
        parts.append(part)
    for part in parts:
        if part["reproducible"] is False and estimated is not None:
            part["redpajama_tokens_estimate"] = round(target.redpajama_tokens - estimated)
        estimate = part.get("redpajama_tokens_estimate")
        projected = part.get("projected_tokens")
        part["projected_vs_redpajama"] = float(f"{projected / estimate:.4g}") if projected and estimate else None
    return {
        "units_processed": (stats or {}).get("read"),
        "units_full_scale": None,
        "units_full_scale_source": None,
        "unit": "books, by corpus",
        "projected_tokens": None,
        "projected_interval": None,
        "projected_vs_redpajama": None,
        "certainty": f"by corpus (rows below): {published['note']}",
        "parts": parts,
    }


def _books_processed(folder: str, stats: dict | None, groups: dict[str, Counts],
                     corpus_of: Callable[[dict], str | None]) -> tuple[dict[str, int], str]:
    """Books read per corpus: kept plus dropped (the kept rejects in ``_dropped/`` name their corpus);
    books dropped without a kept record go to the corpus when there is one, else are said to be left out."""
    from redpajama.pipelines.commands.show import dropped_reasons, records

    if not stats:
        return {}, ""
    dropped: dict[str, int] = {}
    for paths in dropped_reasons(folder).values():
        for path in paths:
            for _, record in records(path):
                corpus = corpus_of(record.get("meta") or {})
                dropped[corpus] = dropped.get(corpus, 0) + 1
    seen = {corpus: groups.get(corpus, Counts()).documents + dropped.get(corpus, 0)
            for corpus in {*groups, *dropped}}
    rest = stats.get("read", 0) - sum(seen.values())
    if len(seen) == 1:
        return {corpus: count + rest for corpus, count in seen.items()}, ""
    note = (f"{rest:,} books dropped without a kept record (exact duplicates, failures) name no corpus and are left "
            "out of the books processed." if rest else "")
    return seen, note


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
        f"{_sentence(report['tokenizer_says'])} Counted {eod}. Published: RedPajama ({report['published']['redpajama']}); "
        f"LLaMA share x 1.4 T ({report['published']['llama']}).",
        "",
        "| slice | documents | tokens | bytes | tokens/doc | share | RedPajama | LLaMA (est.) | units | projected (95 % "
        "interval) | projected / RedPajama |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: | ---: |",
    ]
    sure, notes = [], []
    for row in report["slices"]:
        share = f"{row['share']:.1%}" if row.get("share") is not None else "n/a"
        per_document = f"{row['tokens_per_document']:,}" if row.get("tokens_per_document") is not None else "n/a"
        lines.append(
            f"| {row['slice']} | {row['documents']:,} | {_human(row['tokens'])} | {_human(row['bytes'])}B | "
            f"{per_document} | {share} | {_human(row['redpajama_tokens'])} | {_human(row['llama_tokens_estimate'])} | "
            f"{_units(row)} | {_projected(row)} | {_ratio(row)} |"
        )
        sure.append(f"- **{row['slice']}**: {_sentence(row['certainty'])}")
        for part in row.get("parts", []):
            estimate = part.get("redpajama_tokens_estimate")
            size = f"{_human(part['bytes'])}B" if part.get("bytes") is not None else "n/a"
            published = f"{_human(estimate)} (est.)" if estimate else "n/a"
            lines.append(
                f"| {row['slice']}: {part['label']} | {part['documents']:,} | {_human(part['tokens'])} | {size} | | | "
                f"{published} | | {_units(part)} | {_projected(part)} | {_ratio(part)} |"
            )
            sure.append(f"  - {part['label']}: {_sentence(part['certainty'])}")
        if row.get("tokens_from") not in (None, "counted"):
            notes.append(f"- {row['slice']}: tokens from {row['tokens_from']}.")
        if row.get("tokens_missing"):
            notes.append(f"- {row['slice']}: {_sentence(row['tokens_missing'])}")
        if row.get("wikiref_classifier"):
            notes.append(f"- {row['slice']}: Wikipedia-reference classifier {row['wikiref_classifier']}.")
    total = report["total"]
    lines += ["", f"Total: {total['documents']:,} documents, {_human(total['tokens'])} tokens, {_human(total['bytes'])}B."]
    lines += ["", "## How sure each projection is", "",
              "Projected: tokens x full-scale units / units processed. The interval is a 95 % bootstrap over the units "
              f"processed and needs at least {report.get('minimum_units_for_an_interval', projection.MIN_UNITS)} of "
              "them: with fewer, a bootstrap interval comes out more than 10 % too narrow (with 2 units, a tenth of "
              "the right width).", "", *sure]
    if notes:
        lines += ["", "Notes:", *notes]
    return "\n".join(lines) + "\n"


def _sentence(text: str) -> str:
    text = text.strip()
    return text if text.endswith(".") else text + "."


def _sentences(parts: list[str]) -> str:
    return " ".join(_sentence(part) for part in parts if part and part.strip())


def _units(row: dict[str, Any]) -> str:
    processed, full = row.get("units_processed"), row.get("units_full_scale")
    done = f"{processed:,}" if processed is not None else "?"
    if full:
        return f"{done} of {full:,} {row['unit']}"
    if row.get("unit") and processed is not None:
        return f"{done} {row['unit']}" + ("" if row.get("parts") else "; full count unknown")
    return "n/a"


def _ratio(row: dict[str, Any]) -> str:
    return f"{row['projected_vs_redpajama']:.3g}" if row.get("projected_vs_redpajama") is not None else "n/a"


def _projected(row: dict[str, Any]) -> str:
    if row.get("reproducible") is False and row.get("tokens") is None:
        return "not reproducible"
    if row.get("parts"):
        return "by corpus"
    if row.get("projected_tokens") is None:
        return "n/a"
    spread = row.get("projected_interval")
    return _human(row["projected_tokens"]) + (f" ({_human(spread[0])}-{_human(spread[1])})" if spread else " (no interval)")


@dataclass
class Bar:
    """One group of the chart: this output's tokens (projected or measured) next to RedPajama's."""

    label: str
    ours: float | None
    projected: bool
    interval: list[int] | None
    published: float | None
    estimated: bool  # RedPajama's figure is an estimate of its part (books by corpus)
    note: str = ""


def chart_bars(report: dict[str, Any]) -> list[Bar]:
    """What :func:`chart` draws: a slice, or each corpus of a slice counted by corpus."""
    bars = []
    for row in report["slices"]:
        entries = [(f"{row['slice']}: {p['label']}", p, p.get("redpajama_tokens_estimate"), True)
                   for p in row.get("parts", [])] or [(row["slice"], row, row.get("redpajama_tokens"), False)]
        for label, entry, published, estimated in entries:
            projected = entry.get("projected_tokens")
            note = "not reproducible" if entry.get("reproducible") is False and not entry.get("tokens") else ""
            bars.append(Bar(label, projected or entry.get("tokens"), projected is not None,
                            entry.get("projected_interval"), published, estimated, note))
    return bars


def figure(report: dict[str, Any]):
    """The chart as a matplotlib figure: projected bars solid with their 95 % intervals, measured
    bars (no full-scale count) hatched, RedPajama's published counts grey, its estimated parts hatched."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    bars = chart_bars(report)
    figure, axis = plt.subplots(figsize=(max(7, 1.1 * len(bars)) + 3, 4.5))
    width = 0.38
    for index, bar in enumerate(bars):
        x = index - width / 2
        if bar.ours:
            axis.bar(x, bar.ours, width, color="tab:blue" if bar.projected else "white", edgecolor="tab:blue",
                     hatch="" if bar.projected else "//")
            if bar.interval:
                low, high = bar.interval
                axis.errorbar(x, bar.ours, yerr=[[max(bar.ours - low, 0)], [max(high - bar.ours, 0)]], fmt="none",
                              ecolor="black", capsize=4)
        elif bar.note:
            axis.annotate(bar.note, (x, 1), xycoords=("data", "axes fraction"), xytext=(0, -4),
                          textcoords="offset points", rotation=90, ha="center", va="top", fontsize=8)
        if bar.published:
            axis.bar(index + width / 2, bar.published, width, color="lightgrey" if bar.estimated else "grey",
                     edgecolor="grey", hatch="xx" if bar.estimated else "")
    from matplotlib.patches import Patch

    axis.legend(handles=[
        Patch(color="tab:blue", label="this output, projected to full scale"),
        Patch(facecolor="white", edgecolor="tab:blue", hatch="//", label="this output, measured (no projection)"),
        matplotlib.lines.Line2D([], [], color="black", marker="_", label="95 % interval"),
        Patch(color="grey", label="RedPajama published"),
        Patch(facecolor="lightgrey", edgecolor="grey", hatch="xx", label="RedPajama's part (estimated)"),
    ], fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    axis.set_xticks(list(range(len(bars))), [bar.label for bar in bars], rotation=25, ha="right", fontsize=8)
    axis.set_yscale("log")
    axis.set_ylabel("tokens")
    axis.set_title("Tokens per slice: this output against RedPajama")
    figure.tight_layout()
    return figure


def chart(report: dict[str, Any], path: str) -> None:
    """``report.png``: :func:`figure`, written to ``path``."""
    import matplotlib.pyplot as plt

    drawn = figure(report)
    with storage.create(path) as handle:
        drawn.savefig(handle, format="png", dpi=120)
    plt.close(drawn)


def write_report(report: dict[str, Any], output: str) -> list[str]:
    paths = [output_folder.join(output, name) for name in ("report.json", "report.md", "report.png")]
    output_folder.write_json(paths[0], report)
    with storage.create(paths[1]) as handle:
        handle.write(markdown(report).encode("utf-8"))
    chart(report, paths[2])
    return paths
