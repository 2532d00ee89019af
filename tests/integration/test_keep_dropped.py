"""``--keep-dropped`` on real slices: the kept output byte for byte the same, every step's rejects in
``_dropped/<step>/<reason>/`` with the scores it measured, and ``show --dropped`` reading them."""

import json
import shutil

import pytest
from redpajama.pipelines.commands.cli import main
from redpajama.pipelines.runs.rejects import selected
from redpajama.slices.books import Books

from bench.books_sample import GUTENBERG, plant, sample_books
from tests.conftest import CC_WET, need
from tests.integration.helpers import run
from tests.integration.test_commoncrawl import slice_for
from tests.integration.test_github import package_repo, slice_
from tests.unit.test_keep_dropped import kept_files, rejects


def _by_reason(stats) -> dict[str, int]:
    return {f"{step['name']}/{reason}": count for step in stats["steps"] for reason, count in step["dropped"].items()}


def _check_counted(outcome, kept: dict[str, list[dict]], fraction: float = 1.0) -> None:
    """Every reject a step counted is kept (or the fraction's share), and stats.json says how many."""
    dropped = _by_reason(outcome.stats)
    summary = outcome.stats["dropped_kept"]
    assert summary["fraction"] == fraction and summary["of"] == sum(dropped.values())
    assert {name: entry["kept"] for name, entry in summary["by_reason"].items() if entry["kept"]} == {
        name: len(docs) for name, docs in kept.items()}
    if fraction == 1.0:
        assert {name: len(docs) for name, docs in kept.items()} == dropped


def _show(capsys, *argv) -> list[dict]:
    assert main(["show", *map(str, argv), "--json", "--n", "1000"]) == 0
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


def test_github_rejects_carry_the_licence_and_the_measured_values(tmp_path, capsys):
    click = package_repo(tmp_path / "click", "click", "click")
    lgpl = package_repo(tmp_path / "py7zr", "py7zr", "py7zr")  # LGPL-2.1: not allowed
    fork = tmp_path / "aaa-fork"
    fork.mkdir()
    shutil.copy(click / "LICENSE", fork / "LICENSE")
    shutil.copy(click / "core.py", fork / "core.py")  # click's own copy is the duplicate
    (fork / "wide.py").write_text("x = '" + "a" * 1500 + "'\n")
    (fork / "symbols.py").write_text("== -- ++ ;\n" * 50)
    inputs = [click, lgpl, fork]
    plain = run(slice_(), inputs, tmp_path / "plain", workers=1)
    every = run(slice_(), inputs, tmp_path / "every", keep_dropped=1.0)
    assert kept_files(every.slice_dir) == kept_files(plain.slice_dir) and len(kept_files(plain.slice_dir)) > 1
    kept = rejects(every.slice_dir)
    _check_counted(every, kept)
    assert {"select_files/license_not_allowed", "select_files/skipped_path", "exact_dedup/duplicate_content",
            "code_quality/max_line_length", "code_quality/alnum_prop"} <= set(kept)
    assert {doc["meta"]["license"] for doc in kept["select_files/license_not_allowed"]} == {"lgpl-2.1"}
    duplicate = next(d for d in kept["exact_dedup/duplicate_content"] if d["meta"]["path"] == "core.py")
    assert duplicate["meta"]["repo_name"] == "click" and duplicate["meta"]["duplicate_of"] == "github/aaa-fork//core.py"
    assert duplicate["text"] == (click / "core.py").read_text()  # as it reached the step, before cleaning
    wide = next(d for d in kept["code_quality/max_line_length"] if d["meta"]["path"] == "wide.py")
    assert wide["meta"]["max_line_length"] == 1506
    assert all(d["meta"]["alnum_prop"] < 0.25 for d in kept["code_quality/alnum_prop"])
    for doc in kept.get("code_quality/alpha_per_token", []):
        assert doc["meta"]["alpha_per_token"] < 1.5
    shown = _show(capsys, every.slice_dir, "--dropped", "license_not_allowed", "--where", "meta.path~\\.py$")
    assert shown and all(doc["meta"]["license"] == "lgpl-2.1" for doc in shown)


