"""The CommonCrawl slice on real web-crawl samples, with models built by `models build`."""

import gzip
import json
import shutil
from collections import Counter
from pathlib import Path

import pytest
from redpajama.core.storage import open_range
from redpajama.dedup.exact import line_hash
from redpajama.filters.normalize import normalize
from redpajama.filters.perplexity import Cutoffs, DocumentScorer, load_kenlm, load_sentencepiece
from redpajama.filters.webpage import split_title
from redpajama.formats.warc_records import RawDocument
from redpajama.formats.webarchive import read_archive
from redpajama.slices.base import RunContext
from redpajama.slices.commoncrawl import CommonCrawl

from tests.conftest import CC, CC_WET, LID_MODEL, need
from tests.integration.helpers import errors, output_bytes, records, run

WARC = CC / "warc"


def slice_for(models: Path, **options) -> CommonCrawl:
    return CommonCrawl(models_dir=str(models), lid_model=str(LID_MODEL), **options)


def wet_documents(path: Path) -> list[RawDocument]:
    return [item for item in read_archive(lambda offset: open_range(str(path), offset), str(path))
            if isinstance(item, RawDocument)]


@pytest.fixture(scope="module")
def wet_run(built_models, tmp_path_factory):
    for path in CC_WET:
        need(path)
    return run(slice_for(built_models), CC_WET, tmp_path_factory.mktemp("cc"), workers=2, executor="beam")


def test_wet_sample_language_split_buckets_and_accounting(wet_run, built_models):
    stats = wet_run.stats
    assert stats["read"] == 697 and stats["failed"] == 0
    steps = {step["name"]: step for step in stats["steps"]}
    assert [s["name"] for s in stats["steps"]] == ["parse", "line_dedup", "language_id", "perplexity",
                                                   "digest_dedup", "wikiref"]
    # cc_net's parsing: documents under 300 characters after the title line
    short = sum(len("\n".join(split_title(d.text)[1])) < 300 for path in CC_WET for d in wet_documents(path))
    assert steps["parse"]["dropped"] == {"too_short": short} and short > 100
    lid = steps["language_id"]
    assert lid["in"] == steps["line_dedup"]["out"]
    assert lid["dropped"]["language_not_kept"] > 250 and lid["dropped"]["language_score_below_threshold"] > 20
    assert 150 < lid["out"] < 319  # 319 English documents before length filter and dedup
    docs = records(wet_run.slice_dir)
    assert len(docs) == stats["kept"] > 0
    head, tail = Cutoffs.load(str(built_models / "cutoff.csv")).by_language["en"]
    for doc in docs:
        meta = doc["meta"]
        assert meta["language"] == "en" and meta["language_score"] >= 0.5
        assert meta["bucket"] == ("head" if meta["perplexity"] < head else "middle") and meta["perplexity"] < tail
        assert meta["wiki_prob"] >= 0.25
        assert meta["nlines"] == len(doc["text"].split("\n")) and meta["length"] == len(doc["text"])
        assert meta["source"] == "cc/2019-30" and meta["id"].startswith("cc/2019-30/")
    assert list(docs[0]["meta"]) == ["url", "date_download", "digest", "length", "nlines", "source_domain", "title",
                                     "original_nlines", "original_length", "language", "language_score",
                                     "perplexity", "bucket", "wiki_prob", "source", "id"]
    shards = sorted(str(p.relative_to(wet_run.slice_dir)) for p in Path(wet_run.slice_dir).rglob("*.jsonl.zst"))
    assert shards == ["2019-30/en_head-00000-of-00001.jsonl.zst", "2019-30/en_middle-00000-of-00001.jsonl.zst"]
    assert steps["perplexity"]["dropped"]["bucket_tail"] > 0
    recipe = stats["recipe"]
    assert recipe["cutoffs"]["from"].startswith("built") and recipe["cutoffs"]["values"]["en"] == [head, tail]


