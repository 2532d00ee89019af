"""Compare a slice's output with RedPajama's, one document at a time, and explain every difference.

A :class:`Case` runs the slice through the real command line on the inputs RedPajama's code
read, indexes both outputs by a key that must be unique on each side (arXiv id, question
URL, (language, title), (repo, ref, path)) and compares each pair byte for byte
(``json.dumps`` of text and meta, key order included). A difference is explained only by
named :class:`Deviation`\\ s, each a row of the deviation table (docs/deviations.md), applied in order:

- a *switch* reruns the slice with ``--redpajama-compat RULE`` added to the rules before it,
  so RedPajama's behaviour comes from the product's own code; its ``check`` then verifies
  that what the rule changed in the document is what the row describes (a lost ``\\input``
  file is not "archive order", a glued word is not "layout"), so the default output, not
  only the compat one, is held to the row;
- an *emulated* row recomputes RedPajama's side with that row's behaviour, where
  RedPajama's output is itself computed here (GitHub, from the recipe);
- a *rewrite* maps both documents to a form in which exactly that difference no longer
  shows (meta keys we add, a title parsed as HTML, line breaks between blocks).

A document is *identical*, *explained* by the rows that changed it on the way to equality,
or *unexplained*: a check refused the change, or differences remain at the end.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import zstandard
from redpajama.pipelines.commands import cli

Doc = dict[str, Any] | None
Check = Callable[[Doc, Doc, "Situation"], "str | None"]
Rewrite = Callable[[Doc, Doc, "Situation"], tuple[Doc, Doc]]
TextMeta = Callable[[str], dict[str, Any]]
DEVIATIONS = Path(__file__).resolve().parents[2] / "docs" / "deviations.md"


class DuplicateKey(ValueError):
    """Two documents of one side share a key: joining them by key would lose one silently."""


@dataclass(frozen=True)
class Deviation:
    """One row of the deviation table (docs/deviations.md), as the comparison applies it."""

    row: str
    compat: str | None = None  # a --redpajama-compat rule ...
    check: Check | None = None  # ... and what its change to a document may be
    emulate: bool = False  # RedPajama's side recomputed with this row's behaviour
    rewrite: Rewrite | None = None

    def __post_init__(self):
        kinds = [self.compat is not None, self.emulate, self.rewrite is not None]
        assert sum(kinds) == 1, f"{self.row}: one of compat, emulate, rewrite"
        assert (self.check is not None) == (self.compat is not None), f"{self.row}: a switch needs its check"


class LazyContext(Mapping):
    """What checks and rewrites read from the inputs (papers, threads, pages), built on first use."""

    def __init__(self, build: Callable[[list[str]], Mapping], inputs: list[str]):
        self._build, self._inputs, self._data = build, inputs, None

    def _value(self) -> Mapping:
        if self._data is None:
            self._data = self._build(self._inputs)
        return self._data

    def __getitem__(self, key):
        return self._value()[key]

    def __iter__(self) -> Iterator:
        return iter(self._value())

    def __len__(self) -> int:
        return len(self._value())


@dataclass
class Situation:
    """What a check or rewrite knows besides the two documents."""

    key: Hashable
    context: Mapping
    text_meta: TextMeta | None  # meta the slice derives from a text (its language label)
    notes: list[str]

    def note(self, text: str) -> None:
        self.notes.append(text)

    def same_meta(self, before: Doc, after: Doc, changed: Iterable[str] = ()) -> str | None:
        """None if the two metas agree, key order included, apart from ``changed`` keys and from
        what the slice derives from the text, where each document's value is what its own text gives."""
        if before is None or after is None:
            return None
        if list(before["meta"].items()) == list(after["meta"].items()):
            return None
        skip = set(changed)
        derived = self.text_meta("").keys() if self.text_meta else ()
        first = [(k, v) for k, v in before["meta"].items() if k not in skip and k not in derived]
        second = [(k, v) for k, v in after["meta"].items() if k not in skip and k not in derived]
        if first != second:
            return f"meta changed: {dict(first)} vs {dict(second)}"
        for key in derived:
            if before["meta"].get(key) != after["meta"].get(key):
                for doc in (before, after):
                    expected = self.text_meta(doc["text"])[key]
                    if doc["meta"].get(key) != expected:
                        return f"meta {key} is {doc['meta'].get(key)!r} where its text gives {expected!r}"
        return None


