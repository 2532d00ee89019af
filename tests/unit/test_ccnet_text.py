"""cc_net's normalisation, WET parsing, line dedup semantics and shard ranges."""

import pytest
from redpajama.core.records import Drop
from redpajama.dedup import exact
from redpajama.filters.normalize import normalize, normalize_for_dedup, strip_accents
from redpajama.filters.webpage import ParseWebDocument, split_title
from redpajama.slices.commoncrawl import cc_net_shard


def test_normalize_for_dedup_matches_cc_net():
    assert normalize_for_dedup("  Hello, World 2023!  ") == "hello, world 0000!"
    # only the unicode punctuation of cc_net's table goes; ASCII punctuation stays
    assert normalize_for_dedup("“Quoted” — text…") == "quoted  text"
    assert normalize_for_dedup("tab\there") == "tabhere"
    assert normalize_for_dedup("   ") == ""


def test_normalize_for_the_language_model():
    assert strip_accents("Café naïve") == "Cafe naive"
    assert normalize("  Ünïcode “quotes” 42 ") == 'unicode "quotes" 00'
    # newlines are control characters: lines are glued together, as cc_net scores them
    assert normalize("First line.\nSecond line.") == "first line.second line."
    assert normalize("a — b") == "a  -  b"


def test_split_title_strips_lines_and_drops_empty_ones():
    title, lines = split_title("  Page title \r\n\r\n first line \n\n\tsecond\r")
    assert title == "Page title"
    assert lines == ["first line", "second"]
    assert split_title("\n \n") == ("", [])


def _wet(text, length=1000):
    return {"text": text, "meta": {"length": length}}


def test_parse_drops_short_documents_and_fills_cc_net_fields():
    step = ParseWebDocument(min_length=20)
    kept = step.apply(_wet("Title\nThis line is long enough.\nAnd another.", length=44))
    assert kept["text"] == "This line is long enough.\nAnd another."
    assert kept["meta"] | {} == {"length": 44, "title": "Title", "nlines": 2, "original_nlines": 2, "original_length": 44}
    assert step.apply(_wet("Title\nshort")) == Drop("too_short")


def test_parse_turns_html_into_wet_text_and_refuses_other_types():
    step = ParseWebDocument(min_length=10)
    html = b"<html><head><title>T</title></head><body><p>Hello there, reader.</p><p>Bye now.</p></body></html>"
    record = {"text": "", "meta": {"length": 0, "_html": html, "_content_type": "text/html; charset=utf-8"}}
    kept = step.apply(record)
    assert kept["meta"]["title"] == "T"
    assert kept["text"] == "Hello there, reader.\nBye now."
    image = {"text": "", "meta": {"length": 0, "_html": b"\x89PNG", "_content_type": "image/png"}}
    assert step.apply(image) == Drop("not_html")


def test_remove_lines_drops_shared_lines_and_repeats_inside_a_document():
    text = "Shared line\nunique one\nUnique one\nshared LINE\nlast"
    hashes = exact.line_hashes(text)
    # "Unique one" normalises like "unique one": the repeat goes, the first stays
    assert exact.remove_lines(text, hashes, set()) == ("Shared line\nunique one\nlast", 3)
    shared = {exact.line_hash("shared line")}
    assert exact.remove_lines(text, hashes, shared) == ("unique one\nlast", 2)
    assert exact.remove_lines("x", exact.line_hashes("x"), {exact.line_hash("x")}) == ("", 0)


def test_line_hash_is_sha1_of_the_normalised_line_first_8_bytes():
    import hashlib

    assert exact.line_hash(" Hello 12 ") == hashlib.sha1(b"hello 00").digest()[:8]


@pytest.mark.parametrize("total,shards", [(10, 3), (90000, 5000), (7, 7), (3, 5), (64000, 5000)])
def test_cc_net_shard_matches_its_contiguous_ranges(total, shards):
    expected = {}
    for shard in range(shards):
        for index in range(shard * total // shards, (shard + 1) * total // shards):
            expected[index] = shard
    assert [cc_net_shard(i, total, shards) for i in range(total)] == [expected[i] for i in range(total)]


def test_line_hashes_of_a_text_equal_each_line_hashed_alone():
    """The text is normalised in one pass; every line must hash as it does alone (lower-casing
    with its Greek final sigma, digits of any script, control characters, unicode punctuation)."""
    import random

    alphabet = "aZ9 ΣσςΑ İI\u0307\u0301\t\r\x0b\x0c\x1c\x1f\x7f\x85\xa0\u2028\u3000，。—…１٣.:'’\u00ad\u200bǅ\n"
    rng = random.Random(7)
    texts = ["", "\n", "ΑΣ\nΣ", "ΑΣ.\n", " x \x1c\n\x1f y", *("".join(rng.choice(alphabet) for _ in range(rng.randint(0, 14)))
                                                          for _ in range(20_000))]
    for text in texts:
        assert exact.line_hashes(text) == [exact.line_hash(line) for line in text.split("\n")], repr(text)


def test_strip_accents_deletes_exactly_the_nonspacing_marks():
    import sys
    import unicodedata

    points = [p for p in range(0, sys.maxunicode + 1, 3) if not 0xD800 <= p <= 0xDFFF]
    text = "".join(map(chr, points)) + "café naïve Å"
    expected = "".join(c for c in unicodedata.normalize("NFD", text) if unicodedata.category(c) != "Mn")
    assert strip_accents(text) == expected
    assert strip_accents("café naïve Å") == "cafe naive A"