def test_books_near_and_exact_duplicates_kept_whole_with_their_cluster(tmp_path, capsys):
    need(GUTENBERG)
    plant(tmp_path / "planted")
    copy = tmp_path / "planted" / "exact-copy-of-46-0.txt"
    shutil.copy(GUTENBERG / "A-Christmas-Carol_46" / "46-0.txt", copy)
    paths = sample_books() + sorted((tmp_path / "planted").glob("*.txt"))
    plain = run(Books(), paths, tmp_path / "plain", workers=1)
    every = run(Books(), paths, tmp_path / "every", keep_dropped=1.0)
    assert kept_files(every.slice_dir) == kept_files(plain.slice_dir)
    kept = rejects(every.slice_dir)
    _check_counted(every, kept)
    assert sorted(kept) == ["exact_dedup/exact_duplicate", "near_dedup/near_duplicate"]
    [exact] = kept["exact_dedup/exact_duplicate"]
    pair = sorted([exact["meta"]["id"], exact["meta"]["duplicate_of"]], key=lambda name: name.rsplit("/", 1)[1])
    assert pair[0].endswith("/46-0.txt") and pair[1].endswith("/exact-copy-of-46-0.txt")  # first by order key kept
    near = kept["near_dedup/near_duplicate"]
    assert len(near) == every.stats["dropped"]["near_duplicate"] >= 3
    assert all(doc["meta"]["cluster"].startswith("gutenberg|") and len(doc["text"]) > 100_000 for doc in near)
    assert not list((tmp_path / "every" / "book" / "_dropped").glob("*.jsonl.zst"))  # whole books, not 1,000 characters
    shown = _show(capsys, every.slice_dir, "--dropped", "near_duplicate")
    assert sorted(doc["meta"]["id"] for doc in shown) == sorted(doc["meta"]["id"] for doc in near)


@pytest.fixture(scope="module")
def cc_inputs(tmp_path_factory):
    later = tmp_path_factory.mktemp("cc-inputs") / "CC-MAIN-2020-05-copy.warc.wet.gz"
    shutil.copy(need(CC_WET[0]), later)  # a later snapshot: its documents are digest duplicates
    return [CC_WET[0], later]


def test_commoncrawl_rejects_of_every_step_with_their_scores(built_models, cc_inputs, tmp_path, capsys):
    plain = run(slice_for(built_models), cc_inputs, tmp_path / "plain")
    every = run(slice_for(built_models), cc_inputs, tmp_path / "every", keep_dropped=1.0)
    assert kept_files(every.slice_dir) == kept_files(plain.slice_dir)
    kept = rejects(every.slice_dir)
    _check_counted(every, kept)
    assert {"parse/too_short", "line_dedup/duplicate_lines", "language_id/language_not_kept",
            "language_id/language_score_below_threshold", "perplexity/bucket_tail", "digest_dedup/duplicate_digest",
            "wikiref/wiki_prob_below_threshold"} <= set(kept)
    assert all(len(doc["text"]) < 300 and doc["meta"]["title"] is not None for doc in kept["parse/too_short"])
    assert all(doc["meta"]["shared_lines"] >= 1 for doc in kept["line_dedup/duplicate_lines"])
    assert all(doc["meta"]["language"] != "en" and doc["meta"]["language_score"] >= 0.5
               for doc in kept["language_id/language_not_kept"])
    assert all(doc["meta"]["language_score"] < 0.5 for doc in kept["language_id/language_score_below_threshold"])
    tail = every.stats["recipe"]["cutoffs"]["values"]["en"][1]
    assert all(doc["meta"]["bucket"] == "tail" and doc["meta"]["perplexity"] >= tail
               for doc in kept["perplexity/bucket_tail"])
    assert all(doc["meta"]["wiki_prob"] < 0.25 for doc in kept["wikiref/wiki_prob_below_threshold"])
    for doc in kept["digest_dedup/duplicate_digest"]:  # the later snapshot's copy names the first
        assert doc["meta"]["source"] == "cc/2020-05" and doc["meta"]["duplicate_of"].startswith("cc/2019-30/")
    french = _show(capsys, every.slice_dir, "--dropped", "language_not_kept", "--where", "meta.language=fr")
    assert french and all(doc["meta"]["language"] == "fr" for doc in french)
    # a tenth of them: the same every run, the ones `sample` would choose, a subset of all
    tenth = run(slice_for(built_models), cc_inputs, tmp_path / "tenth", keep_dropped=0.1)
    again = run(slice_for(built_models), cc_inputs, tmp_path / "again", keep_dropped=0.1, workers=1)
    assert kept_files(tenth.slice_dir) == kept_files(plain.slice_dir)
    chosen = rejects(tenth.slice_dir)
    _check_counted(tenth, chosen, fraction=0.1)
    assert chosen == rejects(again.slice_dir)
    for name, docs in kept.items():
        expected = sorted(doc["meta"]["id"] for doc in docs if selected(doc, 0.1, 0))
        assert sorted(doc["meta"]["id"] for doc in chosen.get(name, [])) == expected
    assert 0 < tenth.stats["dropped_kept"]["documents"] < every.stats["dropped_kept"]["documents"] / 5