@dataclass
class Case:
    """One slice, its inputs, RedPajama's output for them and the deviations that may explain differences."""

    slice: str
    inputs: list[str]
    # RedPajama's output: its JSONL, or computed here from the inputs with the emulated rows given
    reference: Path | Callable[[list[str], frozenset[str]], list[dict]]
    key: Callable[[dict], Hashable]
    deviations: list[Deviation]
    options: dict[str, list[str]] = field(default_factory=dict)  # deviation row -> options reproducing it
    arguments: list[str] = field(default_factory=list)  # further options of every run
    context: Callable[[list[str]], Mapping] = lambda inputs: {}
    text_meta: Callable[[], TextMeta] | None = None  # builds the function once, when first needed
    output_folder: str = ""


@dataclass
class Runs:
    """Every output a comparison reads, by key: RedPajama's, ours, each switch's, each emulation's."""

    reference: dict[Hashable, dict]
    ours: dict[Hashable, dict]
    variants: dict[str, dict[Hashable, dict]] = field(default_factory=dict)  # switch row -> our docs
    emulated: dict[str, dict[Hashable, dict]] = field(default_factory=dict)  # emulated row -> RedPajama's docs


@dataclass
class Result:
    slice: str
    compared: int = 0
    identical: int = 0
    explained: dict[Hashable, list[str]] = field(default_factory=dict)  # key -> deviations used
    unexplained: dict[Hashable, str] = field(default_factory=dict)  # key -> what is wrong
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


def index(docs: Iterable[dict], key: Callable[[dict], Hashable], side: str) -> dict[Hashable, dict]:
    """Documents by key; a key seen twice is an error, never a silent overwrite."""
    found: dict[Hashable, dict] = {}
    for doc in docs:
        name = key(doc)
        if name in found:
            raise DuplicateKey(f"two documents of {side} share the key {name!r}")
        found[name] = doc
    return found


def reference_lines(path: Path) -> list[dict]:
    """RedPajama's lines without the ``fidelity_unit`` key spliced in for us."""
    docs = []
    for line in path.read_text("utf-8").splitlines():
        doc = json.loads(line)
        doc.pop("fidelity_unit", None)
        docs.append(doc)
    return docs


def output_lines(folder: Path) -> list[dict]:
    """Every document a run wrote under ``folder`` (its ``_errors``, ``_dropped`` left out)."""
    docs = []
    for shard in sorted(folder.rglob("*.jsonl.zst")):
        if any(part.startswith("_") for part in shard.relative_to(folder).parts):
            continue
        with shard.open("rb") as handle:
            data = zstandard.ZstdDecompressor().stream_reader(handle).read().decode("utf-8")
        docs += [json.loads(line) for line in data.splitlines()]
    return docs


def run_slice(case: Case, output: Path, compat: list[str]) -> dict[Hashable, dict]:
    """Run the slice through the command line; its documents by key."""
    args = ["run", case.slice, "--input", *case.inputs, "--output", str(output), "--executor", "inprocess",
            "--count-tokens", "off"]
    for extra in [*case.options.values(), case.arguments]:
        args += extra
    if compat:
        args += ["--redpajama-compat", ",".join(compat)]
    code = cli.main(args)
    assert code == 0, f"redpajama {' '.join(args)} exited {code}"
    side = f"our run{' with ' + ','.join(compat) if compat else ''}"
    return index(output_lines(output / (case.output_folder or case.slice)), case.key, side)


