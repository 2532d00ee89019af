"""One recipe, two executors: on each slice's real sample, the in-process executor writes the
Beam executor's files byte for byte (output shards, dead letters, dropped records, counts and
sample) and its stats.json counts the same (everything but the wall time and the shuffles'
volume, which only a Beam run measures)."""

from __future__ import annotations

from pathlib import Path

import pytest
from redpajama.pipelines.beam.executor import BeamExecutor
from redpajama.pipelines.inprocess.executor import InProcessExecutor
from redpajama.pipelines.runs.run import resolve_inputs, run_slice
from redpajama.pipelines.runs.runner_config import RunnerConfig
from redpajama.slices.arxiv import Arxiv
from redpajama.slices.books import Books
from redpajama.slices.c4 import C4
from redpajama.slices.stackexchange import StackExchange
from redpajama.slices.wikipedia import Wikipedia
from redpajama.slices.wikiref_urls import WikirefUrls

from bench.books_sample import GUTENBERG, plant, sample_books
from tests.conftest import CC_WET, LID_MODEL, SE, SHARED, WIKI, WIKI_EN, need
from tests.integration.helpers import output_bytes
from tests.integration.test_commoncrawl import slice_for
from tests.integration.test_github import package_repo, slice_

NOT_COUNTS = ("wall_seconds", "shuffles")


def both(slc, inputs: list, output: Path, **kwargs) -> None:
    """Run ``slc`` with each executor and compare what they wrote and counted."""
    files = resolve_inputs([str(path) for path in inputs], None, folders=slc.reads_folders)
    beam = run_slice(slc, files, str(output / "beam"), BeamExecutor(RunnerConfig(workers=2)), **kwargs)
    local = run_slice(slc, files, str(output / "inprocess"), InProcessExecutor(), **kwargs)
    written = output_bytes(beam.slice_dir)
    assert output_bytes(local.slice_dir) == written
    assert any(name.endswith((".jsonl.zst", ".txt")) and data for name, data in written.items())
    counts = {key: value for key, value in beam.stats.items() if key not in NOT_COUNTS}
    assert {key: value for key, value in local.stats.items() if key not in NOT_COUNTS} == counts
    assert beam.stats["read"] > 0


def test_wikipedia(tmp_path):
    both(Wikipedia(), [need(WIKI / "ltg" / "dumpster-dive-ltgwiki-latest-pages-articles.xml.bz2"),
                       need(WIKI / "en" / "gensim-enwiki-table-markup.xml.bz2")], tmp_path)


def test_c4_with_a_cut_file_and_an_empty_one(tmp_path):
    real = need(SHARED / "c4" / "hf-datasets-dummy-en" / "c4-train.00000-of-01024.json.gz")
    cut = tmp_path / "c4-train.00001-of-01024.json.gz"
    cut.write_bytes(real.read_bytes()[:300])
    empty = tmp_path / "c4-train.00002-of-01024.json"
    empty.write_bytes(b"")
    both(C4(), [real, cut, empty], tmp_path)


def test_stackexchange_joins_answers_to_questions(tmp_path):
    both(StackExchange(lid_model=str(need(LID_MODEL))),
         [need(SE / "beer.stackexchange.com" / "Posts.xml"), need(SE / "history.meta.stackexchange.com-2018" / "Posts.xml")],
         tmp_path)


def test_arxiv(tmp_path):
    both(Arxiv(lid_model=str(need(LID_MODEL))), [need(SHARED / "arxiv" / "1803.07574"),
                                                  need(SHARED / "arxiv" / "eqs-magnetic-dual-layer")], tmp_path)


@pytest.mark.parametrize("keep_dropped", [None, 1.0])
def test_books_near_duplicates(tmp_path, keep_dropped):
    need(GUTENBERG)
    plant(tmp_path / "planted")
    both(Books(), sample_books()[:8] + sorted((tmp_path / "planted").glob("*.txt")), tmp_path,
         keep_dropped=keep_dropped)


@pytest.mark.parametrize("keep_dropped", [None, 0.5])
def test_github_licences_and_exact_dedup(tmp_path, keep_dropped):
    click = package_repo(tmp_path / "click", "click", "click")
    lgpl = package_repo(tmp_path / "py7zr", "py7zr", "py7zr")  # not an allowed licence
    fork = tmp_path / "aaa-fork"
    fork.mkdir()
    (fork / "LICENSE").write_bytes((click / "LICENSE").read_bytes())
    (fork / "core.py").write_bytes((click / "core.py").read_bytes())  # a duplicate of click's
    both(slice_(), [click, lgpl, fork], tmp_path, keep_dropped=keep_dropped)


def test_wikiref_urls(tmp_path):
    both(WikirefUrls(sample=200, seed=1), [need(WIKI_EN)], tmp_path)


@pytest.mark.parametrize("keep_dropped", [None, 1.0])
def test_commoncrawl_line_dedup_and_buckets(built_models, tmp_path, keep_dropped):
    for path in CC_WET:
        need(path)
    both(slice_for(built_models), CC_WET[:2], tmp_path, keep_dropped=keep_dropped)


def test_the_run_command_takes_either_executor(tmp_path, capsys):
    from redpajama.pipelines.commands.cli import EXIT_USAGE, main

    dump = str(need(WIKI / "ltg" / "dumpster-dive-ltgwiki-latest-pages-articles.xml.bz2"))
    for executor in ("beam", "inprocess"):
        assert main(["run", "wikipedia", "--input", dump, "--output", str(tmp_path / executor), "--workers", "1",
                     "--executor", executor]) == 0
    assert output_bytes(tmp_path / "inprocess" / "wikipedia") == output_bytes(tmp_path / "beam" / "wikipedia")
    capsys.readouterr()
    assert main(["run", "wikipedia", "--input", dump, "--output", str(tmp_path / "d"), "--executor", "inprocess",
                 "--runner", "dataflow"]) == EXIT_USAGE
    assert capsys.readouterr().err.strip().splitlines()[-1].startswith(
        "redpajama: error: --executor inprocess runs the recipe in this process")
