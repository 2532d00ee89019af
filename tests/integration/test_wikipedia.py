import bz2
import lzma
import os
from pathlib import Path

from redpajama.slices.wikipedia import Wikipedia

from tests.conftest import WIKI, make_multistream, need
from tests.integration.helpers import errors, output_bytes, records, run

EN = WIKI / "en" / "gensim-enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2"
LTG = WIKI / "ltg" / "dumpster-dive-ltgwiki-latest-pages-articles.xml.bz2"


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


def test_multistream_splits_into_ranges_with_and_without_index(tmp_path):
    xml = bz2.decompress(need(LTG).read_bytes())
    plain = run(Wikipedia(), [LTG], tmp_path / "plain")
    dump = tmp_path / "ms" / "ltgwiki-20230320-pages-articles-multistream.xml.bz2"
    dump.parent.mkdir()
    offsets = make_multistream(xml, dump, pages_per_stream=100)
    assert len(offsets) == 23  # header, 21 streams of up to 100 pages, footer
    split = Wikipedia(split_mb=0.05)
    units = list(split.plan(str(dump)))
    assert len(units) > 3 and units[0].start == 0 and all(u.context["siteinfo"]["dbname"] == "ltgwiki" for u in units)
    indexed = run(split, [dump], tmp_path / "indexed")
    assert indexed.stats["units"]["read"] == len(units)
    os.remove(str(dump).replace(".xml.bz2", "-index.txt.bz2"))
    scanned = run(split, [dump], tmp_path / "scanned")
    expected = [(d["meta"]["id"], d["text"]) for d in records(plain.slice_dir)]
    for outcome in (indexed, scanned):
        got = records(outcome.slice_dir)
        assert [(d["meta"]["id"], d["text"]) for d in got] == expected
        assert got[0]["meta"]["timestamp"] == "20230320"  # the dump date in the file name


