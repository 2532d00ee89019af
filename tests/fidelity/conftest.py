"""Each case runs once per session (its outputs feed the table and the planted-bug tests);
the tables are printed at the end of the run."""

from __future__ import annotations

import pytest

from tests.conftest import SHARED, need
from tests.fidelity import arxiv, cases
from tests.fidelity.harness import report, run

RESULTS: list = []
WIKI_EN = SHARED / "wikipedia" / "en" / "gensim-enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2"
BEER = SHARED / "stackexchange" / "beer.stackexchange.com" / "Posts.xml"


@pytest.fixture
def fidelity_results() -> list:
    return RESULTS


def pytest_terminal_summary(terminalreporter) -> None:
    if RESULTS:
        terminalreporter.write_sep("=", "agreement with RedPajama's own outputs (tests/fidelity)")
        terminalreporter.write_line(report(RESULTS))


@pytest.fixture(scope="session")
def arxiv_runs(tmp_path_factory):
    folders = sorted(p for p in need(SHARED / "arxiv").iterdir() if p.is_dir())
    need(cases.REFERENCE / "arxiv.jsonl")
    work = tmp_path_factory.mktemp("arxiv")
    case = cases.arxiv_case([str(arxiv.pack_bulk_tar(folders, work / "arXiv_src_2001_001.tar"))])
    return case, run(case, work)


@pytest.fixture(scope="session")
def stackexchange_runs(tmp_path_factory):
    need(cases.REFERENCE / "stackexchange-beer.jsonl")
    case = cases.stackexchange_case([str(need(BEER))])
    return case, run(case, tmp_path_factory.mktemp("stackexchange"))


@pytest.fixture(scope="session")
def wikipedia_runs(tmp_path_factory):
    need(cases.REFERENCE / "wikipedia-en.jsonl")
    case = cases.wikipedia_case([str(need(WIKI_EN))])
    return case, run(case, tmp_path_factory.mktemp("wikipedia"))