def test_a_line_repeated_across_documents_vanishes_from_all(wet_run):
    holders = Counter()
    for path in CC_WET:
        for doc in wet_documents(path):
            holders.update({line_hash(line) for line in split_title(doc.text)[1]})
    repeated = {digest for digest, count in holders.items() if count > 1}
    assert len(repeated) > 50
    docs = records(wet_run.slice_dir)
    for doc in docs:
        hashes = [line_hash(line) for line in doc["text"].split("\n")]
        assert not repeated & set(hashes)
        assert len(set(hashes)) == len(hashes)
    assert any(doc["meta"]["nlines"] < doc["meta"]["original_nlines"] for doc in docs)
    assert wet_run.stats["dropped"]["duplicate_lines"] > 0


def test_perplexity_formula_by_hand(built_models):
    text = "The cat sat on the mat.\nIt was 3 o'clock — a quiet afternoon in Paris."
    sp = load_sentencepiece(str(built_models / "en.sp.model"))
    lm = load_kenlm(str(built_models / "en.arpa.bin"))
    pieces = sp.encode(normalize(text), out_type=str)
    assert "\n" not in normalize(text) and pieces
    # full_scores gives log10 P of every piece and of </s>: their sum is the sentence's score
    log10 = sum(score for score, _, _ in lm.full_scores(" ".join(pieces), bos=True, eos=True))
    expected = round(10 ** (-log10 / (len(pieces) + 1)), 1)
    assert DocumentScorer(str(built_models / "en.sp.model"), str(built_models / "en.arpa.bin")).score(text) == expected
    assert 1 < expected < 100_000


def test_models_manifest_describes_what_was_built(built_models):
    manifest = json.loads((built_models / "models.json").read_text())
    assert set(manifest["files"]) == {"sp", "lm", "cutoffs", "wikiref"}
    assert all(len(entry["sha256"]) == 64 for entry in manifest["files"].values())
    assert manifest["training"]["wikipedia"]["articles"] == 106
    assert manifest["training"]["commoncrawl"]["documents"] == 697
    assert manifest["parameters"]["wikiref"]["held_out_accuracy"] >= 0.8
    assert (built_models / "en.arpa.bin").read_bytes()[:4] != b"\\dat"  # binary, not ARPA text


def test_one_and_two_workers_write_identical_bytes_and_rerun_is_a_no_op(wet_run, built_models, tmp_path):
    single = run(slice_for(built_models), CC_WET, tmp_path / "one", workers=1, executor="beam")
    assert output_bytes(single.slice_dir) == output_bytes(wet_run.slice_dir)
    again = run(slice_for(built_models), CC_WET, tmp_path / "one", workers=1, executor="beam")
    assert again.reused


def test_digest_dedup_keeps_the_earliest_snapshot(built_models, tmp_path):
    later = tmp_path / "CC-MAIN-2020-05-copy.warc.wet.gz"
    shutil.copy(need(CC_WET[0]), later)
    outcome = run(slice_for(built_models), [CC_WET[0], later], tmp_path / "out")
    docs = records(outcome.slice_dir)
    assert docs and {doc["meta"]["source"] for doc in docs} == {"cc/2019-30"}
    survivors_alone = run(slice_for(built_models), [CC_WET[0]], tmp_path / "alone").stats["kept"]
    assert outcome.stats["dropped"]["duplicate_digest"] > 0
    assert outcome.stats["kept"] == survivors_alone


def test_warc_responses_through_html_extraction(built_models, tmp_path):
    inputs = [need(WARC / "resiliparse-warcfile-CC-MAIN-2020-34.warc.gz"), need(WARC / "dolma-wget-sample-0000.warc.gz")]
    outcome = run(slice_for(built_models, keep_buckets="head,middle,tail", wiki_threshold=0.0), inputs, tmp_path)
    stats = outcome.stats
    assert stats["read"] == 16 + 22 and stats["failed"] == 0
    assert stats["dropped"] == {"language_not_kept": 15}  # zh 11, de 2, ru 1, nl 1
    docs = records(outcome.slice_dir)
    assert len(docs) == 23 and all(doc["meta"]["title"] for doc in docs)
    assert {doc["meta"]["source"] for doc in docs} == {"cc/2020-34", "cc/unknown"}


