"""The fidelity cases: RedPajama's outputs in ``../shared/reference/rpv1-outputs`` (for GitHub,
computed from the recipe) and how every difference from ours is explained (each deviation is
a row of the deviation table (docs/deviations.md); see each slice's module for what its checks allow)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from redpajama.filters.langid import LanguageTagger
from redpajama.models import catalog

from tests.conftest import SHARED
from tests.fidelity import arxiv, github, stackexchange, wikipedia
from tests.fidelity.harness import Case, Deviation, drop_meta_keys

REFERENCE = SHARED.parent / "reference" / "rpv1-outputs"
TOKENIZER = SHARED / "models" / "gpt-neox-20b" / "20B_tokenizer.json"


def _tagger() -> LanguageTagger:
    tagger = LanguageTagger(catalog.locate(catalog.LID, None))
    tagger.setup()
    return tagger


def arxiv_language():
    """RedPajama's arXiv label: lid.176 on the lower-cased text, tabs and newlines as spaces."""
    tagger = _tagger()
    return lambda text: {"language": tagger.predict(text.lower().replace("\t", " "))[0]}


def stackexchange_language():
    """lid.176 on the text with newlines as spaces: the label and its score."""
    tagger = _tagger()

    def text_meta(text: str) -> dict:
        language, score = tagger.predict(text)
        return {"language": language, "language_score": score}

    return text_meta


def arxiv_case(inputs: list[str], reference: Path = REFERENCE / "arxiv.jsonl") -> Case:
    return Case(
        slice="arxiv",
        inputs=inputs,
        reference=reference,
        key=lambda doc: doc["meta"]["arxiv_id"],
        deviations=[
            Deviation("arxiv-assembly", compat="archive-order", check=arxiv.check_assembly),
            Deviation("arxiv-cut-regexes", compat="cut-regexes", check=arxiv.check_cut),
            Deviation("arxiv-comments", compat="comments", check=arxiv.check_comments),
            Deviation("arxiv-macros", compat="macros", check=arxiv.check_macros),
            Deviation("arxiv-latin1", compat="utf8-only", check=arxiv.check_latin1),
            Deviation("arxiv-meta-added", rewrite=drop_meta_keys("id")),
        ],
        context=arxiv.read_papers,
        text_meta=arxiv_language,
    )


def stackexchange_case(inputs: list[str], reference: Path = REFERENCE / "stackexchange-beer.jsonl") -> Case:
    return Case(
        slice="stackexchange",
        inputs=inputs,
        reference=reference,
        key=lambda doc: doc["meta"]["url"],
        deviations=[
            Deviation("se-answer-order", compat="answer-order", check=stackexchange.check_answer_order),
            Deviation("se-score-strings", compat="score-strings", check=stackexchange.check_score_strings),
            Deviation("se-meta-added", rewrite=drop_meta_keys("id", "language_score")),
            Deviation("se-title-html", rewrite=stackexchange.title_as_html),
            Deviation("se-html-layout", rewrite=stackexchange.html_layout),
        ],
        options={"se-timestamp": ["--dump-date", "2023-03-29"]},
        context=stackexchange.read_threads,
        text_meta=stackexchange_language,
    )


def wikipedia_case(inputs: list[str], reference: Path = REFERENCE / "wikipedia-en.jsonl") -> Case:
    return Case(
        slice="wikipedia",
        inputs=inputs,
        reference=reference,
        key=wikipedia.page_key,
        deviations=[
            Deviation("wiki-empty-sections", compat="empty-sections", check=wikipedia.check_empty_sections),
            Deviation("wiki-namespace-names", compat="namespace-table", check=wikipedia.check_namespace_names),
            Deviation("wiki-meta-added", rewrite=drop_meta_keys("source", "id")),
        ],
        options={"wiki-timestamp": ["--dump-date", "20230320"]},
        context=wikipedia.read_pages,
    )


def github_case(inputs: list[str], licenses: Mapping[str, str | None] | None = None,
                tokenizer: Path = TOKENIZER) -> Case:
    """``licenses``: what GitHub gives each local repository (folder -> BigQuery licence key)."""
    return Case(
        slice="github",
        inputs=inputs,
        reference=github.reference(licenses or {}, str(tokenizer)),
        key=github.file_key,
        deviations=[
            Deviation("github-dedup-order", emulate=True),
            Deviation("github-comment-lines", emulate=True),
            Deviation("github-blob-id", rewrite=github.blob_id),
            Deviation("github-local-repos", rewrite=drop_meta_keys("license_confidence")),
        ],
        arguments=["--tokenizer", str(tokenizer)],
    )


# Deviation rows of these slices that no document of a comparison can show, and why.
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