def test_bad_inputs_are_counted_and_dead_lettered(tmp_path):
    bad = tmp_path / "bad"
    bad.mkdir()
    xml = bz2.decompress(need(LTG).read_bytes())
    raw = need(LTG).read_bytes()
    (bad / "truncated-ltgwiki.xml.bz2").write_bytes(raw[: len(raw) // 2])
    (bad / "empty.xml").write_bytes(b"")
    (bad / "not-a-dump.xml").write_bytes(b"<html><body>hello</body></html>")
    first_page = xml.index(b"<page>")
    second_page = xml.index(b"<page>", first_page + 1)
    broken = xml[:first_page] + xml[first_page:second_page].replace(b"</title>", b"</titel>", 1) + xml[second_page:]
    (bad / "malformed-ltgwiki.xml").write_bytes(broken)
    third_page = xml.index(b"<page>", second_page + 1)
    invalid = xml[:second_page] + xml[second_page:third_page].replace(b"<text", b"\xff\xfe<text", 1) + xml[third_page:]
    (bad / "invalid-utf8-ltgwiki.xml").write_bytes(invalid)
    inputs = sorted(bad.iterdir()) + [need(WIKI / "bg" / "gensim-bgwiki-latest-pages-articles-shortened.utf16.xml.bz2"),
                                      need(WIKI / "uk" / "xztextfilter-ukwiki-truncated-100k.xml.xz")]
    outcome = run(Wikipedia(), inputs, tmp_path / "out")
    reasons = sorted((Path(e["source"]).name, e["reason"]) for e in errors(outcome.slice_dir))
    assert reasons == [
        ("empty.xml", "empty_input"),
        ("invalid-utf8-ltgwiki.xml", "invalid_utf8"),
        ("malformed-ltgwiki.xml", "invalid_xml"),
        ("not-a-dump.xml", "not_a_mediawiki_dump"),
        ("truncated-ltgwiki.xml.bz2", "corrupt_compression"),
        ("xztextfilter-ukwiki-truncated-100k.xml.xz", "truncated_page"),
    ]
    assert outcome.stats["failed"] == 6
    docs = records(outcome.slice_dir)
    languages = {d["meta"]["language"] for d in docs}
    assert languages == {"bg", "ltg", "uk"}
    assert sum(d["meta"]["language"] == "uk" for d in docs) > 100
    # Every complete page before the break of the truncated bz2 was kept.
    assert sum(1 for d in docs if d["meta"]["language"] == "ltg") > 2 * 902
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad", "out"]


def test_output_is_identical_for_one_and_two_workers_and_reruns(tmp_path):
    inputs = [need(LTG)]  # 903 pages; what the English excerpt adds is checked in process
    one = run(Wikipedia(), inputs, tmp_path / "one", workers=1, num_shards=3, executor="beam")
    two = run(Wikipedia(), inputs, tmp_path / "two", workers=2, num_shards=3, executor="beam")
    assert len(output_bytes(one.slice_dir)) == 4  # 3 shards and the (empty) errors file
    assert output_bytes(one.slice_dir) == output_bytes(two.slice_dir)

    marker = Path(two.slice_dir, "_SUCCESS")
    before = {p: p.stat().st_mtime_ns for p in Path(two.slice_dir).rglob("*")}
    again = run(Wikipedia(), inputs, tmp_path / "two", num_shards=3, executor="beam")
    assert again.reused and marker.exists()
    assert {p: p.stat().st_mtime_ns for p in Path(two.slice_dir).rglob("*")} == before


def test_rerun_after_an_interrupted_run_gives_the_same_result(tmp_path):
    inputs = [need(LTG)]
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


def test_xz_dump_in_a_language_of_the_recipe(tmp_path):
    xz = need(WIKI / "uk" / "xztextfilter-ukwiki-truncated-100k.xml.xz")
    plain = tmp_path / "ukwiki-20230501-pages-articles.xml"
    plain.write_bytes(lzma.decompress(xz.read_bytes()))
    outcome = run(Wikipedia(), [plain], tmp_path / "out")
    docs = records(outcome.slice_dir)
    assert docs and all(d["meta"]["url"].startswith("https://uk.wikipedia.org/wiki/") for d in docs)
    assert {d["meta"]["timestamp"] for d in docs} == {"20230501"}


def test_spilled_lines_give_the_bytes_of_the_shuffled_ones(tmp_path):
    from redpajama.pipelines.beam.executor import BeamExecutor
    from redpajama.pipelines.beam.options import RunnerConfig
    from redpajama.pipelines.runs.run import run_slice

    inputs = [str(need(LTG))]
    spilled = run_slice(Wikipedia(), inputs, str(tmp_path / "spilled"), BeamExecutor(RunnerConfig(workers=2)),
                        shard_bytes=1 << 17)
    shuffled = run_slice(Wikipedia(), inputs, str(tmp_path / "shuffled"),
                         BeamExecutor(RunnerConfig(workers=2), spill=False), shard_bytes=1 << 17)
    assert len(output_bytes(spilled.slice_dir)) > 3  # several shards and the errors file
    assert output_bytes(spilled.slice_dir) == output_bytes(shuffled.slice_dir)
    assert not list((tmp_path / "spilled").rglob("_spill"))


def test_a_plain_xml_dump_is_read_in_byte_ranges_with_the_same_output(tmp_path):
    xml = tmp_path / "ltgwiki-20230320-pages-articles.xml"
    xml.write_bytes(bz2.decompress(need(LTG).read_bytes()))
    whole = run(Wikipedia(), [xml], tmp_path / "whole")
    split = Wikipedia(split_mb=0.3)
    units = list(split.plan(str(xml)))
    data = xml.read_bytes()
    assert len(units) > 3 and all(data[u.start : u.start + 6] == b"<page>" for u in units[1:])  # each at a page
    assert [u.end for u in units[:-1]] == [u.start for u in units[1:]] and units[-1].end == len(data)
    assert all(u.context["siteinfo"]["dbname"] == "ltgwiki" for u in units)
    ranged = run(split, [xml], tmp_path / "ranged")
    assert ranged.stats["units"]["read"] == len(units) and ranged.stats["read"] == whole.stats["read"]
    assert output_bytes(ranged.slice_dir) == output_bytes(whole.slice_dir)
    tiny = run(Wikipedia(split_mb=0.01), [xml], tmp_path / "tiny")  # ranges shorter than most pages
    assert tiny.stats["failed"] == 0 and output_bytes(tiny.slice_dir) == output_bytes(whole.slice_dir)
