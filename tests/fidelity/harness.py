"""Compare a slice's output with what RedPajama's own code wrote, one document at a time.

A :class:`Case` runs the slice through the real command line on the inputs RedPajama's
code read, joins both outputs by a key (arXiv id, question URL, title) and compares each
pair byte for byte (``json.dumps`` of text and meta, key order included). A difference is
explained only by a named :class:`Deviation`, each of which is a row of the README's
deviation table:

- a *switch* deviation reruns the slice with ``--redpajama-compat RULE`` added to the rules
  of the switches before it, so RedPajama's behaviour comes from the product's own code;
- a *rewrite* deviation maps both documents to a form in which the deviation no longer
  shows (dropping meta keys we add, comparing text without its layout whitespace).

Switches apply first, in order, then rewrites. A document is *identical*, *explained* by
the deviations that changed it on the way to equality, or *unexplained*.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import zstandard
from redpajama.pipelines import cli

Doc = dict[str, Any] | None
Rewrite = Callable[[Doc, Doc, Any], tuple[Doc, Doc]]
README = Path(__file__).resolve().parents[2] / "README.md"


@dataclass(frozen=True)
class Deviation:
    """One row of the README's deviation table, as the comparison applies it."""

    row: str
    compat: str | None = None
    rewrite: Rewrite | None = None


@dataclass
class Case:
    """One slice, its inputs, RedPajama's output for them and the deviations that may explain differences."""

    slice: str
    inputs: list[str]
    reference: Path
    key: Callable[[dict], str]
    deviations: list[Deviation]
    options: dict[str, list[str]] = field(default_factory=dict)  # README row -> options reproducing it
    context: Callable[[list[str]], Any] = lambda inputs: None
    output_folder: str = ""


@dataclass
class Result:
    slice: str
    compared: int = 0
    identical: int = 0
    explained: dict[str, list[str]] = field(default_factory=dict)  # key -> deviations used
    unexplained: dict[str, str] = field(default_factory=dict)  # key -> first difference
    notes: list[str] = field(default_factory=list)  # printed under the slice's row

    def table_row(self) -> str:
        return (f"{self.slice:<14} {self.compared:>8} {self.identical:>10} {len(self.explained):>22} "
                f"{len(self.unexplained):>12}")

    def deviation_counts(self) -> Counter:
        return Counter(row for used in self.explained.values() for row in used)


TABLE_HEADER = f"{'slice':<14} {'compared':>8} {'identical':>10} {'after named deviations':>22} {'unexplained':>12}"


def canonical(doc: Doc) -> str | None:
    """What RedPajama's writer would print for ``doc`` (``json.dumps`` defaults, key order kept)."""
    return None if doc is None else json.dumps({"text": doc["text"], "meta": doc["meta"]})


def reference_docs(path: Path, key: Callable[[dict], str]) -> dict[str, dict]:
    """RedPajama's lines without the ``fidelity_unit`` key spliced in for us."""
    docs = {}
    for line in path.read_text("utf-8").splitlines():
        doc = json.loads(line)
        doc.pop("fidelity_unit", None)
        docs[key(doc)] = doc
    return docs


def run_slice(case: Case, output: Path, compat: list[str]) -> dict[str, dict]:
    """Run the slice through the command line; its documents by key."""
    args = ["run", case.slice, "--input", *case.inputs, "--output", str(output), "--workers", "1",
            "--count-tokens", "off"]
    for extra in case.options.values():
        args += extra
    if compat:
        args += ["--redpajama-compat", ",".join(compat)]
    code = cli.main(args)
    assert code == 0, f"redpajama {' '.join(args)} exited {code}"
    docs = {}
    folder = output / (case.output_folder or case.slice)
    for shard in sorted(folder.rglob("*.jsonl.zst")):
        if any(part.startswith("_") for part in shard.relative_to(folder).parts):
            continue
        with shard.open("rb") as handle:
            data = zstandard.ZstdDecompressor().stream_reader(handle).read().decode("utf-8")
        for line in data.splitlines():
            doc = json.loads(line)
            docs[case.key(doc)] = doc
    return docs


def compare(case: Case, workdir: Path) -> Result:
    """Run the case (default, then once per switch) and classify every document."""
    reference = reference_docs(case.reference, case.key)
    ours = run_slice(case, workdir / "default", [])
    switches = [dev for dev in case.deviations if dev.compat]
    rewrites = [dev for dev in case.deviations if not dev.compat]
    assert case.deviations == switches + rewrites, "switch deviations come first"
    variants = {}
    for index, dev in enumerate(switches):
        rules = [d.compat for d in switches[: index + 1]]
        variants[dev.row] = run_slice(case, workdir / f"compat-{index}", rules)
    context = case.context(case.inputs)
    result = Result(case.slice)
    for key in sorted(set(reference) | set(ours)):
        result.compared += 1
        ref, cur = reference.get(key), ours.get(key)
        if canonical(ref) == canonical(cur):
            result.identical += 1
            continue
        used: list[str] = []
        for dev in case.deviations:
            if dev.compat:
                new_ref, new_cur = ref, variants[dev.row].get(key)
            else:
                new_ref, new_cur = dev.rewrite(ref, cur, context)
            if (canonical(new_ref), canonical(new_cur)) != (canonical(ref), canonical(cur)):
                used.append(dev.row)
            ref, cur = new_ref, new_cur
            if canonical(ref) == canonical(cur):
                result.explained[key] = used
                break
        else:
            result.unexplained[key] = first_difference(ref, cur)
    return result


def first_difference(ref: Doc, ours: Doc) -> str:
    if ref is None or ours is None:
        return "only in ours" if ref is None else "only in RedPajama's output"
    if ref["meta"] != ours["meta"]:
        return f"meta: {ref['meta']} vs {ours['meta']}"
    a, b = ref["text"], ours["text"]
    at = next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b)))
    return f"text at {at}: {a[max(0, at - 40):at + 40]!r} vs {b[max(0, at - 40):at + 40]!r}"


# --- rewrites shared by slices ------------------------------------------------------------------


def drop_meta_keys(*keys: str) -> Rewrite:
    """Our meta keys that RedPajama did not write (a stable id, a score) are left out."""

    def rewrite(ref: Doc, ours: Doc, context) -> tuple[Doc, Doc]:
        if ours is None:
            return ref, ours
        meta = {k: v for k, v in ours["meta"].items() if k not in keys}
        return ref, {"text": ours["text"], "meta": meta}

    return rewrite


def readme_rows() -> dict[str, str]:
    """Deviation table rows of the README by id (the first column, in backticks)."""
    rows = {}
    for line in README.read_text("utf-8").splitlines():
        match = re.match(r"^\|\s*`([a-z0-9-]+)`\s*\|\s*([a-z0-9]+)\s*\|", line)
        if match:
            rows[match.group(1)] = match.group(2)
    return rows


def report(results: list[Result]) -> str:
    lines = [TABLE_HEADER]
    for result in results:
        lines.append(result.table_row())
        for row, count in sorted(result.deviation_counts().items()):
            lines.append(f"    {row}: {count}")
        lines += [f"    {note}" for note in result.notes]
        for key, difference in list(result.unexplained.items())[:10]:
            lines.append(f"    UNEXPLAINED {key}: {difference}")
    return "\n".join(lines)
