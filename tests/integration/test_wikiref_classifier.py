"""RedPajama's classifier recipe end to end: refs of the English excerpt -> pages (served on
loopback hosts) -> WARC -> models build --wikiref-pages -> the CommonCrawl slice and report."""

import json

import pytest
from redpajama.pipelines.commands.cli import main
from redpajama.pipelines.commands.report import build_report, markdown
from redpajama.pipelines.fetch.pages import FetchSettings, run_fetch

from tests.conftest import CC_WET, LID_MODEL, SHARED, WIKI_EN, need
from tests.integration.helpers import run
from tests.integration.loopback import PAGES, Site
from tests.integration.test_commoncrawl import slice_for

TOKENIZER = SHARED / "models" / "gpt-neox-20b" / "20B_tokenizer.json"


@pytest.fixture(scope="module")
def cited_pages_warc(tmp_path_factory):
    site = Site(need(WIKI_EN))
    folder = tmp_path_factory.mktemp("pages")
    try:
        (folder / "urls.txt").write_text("\n".join(site.pages) + "\n")
        stats = run_fetch(FetchSettings([str(folder / "urls.txt")], folder / "warc", delay=0.0, timeout=2.0, quiet=True))
    finally:
        site.close()
    assert stats["this_run"]["fetched"] == PAGES
    return folder / "warc"


def test_classifier_built_from_cited_pages_and_used_by_the_commoncrawl_slice(
        cited_pages_warc, built_models, tmp_path, capsys):
    wikipedia = json.loads((built_models / "models.json").read_text())["training"]["wikipedia"]["inputs"]
    folder = tmp_path / "models"
    assert main(["models", "build", "--wikipedia", *wikipedia, "--commoncrawl", *map(str, CC_WET),
                 "--wikiref-pages", str(cited_pages_warc / "*.warc.gz"), "--lid-model", str(need(LID_MODEL)),
                 "--output", str(folder)]) == 0
    printed = capsys.readouterr().out
    assert "wikiref classifier: RedPajama's recipe (pages cited by Wikipedia)" in printed and "keeps " in printed
    manifest = json.loads((folder / "models.json").read_text())
    wikiref = manifest["parameters"]["wikiref"]
    positives = wikiref["positives"]
    assert positives["kind"] == "cited-pages" and positives["documents"] == PAGES
    assert positives["kept"] <= positives["after_line_dedup"] <= positives["parsed"] <= PAGES
    assert sum(positives["buckets"].values()) == positives["kept"]
    assert 10 <= positives["positives"] == wikiref["examples"]["wiki"]
    assert wikiref["negatives"]["count"] == wikiref["examples"]["cc"] <= positives["positives"]
    assert wikiref["held_out_accuracy"] >= 0.8
    rate = wikiref["keep_rate"]
    assert rate["documents"] > 0 and 0 <= rate["kept"] <= rate["documents"] and rate["threshold"] == 0.25
    assert "RedPajama's recipe" in manifest["notes"][0]

    outcome = run(slice_for(folder), CC_WET, tmp_path / "out")
    assert outcome.stats["recipe"]["wikiref"]["recipe"].startswith("built by RedPajama's recipe")
    if TOKENIZER.exists():
        report = build_report(str(tmp_path / "out"), str(TOKENIZER))
        assert "Wikipedia-reference classifier built by RedPajama's recipe" in markdown(report)


def test_without_pages_the_stand_in_says_what_it_is(built_models):
    wikiref = json.loads((built_models / "models.json").read_text())["parameters"]["wikiref"]
    assert wikiref["positives"]["kind"] == "articles" and wikiref["keep_rate"]["documents"] > 0