def test_broken_archives_are_dead_lettered(built_models, tmp_path):
    broken = ["warcio-example-trunc.warc", "warcio-example-wrong-chunks.warc.gz", "resiliparse-clipped.warc.gz",
              "warcio-example-bad-non-chunked.warc.gz"]
    outcome = run(slice_for(built_models), [need(WARC / name) for name in broken] + CC_WET[:1], tmp_path)
    reasons = Counter((Path(e["source"]).name, e["reason"]) for e in errors(outcome.slice_dir))
    assert reasons == {
        ("warcio-example-trunc.warc", "invalid_content_length"): 1,  # its response runs 2 bytes past its length
        ("resiliparse-clipped.warc.gz", "truncated_archive"): 1,  # the file ends inside its one gzip member
        ("warcio-example-wrong-chunks.warc.gz", "truncated_record"): 1,  # its chunks undercut Content-Length
        ("warcio-example-wrong-chunks.warc.gz", "unreadable_record"): 1,  # then a page where a record should be
    }  # bad-non-chunked's one response is whole (its request record is not a document)
    assert outcome.stats["failed"] == sum(reasons.values())
    assert outcome.stats["kept"] > 0  # the good file next to them is processed


def test_listing_on_the_workers_with_limit_and_a_missing_file(built_models, tmp_path):
    listing = tmp_path / "crawl-data" / "CC-MAIN-2019-30" / "wet.paths.gz"
    listing.parent.mkdir(parents=True)
    relative = [str(path.relative_to(CC)) for path in CC_WET]
    listing.write_bytes(gzip.compress("\n".join(["wet/missing.warc.wet.gz", *relative]).encode()))
    options = {"mirror": str(CC), "dedup_scope": "shard", "dedup_shards": 1}
    first_two = run(slice_for(built_models, context=RunContext(file_limit=2), **options), [listing], tmp_path / "two")
    assert first_two.stats["units"]["planned"] == 2
    assert [e["reason"] for e in errors(first_two.slice_dir)] == ["unreadable_input"]
    assert first_two.stats["read"] == 349 + 1
    everything = run(slice_for(built_models, **options), [listing], tmp_path / "all")
    assert everything.stats["read"] == 697 + 1 and everything.stats["failed"] == 1


def test_whirlwind_wet_and_wat(built_models, tmp_path):
    files = [need(CC / "whirlwind" / "whirlwind.warc.wet.gz"), CC / "whirlwind" / "whirlwind.warc.wat.gz"]
    outcome = run(slice_for(built_models), files, tmp_path)
    # one conversion record (an Aragonese Wikipedia page); the WAT holds no documents: a counted empty input
    assert outcome.stats["read"] == 2 and outcome.stats["failed"] == 1 and outcome.stats["kept"] == 0
    assert [e["reason"] for e in errors(outcome.slice_dir)] == ["empty_input"]


def test_shipped_cc_net_cutoffs_are_cutoff_csv_percentiles_30_and_60():
    table = Cutoffs.from_csv(need(CC / "ccnet" / "cutoff.csv").read_text(), "cutoff.csv")
    shipped = Cutoffs.load("ccnet")
    assert shipped.by_language == table.by_language and shipped.by_language["en"] == (340.0, 520.0)


def test_ccnet_output_has_our_fields_and_agrees_with_the_shipped_cutoffs():
    rows = []
    for path in sorted((CC / "ccnet_output").glob("cc_en_head-*.jsonl.gz")):
        with gzip.open(need(path), "rt") as handle:
            rows += [json.loads(line)["metadata"] for line in handle]
    assert len(rows) == 20
    ours = {"url", "date_download", "digest", "length", "nlines", "source_domain", "title", "original_nlines",
            "original_length", "language", "language_score", "perplexity", "bucket"}
    cutoffs = Cutoffs.load("ccnet")
    for row in rows:
        assert ours <= set(row)  # cc_net also keeps line_ids and cc_segment, which RedPajama dropped
        assert cutoffs.bucket(row["language"], row["perplexity"]) == row["bucket"] == "head"
        assert row["nlines"] <= row["original_nlines"] and row["length"] <= row["original_length"]
