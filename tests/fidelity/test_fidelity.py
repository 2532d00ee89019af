"""Every document agrees with RedPajama's own code, or differs by a named, documented deviation."""

from __future__ import annotations

import pytest

from tests.conftest import SHARED, need
from tests.fidelity import cases
from tests.fidelity.harness import Result, classify, deviation_rows

pytestmark = pytest.mark.xdist_group("fidelity")  # one worker runs every case once (make test: --dist loadgroup)

# Papers with root documents besides the main one (a supplement, exercise solutions, referee
# responses), each of which the default output keeps.
SEVERAL_ROOTS = {"1308.0729", "sympy-paper"}


@pytest.fixture(scope="module")
def arxiv_result(arxiv_runs) -> Result:
    return classify(*arxiv_runs)


def test_arxiv(arxiv_result, fidelity_results):
    result = arxiv_result
    fidelity_results.append(result)
    # every paper differs at least by our meta.id; 1707.08043 (a Latin-1 file) is only ours
    assert result.compared == 8 and result.explained["1803.07574"] == ["arxiv-meta-added"]
    assert result.explained["1707.08043"][-1] == "arxiv-latin1"
    # two builds of one paper: one kept, the other's text is in it
    assert "arxiv-assembly" in result.explained["eqs-magnetic-dual-layer"]
    other = {key: problem for key, problem in result.unexplained.items()
             if key not in SEVERAL_ROOTS or not problem.startswith("arxiv-assembly: missing documents: ")}
    assert not other


def test_arxiv_keeps_every_root_document(arxiv_result):
    assert not {key: arxiv_result.unexplained[key] for key in SEVERAL_ROOTS if key in arxiv_result.unexplained}


def test_stackexchange(stackexchange_runs, fidelity_results):
    result = classify(*stackexchange_runs)
    fidelity_results.append(result)
    assert result.compared == 663 and not result.unexplained
    assert result.deviation_counts()["se-html-layout"] > 0 and result.deviation_counts()["se-answer-order"] > 0


def test_wikipedia(wikipedia_runs, fidelity_results):
    result = classify(*wikipedia_runs)
    fidelity_results.append(result)
    assert not result.unexplained
    assert result.compared == 106 and result.deviation_counts() == {"wiki-meta-added": 106, "wiki-empty-sections": 1}


def test_github(github_runs, fidelity_results):
    """BigQuery-shaped rows and repositories on disk against RedPajama's pipeline computed from the recipe."""
    case, runs = github_runs
    result = classify(case, runs)
    fidelity_results.append(result)
    assert not result.unexplained
    counts = result.deviation_counts()
    assert counts["github-dedup-order"] and counts["github-comment-lines"] and counts["github-local-repos"]
    kept = {(repo, path) for repo, _, path in runs.ours}
    assert ("acme/geo", "tools/run.sh") in kept and ("acme/geo", "web/app.min.js") not in kept
    assert {repo for repo, _ in kept} >= {"acme/geo", "pallets/click", "earwig/mwparserfromhell"}
    assert not any("py7zr" in repo for repo, _ in kept)  # LGPL: neither side has it
    assert any(repo.endswith("local-requests") for repo, _ in kept)
    assert result.explained[("acme/geo", "refs/heads/main", "tools/run.sh")] == ["github-comment-lines", "github-blob-id"]


def test_books_keep_and_drop_decisions(tmp_path, fidelity_results):
    """RedPajama's SimHash (character 6-grams, Hamming <= 5, keep the smallest id) against our
    MinHash LSH (word 5-gram Jaccard >= 0.8, keep the first of each cluster): every disagreement
    must be one the two rules explain, with the exact Jaccard of the two texts."""
    from redpajama.pipelines.commands import cli
    from redpajama.slices.books import DEFAULT_THRESHOLD, decode_book

    from tests.integration.helpers import dropped, records

    gutenberg = need(SHARED / "books" / "gutenberg")
    reference = cases.simhash_decisions(need(cases.REFERENCE / "books-simhash.tsv"))
    inputs = [f"{gutenberg}/*/*.txt", f"{gutenberg}/*/old/*.txt"]  # the 24 texts, named from one folder
    assert cli.main(["run", "books", "--input", *inputs, "--output", str(tmp_path), "--executor", "inprocess",
                     "--count-tokens", "off"]) == 0
    kept = {d["meta"]["id"].removeprefix("gutenberg/") for d in records(tmp_path / "books")}
    cluster = {d["meta"]["id"].removeprefix("gutenberg/"): d["meta"]["cluster"].split("|")[1]
               for d in dropped(tmp_path / "books")}
    text = lambda name: decode_book((gutenberg / name).read_bytes())  # noqa: E731
    assert kept | set(cluster) == set(reference)
    result = Result("books")
    for name, theirs in sorted(reference.items()):
        result.compared += 1
        if (name in kept) == theirs["kept"]:
            result.identical += 1
            continue
        other = theirs["because"][0] if name in kept else cluster[name]
        jaccard = cases.word_5gram_jaccard(text(name), text(other))
        ours = "kept" if name in kept else "dropped"
        result.notes.append(f"{name}: RedPajama {'kept' if theirs['kept'] else 'dropped'}, ours {ours}; "
                            f"word 5-gram Jaccard with {other} = {jaccard:.4f}")
        # kept by us: below our threshold; dropped by us: at or above it while SimHash saw more than 5 bits
        if name in kept and jaccard < DEFAULT_THRESHOLD or (name not in kept and jaccard >= DEFAULT_THRESHOLD
                                                             and theirs["nearest_hamming"] > 5):
            result.explained[name] = ["books-simhash"]
        else:
            result.unexplained[name] = result.notes[-1]
    fidelity_results.append(result)
    assert result.compared == 24 and not result.unexplained


@pytest.mark.parametrize("make", [cases.arxiv_case, cases.stackexchange_case, cases.wikipedia_case, cases.github_case])
def test_readme_deviation_rows_match_the_normalizers_one_to_one(make):
    case = make([])
    rows = deviation_rows()
    slice_rows = {row for row, slc in rows.items() if slc == case.slice}
    named = {dev.row for dev in case.deviations} | set(case.options)
    assert named <= set(rows), f"not in the deviation table (docs/deviations.md): {named - set(rows)}"
    assert slice_rows - named <= set(cases.NOT_PER_DOCUMENT), slice_rows - named - set(cases.NOT_PER_DOCUMENT)
