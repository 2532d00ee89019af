"""The fidelity cases: RedPajama's outputs in ``../shared/reference/rpv1-outputs`` and how to
explain every difference from ours (each deviation is a row of the README's table)."""

from __future__ import annotations

import gzip
import io
import re
import tarfile
from pathlib import Path

from redpajama.filters.html import redpajama_text
from redpajama.slices.base import WorkUnit
from redpajama.slices.stackexchange import StackExchange

from tests.conftest import SHARED
from tests.fidelity.harness import Case, Deviation, Doc, drop_meta_keys

REFERENCE = SHARED.parent / "reference" / "rpv1-outputs"
ARXIV_MTIME = 1577836800  # 2020-01-01T00:00:00Z, as the reference tar was packed


# --- arXiv -----------------------------------------------------------------------------------------


def pack_arxiv_bulk(folders: list[Path], target: Path, yymm: str = "2001") -> Path:
    """A bulk source tar as the reference run had it: ``YYMM/<id>.gz`` per paper, each a gzipped tar
    of the folder's files in sorted path order; ``<id>`` is the arXiv id a folder name starts with."""
    with tarfile.open(target, "w") as outer:
        for folder in folders:
            match = re.match(r"^(\d{4}\.\d{4,5})", folder.name)
            inner = io.BytesIO()
            with tarfile.open(fileobj=inner, mode="w") as tar:
                for path in sorted(p for p in folder.rglob("*") if p.is_file()):
                    _add(tar, str(path.relative_to(folder)), path.read_bytes())
            _add(outer, f"{yymm}/{match.group(1) if match else folder.name}.gz", gzip.compress(inner.getvalue(), mtime=0))
    return target


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mtime = len(data), ARXIV_MTIME
    tar.addfile(info, io.BytesIO(data))


def arxiv_case(inputs: list[str], reference: Path = REFERENCE / "arxiv.jsonl") -> Case:
    return Case(
        slice="arxiv",
        inputs=inputs,
        reference=reference,
        key=lambda doc: doc["meta"]["arxiv_id"],
        deviations=[
            Deviation("arxiv-assembly", compat="archive-order"),
            Deviation("arxiv-cut-regexes", compat="cut-regexes"),
            Deviation("arxiv-comments", compat="comments"),
            Deviation("arxiv-macros", compat="macros"),
            Deviation("arxiv-latin1", compat="utf8-only"),
            Deviation("arxiv-meta-added", rewrite=drop_meta_keys("id")),
        ],
    )


# --- StackExchange -------------------------------------------------------------------------------


def question_titles(inputs: list[str]) -> dict[str, str]:
    """Question URL -> title, read from the same inputs with the slice's own reader."""
    titles = {}
    for source in inputs:
        for item in StackExchange().read(WorkUnit(source)):
            if isinstance(item, tuple) and item[1]["meta"]["_parent_id"] is None:
                meta = item[1]["meta"]
                titles[f"https://{meta['_site']}/questions/{meta['_post_id']}"] = meta["_title"]
    return titles


def title_as_html(ref: Doc, ours: Doc, titles: dict[str, str]) -> tuple[Doc, Doc]:
    """RedPajama parsed ``Title Body`` as HTML together: markup-like text in a title vanished."""
    if ours is None:
        return ref, ours
    title = titles.get(ours["meta"]["url"], "")
    head = f"Q: {title} "
    if not ours["text"].startswith(head):
        return ref, ours
    return ref, {"text": "Q: " + redpajama_text(title + " ") + ours["text"][len(head):], "meta": ours["meta"]}


EMPTY_ITEM = re.compile(r"(?m)^(A: )?[ \t]*\*[ \t]*$")  # a list marker with nothing after it
WHITESPACE = re.compile(r"\s+")


def layout_free(text: str) -> str:
    """The text without whitespace and without list markers that mark nothing."""
    return WHITESPACE.sub("", EMPTY_ITEM.sub(r"\1", text))


def html_layout(ref: Doc, ours: Doc, titles) -> tuple[Doc, Doc]:
    """Line breaks, block separation and list markers: compared on every other character.

    Where the layout differs, fastText sees different text: the language label follows.
    """
    if ref is None or ours is None or ref["text"] == ours["text"]:
        return ref, ours
    ref_text, our_text = layout_free(ref["text"]), layout_free(ours["text"])
    if ref_text != our_text:
        return ref, ours
    our_meta = dict(ours["meta"], language=ref["meta"]["language"])
    return {"text": ref_text, "meta": ref["meta"]}, {"text": our_text, "meta": our_meta}


def stackexchange_case(inputs: list[str], reference: Path = REFERENCE / "stackexchange-beer.jsonl") -> Case:
    return Case(
        slice="stackexchange",
        inputs=inputs,
        reference=reference,
        key=lambda doc: doc["meta"]["url"],
        deviations=[
            Deviation("se-answer-order", compat="answer-order"),
            Deviation("se-score-strings", compat="score-strings"),
            Deviation("se-meta-added", rewrite=drop_meta_keys("id", "language_score")),
            Deviation("se-title-html", rewrite=title_as_html),
            Deviation("se-html-layout", rewrite=html_layout),
        ],
        options={"se-timestamp": ["--dump-date", "2023-03-29"]},
        context=question_titles,
    )


# --- Wikipedia -------------------------------------------------------------------------------------


def wikipedia_case(inputs: list[str], reference: Path = REFERENCE / "wikipedia-en.jsonl") -> Case:
    return Case(
        slice="wikipedia",
        inputs=inputs,
        reference=reference,
        key=lambda doc: doc["meta"]["title"],
        deviations=[
            Deviation("wiki-empty-sections", compat="empty-sections"),
            Deviation("wiki-namespace-names", compat="namespace-table"),
            Deviation("wiki-meta-added", rewrite=drop_meta_keys("source", "id")),
        ],
        options={"wiki-timestamp": ["--dump-date", "20230320"]},
    )


# README rows of these slices that no document of a comparison can show, and why.
NOT_PER_DOCUMENT = {
    "se-site-selection": "chooses which archives are read, not what a document holds",
    "se-memory": "how the join runs, not what it produces",
    "wiki-truncated-dump": "only a cut dump shows it (RedPajama's job failed there)",
}


# --- Books -----------------------------------------------------------------------------------------


def simhash_decisions(path: Path, prefix: str = "shared/data/books/gutenberg/") -> dict[str, dict]:
    """RedPajama's SimHash decision per text, by path relative to the Gutenberg folder."""
    import csv

    with path.open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    decisions = {}
    for row in rows:
        because = [item.removeprefix(prefix) for item in row["removed_because_of(smaller-id near dups)"].split(",") if item]
        nearest = row["nearest_other(unit:hamming)"].rsplit(":", 1)
        decisions[row["unit"].removeprefix(prefix)] = {"kept": row["decision"] == "kept", "because": because,
                                                       "nearest_hamming": int(nearest[1]) if len(nearest) == 2 else None}
    return decisions


def word_5gram_jaccard(a: str, b: str) -> float:
    """Exact Jaccard of two texts' lower-cased word 5-gram sets (what the Books slice thresholds)."""
    from redpajama.dedup.minhash import words

    def grams(text: str) -> set:
        w = words(text)
        return {tuple(w[i : i + 5]) for i in range(len(w) - 4)}

    first, second = grams(a), grams(b)
    return len(first & second) / len(first | second) if first | second else 1.0