def run(case: Case, workdir: Path) -> Runs:
    """RedPajama's documents, ours, and ours again with each switch added to those before it."""
    emulated_rows = [dev.row for dev in case.deviations if dev.emulate]
    if isinstance(case.reference, Path):
        assert not emulated_rows, "emulated rows need a computed reference"
        reference = index(reference_lines(case.reference), case.key, "RedPajama's output")
    else:
        reference = index(case.reference(case.inputs, frozenset()), case.key, "RedPajama's output")
    runs = Runs(reference, run_slice(case, workdir / "default", []))
    switches = [dev for dev in case.deviations if dev.compat]
    for number, dev in enumerate(switches):
        runs.variants[dev.row] = run_slice(case, workdir / f"compat-{number}", [d.compat for d in switches[: number + 1]])
    for number, row in enumerate(emulated_rows):
        docs = case.reference(case.inputs, frozenset(emulated_rows[: number + 1]))
        runs.emulated[row] = index(docs, case.key, f"RedPajama's output with {row}")
    return runs


def classify(case: Case, runs: Runs) -> Result:
    """Every document: identical, explained by named deviations, or unexplained (and why)."""
    ordered = [dev for dev in case.deviations if not dev.rewrite] + [dev for dev in case.deviations if dev.rewrite]
    assert case.deviations == ordered, "switches and emulated rows come before rewrites"
    context = LazyContext(case.context, case.inputs)
    text_meta = _once(case.text_meta) if case.text_meta else None
    result = Result(case.slice)
    for key in sorted(set(runs.reference) | set(runs.ours), key=repr):
        result.compared += 1
        ref, cur = runs.reference.get(key), runs.ours.get(key)
        if canonical(ref) == canonical(cur):
            result.identical += 1
            continue
        situation = Situation(key, context, text_meta, result.notes)
        used: list[str] = []
        for dev in case.deviations:
            problem = None
            if dev.compat:
                new_ref, new_cur = ref, runs.variants[dev.row].get(key)
                if canonical(new_cur) != canonical(cur):
                    problem = dev.check(cur, new_cur, situation)
            elif dev.emulate:
                new_ref, new_cur = runs.emulated[dev.row].get(key), cur
            else:
                new_ref, new_cur = dev.rewrite(ref, cur, situation)
            if problem:
                result.unexplained[key] = f"{dev.row}: {problem}"
                break
            if (canonical(new_ref), canonical(new_cur)) != (canonical(ref), canonical(cur)):
                used.append(dev.row)
            ref, cur = new_ref, new_cur
            if canonical(ref) == canonical(cur):
                result.explained[key] = used
                break
        else:
            result.unexplained[key] = first_difference(ref, cur)
    return result


def compare(case: Case, workdir: Path) -> Result:
    """Run the case (default, then once per switch) and classify every document."""
    return classify(case, run(case, workdir))


def _once(factory: Callable[[], TextMeta]) -> TextMeta:
    """``factory()`` built on first use, its answers remembered (the same texts come back)."""
    function: list[TextMeta] = []
    answers: dict[str, dict[str, Any]] = {}

    def text_meta(text: str) -> dict[str, Any]:
        if text not in answers:
            if not function:
                function.append(factory())
            answers[text] = function[0](text)
        return answers[text]

    return text_meta


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

    def rewrite(ref: Doc, ours: Doc, situation: Situation) -> tuple[Doc, Doc]:
        if ours is None:
            return ref, ours
        meta = {k: v for k, v in ours["meta"].items() if k not in keys}
        return ref, {"text": ours["text"], "meta": meta}

    return rewrite


def deviation_rows() -> dict[str, str]:
    """Deviation table rows of docs/deviations.md by id (the first column, in backticks)."""
    rows = {}
    for line in DEVIATIONS.read_text("utf-8").splitlines():
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
