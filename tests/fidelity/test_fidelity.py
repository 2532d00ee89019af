"""Every document agrees with RedPajama's own code, or differs by a named, documented deviation."""

from __future__ import annotations

import pytest

from tests.conftest import SHARED, need
from tests.fidelity import cases
from tests.fidelity.harness import Case, compare, readme_rows

ARXIV = SHARED / "arxiv"


def check(case: Case, tmp_path, results: list):
    need(case.reference)
    result = compare(case, tmp_path)
    results.append(result)
    assert not result.unexplained, result.unexplained
    return result


def test_arxiv(tmp_path, fidelity_results):
    folders = sorted(p for p in need(ARXIV).iterdir() if p.is_dir())
    tar = cases.pack_arxiv_bulk(folders, tmp_path / "arXiv_src_2001_001.tar")
    result = check(cases.arxiv_case([str(tar)]), tmp_path, fidelity_results)
    # every paper differs at least by our meta.id; 1707.08043 (a Latin-1 file) is only ours
    assert result.compared == 8 and result.explained["1803.07574"] == ["arxiv-meta-added"]
    assert result.explained["1707.08043"] == ["arxiv-latin1"]


def test_stackexchange(tmp_path, fidelity_results):
    posts = need(SHARED / "stackexchange" / "beer.stackexchange.com" / "Posts.xml")
    result = check(cases.stackexchange_case([str(posts)]), tmp_path, fidelity_results)
    assert result.compared == 663


def test_wikipedia(tmp_path, fidelity_results):
    dump = need(SHARED / "wikipedia" / "en" / "gensim-enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2")
    result = check(cases.wikipedia_case([str(dump)]), tmp_path, fidelity_results)
    assert result.compared == 106 and result.deviation_counts() == {"wiki-meta-added": 106, "wiki-empty-sections": 1}


@pytest.mark.parametrize("make", [cases.arxiv_case, cases.stackexchange_case, cases.wikipedia_case])
def test_readme_deviation_rows_match_the_normalizers_one_to_one(make):
    case = make([])
    rows = readme_rows()
    slice_rows = {row for row, slc in rows.items() if slc == case.slice}
    named = {dev.row for dev in case.deviations} | set(case.options)
    assert named <= set(rows), f"not in the README's deviation table: {named - set(rows)}"
    assert slice_rows - named <= set(cases.NOT_PER_DOCUMENT), slice_rows - named - set(cases.NOT_PER_DOCUMENT)
