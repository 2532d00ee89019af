import bz2
import lzma
import os
from collections import Counter
from pathlib import Path

import pytest
from redpajama.slices.wikipedia import Wikipedia

from tests.conftest import WIKI, dump_parts, make_multistream, need
from tests.integration.helpers import errors, output_bytes, records, run

EN = WIKI / "en" / "gensim-enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2"
LTG = WIKI / "ltg" / "dumpster-dive-ltgwiki-latest-pages-articles.xml.bz2"
UK = WIKI / "uk" / "xztextfilter-ukwiki-truncated-100k.xml.xz"


@pytest.fixture(scope="module")
def ltg_excerpt() -> bytes:
    """Every tenth page of the Latgalian dump between its own header and closing tag: 201 real
    pages of each kind the whole dump holds (98 articles, 11 redirects, 92 pages of other
    namespaces), for the tests of how a run reads, splits and writes, at a tenth of the cleaning."""
    header, pages, footer = dump_parts(bz2.decompress(need(LTG).read_bytes()))
    return header + b"".join(pages[::10]) + footer


@pytest.fixture(scope="module")
def ltg_small(ltg_excerpt, tmp_path_factory) -> Path:
    """The excerpt as a bz2 dump."""
    path = tmp_path_factory.mktemp("ltg") / "ltgwiki-excerpt-pages-articles.xml.bz2"
    path.write_bytes(bz2.compress(ltg_excerpt))
    return path


@pytest.fixture(scope="module")
def uk_head() -> bytes:
    """The Ukrainian excerpt's header, its first 20 pages (3 redirects, 17 articles) and its
    real end: the page it stops inside, mid-text, without closing tags."""
    header, pages, cut = dump_parts(lzma.decompress(need(UK).read_bytes()))
    assert cut.startswith(b"  <page>") and b"</page>" not in cut and not cut.endswith(b"</mediawiki>\n")
    return header + b"".join(pages[:20]) + cut


def test_english_excerpt_and_latgalian_dump(tmp_path):
    outcome = run(Wikipedia(), [need(EN), need(LTG)], tmp_path)
    stats = outcome.stats
    assert (stats["read"], stats["kept"], stats["failed"]) == (2210, 1009, 0)
    assert stats["dropped"] == {"not_article_namespace": 955, "redirect": 246}
    docs = {doc["meta"]["id"]: doc for doc in records(outcome.slice_dir)}
    english = [doc for doc in docs.values() if doc["meta"]["language"] == "en"]
    assert len(english) == 106  # RedPajama's builder kept 106 pages of this excerpt
    anarchism = docs["wikipedia/en/12"]
    assert anarchism["text"].startswith("Anarchism is a political philosophy that advocates self-governed societies")
    assert "[[" not in anarchism["text"] and "{{" not in anarchism["text"]
    # A <ref> whose content mwparserfromhell cannot parse (unbalanced '') stays as text,
    # exactly as RedPajama's builder left it; well-formed ones are gone.
    assert anarchism["text"].count("<ref") == 1
    assert anarchism["meta"]["url"] == "https://en.wikipedia.org/wiki/Anarchism"
    assert list(anarchism["meta"]) == ["title", "url", "language", "timestamp", "source", "id"]
    assert anarchism["meta"]["source"] == "wikipedia" and len(anarchism["meta"]["timestamp"]) == 8
    assert sum(doc["meta"]["language"] == "ltg" for doc in docs.values()) == 903
    assert all(doc["text"].strip() for doc in docs.values())


def test_multistream_splits_into_ranges_with_and_without_index(tmp_path, ltg_excerpt, ltg_small):
    plain = run(Wikipedia(), [ltg_small], tmp_path / "plain")
    dump = tmp_path / "ms" / "ltgwiki-20230320-pages-articles-multistream.xml.bz2"
    dump.parent.mkdir()
    offsets = make_multistream(ltg_excerpt, dump, pages_per_stream=10)
    assert len(offsets) == 23  # header, 21 streams of up to 10 pages, footer
    split = Wikipedia(split_mb=0.01)
    units = list(split.plan(str(dump)))
    assert len(units) == 9 and units[0].start == 0 and {u.start for u in units} < set(offsets)
    assert all(u.context["siteinfo"]["dbname"] == "ltgwiki" for u in units)
    indexed = run(split, [dump], tmp_path / "indexed")
    assert indexed.stats["units"]["read"] == len(units)
    os.remove(str(dump).replace(".xml.bz2", "-index.txt.bz2"))
    scanned = run(split, [dump], tmp_path / "scanned")
    assert scanned.stats["units"]["read"] == len(units)  # the streams found by scanning for their headers
    expected = [(d["meta"]["id"], d["text"]) for d in records(plain.slice_dir)]
    assert len(expected) == 98
    for outcome in (indexed, scanned):
        got = records(outcome.slice_dir)
        assert [(d["meta"]["id"], d["text"]) for d in got] == expected
        assert got[0]["meta"]["timestamp"] == "20230320"  # the dump date in the file name


def test_bad_inputs_are_counted_and_dead_lettered(tmp_path, ltg_excerpt, uk_head):
    bad = tmp_path / "bad"
    bad.mkdir()
    xml = ltg_excerpt
    packed = bz2.compress(xml, compresslevel=1)  # blocks of 100 kB: the cut leaves whole blocks before it
    (bad / "truncated-ltgwiki.xml.bz2").write_bytes(packed[: len(packed) // 2])
    (bad / "empty.xml").write_bytes(b"")
    (bad / "not-a-dump.xml").write_bytes(b"<html><body>hello</body></html>")
    first_page = xml.index(b"<page>")
    second_page = xml.index(b"<page>", first_page + 1)
    broken = xml[:first_page] + xml[first_page:second_page].replace(b"</title>", b"</titel>", 1) + xml[second_page:]
    (bad / "malformed-ltgwiki.xml").write_bytes(broken)
    third_page = xml.index(b"<page>", second_page + 1)
    invalid = xml[:second_page] + xml[second_page:third_page].replace(b"<text", b"\xff\xfe<text", 1) + xml[third_page:]
    (bad / "invalid-utf8-ltgwiki.xml").write_bytes(invalid)
    (bad / "truncated-ukwiki.xml.xz").write_bytes(lzma.compress(uk_head))
    inputs = sorted(bad.iterdir()) + [need(WIKI / "bg" / "gensim-bgwiki-latest-pages-articles-shortened.utf16.xml.bz2")]
    outcome = run(Wikipedia(), inputs, tmp_path / "out")
    reasons = sorted((Path(e["source"]).name, e["reason"]) for e in errors(outcome.slice_dir))
    assert reasons == [
        ("empty.xml", "empty_input"),
        ("invalid-utf8-ltgwiki.xml", "invalid_utf8"),
        ("malformed-ltgwiki.xml", "invalid_xml"),
        ("not-a-dump.xml", "not_a_mediawiki_dump"),
        ("truncated-ltgwiki.xml.bz2", "corrupt_compression"),
        ("truncated-ukwiki.xml.xz", "truncated_page"),
    ]
    assert outcome.stats["failed"] == 6
    docs = records(outcome.slice_dir)
    languages = Counter(d["meta"]["language"] for d in docs)
    # Every article of the cut Ukrainian dump that ends before the cut; each other article of the
    # malformed and the invalid dump (98 but the broken one); of the truncated bz2, every article
    # that ends in its whole blocks (its first 36 pages hold 28).
    readable = bz2.BZ2Decompressor().decompress(packed[: len(packed) // 2])
    whole_pages = dump_parts(readable)[1]
    assert sum(b"<ns>0</ns>" in page and b"<redirect" not in page for page in whole_pages) == 28
    assert languages == {"bg": 1, "uk": 17, "ltg": 2 * 97 + 28}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad", "out"]


def test_output_is_identical_for_one_and_two_workers_and_reruns(tmp_path, ltg_small):
    inputs = [ltg_small]  # what the English excerpt adds is checked in process
    one = run(Wikipedia(), inputs, tmp_path / "one", workers=1, num_shards=3, executor="beam")
    two = run(Wikipedia(), inputs, tmp_path / "two", workers=2, num_shards=3, executor="beam")
    assert len(output_bytes(one.slice_dir)) == 4  # 3 shards and the (empty) errors file
    assert output_bytes(one.slice_dir) == output_bytes(two.slice_dir)
    assert len(records(one.slice_dir)) == 98

    marker = Path(two.slice_dir, "_SUCCESS")
    before = {p: p.stat().st_mtime_ns for p in Path(two.slice_dir).rglob("*")}
    again = run(Wikipedia(), inputs, tmp_path / "two", num_shards=3, executor="beam")
    assert again.reused and marker.exists()
    assert {p: p.stat().st_mtime_ns for p in Path(two.slice_dir).rglob("*")} == before


def test_rerun_after_an_interrupted_run_gives_the_same_result(tmp_path, ltg_small):
    inputs = [ltg_small]
    clean = run(Wikipedia(), inputs, tmp_path / "clean")
    # An interrupted run: shards written to _temporary, never committed, one cut mid-write.
    run(Wikipedia(), inputs, tmp_path / "killed", commit=False)
    temporary = Path(tmp_path / "killed" / "wikipedia" / "_temporary")
    shard = next(temporary.glob("*.jsonl.zst"))
    shard.write_bytes(shard.read_bytes()[:1000])
    assert not (tmp_path / "killed" / "wikipedia" / "_SUCCESS").exists()
    resumed = run(Wikipedia(), inputs, tmp_path / "killed")
    assert not resumed.reused and not temporary.exists()
    assert output_bytes(resumed.slice_dir) == output_bytes(clean.slice_dir)
    assert len(records(resumed.slice_dir)) == 98


def test_xz_dump_in_a_language_of_the_recipe(tmp_path, uk_head):
    xz = tmp_path / "ukwiki-20230501-pages-articles.xml.xz"
    xz.write_bytes(lzma.compress(uk_head))
    outcome = run(Wikipedia(), [xz], tmp_path / "out")
    docs = records(outcome.slice_dir)
    assert len(docs) == 17 and all(d["meta"]["url"].startswith("https://uk.wikipedia.org/wiki/") for d in docs)
    assert {d["meta"]["timestamp"] for d in docs} == {"20230501"}
    atom = next(d for d in docs if d["meta"]["title"] == "Атом")
    assert atom["meta"]["url"] == "https://uk.wikipedia.org/wiki/%D0%90%D1%82%D0%BE%D0%BC"


def test_spilled_lines_give_the_bytes_of_the_shuffled_ones(tmp_path, ltg_small):
    from redpajama.pipelines.beam.executor import BeamExecutor
    from redpajama.pipelines.runs.run import run_slice
    from redpajama.pipelines.runs.runner_config import RunnerConfig

    inputs = [str(ltg_small)]
    spilled = run_slice(Wikipedia(), inputs, str(tmp_path / "spilled"), BeamExecutor(RunnerConfig(workers=2)),
                        shard_bytes=1 << 15)
    shuffled = run_slice(Wikipedia(), inputs, str(tmp_path / "shuffled"),
                         BeamExecutor(RunnerConfig(workers=2), spill=False), shard_bytes=1 << 15)
    assert len(output_bytes(spilled.slice_dir)) == 5  # 4 shards and the errors file
    assert output_bytes(spilled.slice_dir) == output_bytes(shuffled.slice_dir)
    assert not list((tmp_path / "spilled").rglob("_spill"))


def test_a_plain_xml_dump_is_read_in_byte_ranges_with_the_same_output(tmp_path, ltg_excerpt):
    xml = tmp_path / "ltgwiki-20230320-pages-articles.xml"
    xml.write_bytes(ltg_excerpt)
    whole = run(Wikipedia(), [xml], tmp_path / "whole")
    split = Wikipedia(split_mb=0.03)
    units = list(split.plan(str(xml)))
    data = xml.read_bytes()
    assert len(units) == 11 and all(data[u.start : u.start + 6] == b"<page>" for u in units[1:])  # each at a page
    assert [u.end for u in units[:-1]] == [u.start for u in units[1:]] and units[-1].end == len(data)
    assert all(u.context["siteinfo"]["dbname"] == "ltgwiki" for u in units)
    ranged = run(split, [xml], tmp_path / "ranged")
    assert ranged.stats["units"]["read"] == len(units) and ranged.stats["read"] == whole.stats["read"] == 201
    assert output_bytes(ranged.slice_dir) == output_bytes(whole.slice_dir)
    tiny = run(Wikipedia(split_mb=0.0005), [xml], tmp_path / "tiny")  # ranges shorter than any page: one page each
    assert tiny.stats["units"]["read"] == 201
    assert tiny.stats["failed"] == 0 and output_bytes(tiny.slice_dir) == output_bytes(whole.slice_dir)
