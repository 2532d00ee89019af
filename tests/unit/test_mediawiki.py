import bz2
import codecs
import io

import pytest
from redpajama.core.streams import utf8_chunks
from redpajama.formats import mediawiki

HEADER = (
    b'<mediawiki xmlns="http://www.mediawiki.org/xml/export-0.10/" xml:lang="de">\n'
    b"  <siteinfo><dbname>dewiki</dbname><base>https://de.wikipedia.org/wiki/Wikipedia:Hauptseite</base>"
    b'<namespaces><namespace key="6">Datei</namespace><namespace key="14">Kategorie</namespace>'
    b'<namespace key="0" /></namespaces></siteinfo>\n'
)


def page(page_id: int, title: str, text: str, ns: int = 0, redirect: bool = False) -> bytes:
    extra = f'<redirect title="{title}" />' if redirect else ""
    return (
        f"  <page>\n    <title>{title}</title>\n    <ns>{ns}</ns>\n    <id>{page_id}</id>{extra}\n"
        f"    <revision><timestamp>2023-03-01T00:00:00Z</timestamp><text>{text}</text></revision>\n  </page>\n"
    ).encode()


def scan(data: bytes, chunk: int = 7):
    chunks = [data[i : i + chunk] for i in range(0, len(data), chunk)]
    items = list(mediawiki.scan_pages(chunks))
    return items[0], items[1:]


def test_page_starts_and_a_range_that_starts_at_a_page():
    pages = [page(i, f"T{i}", "word " * 200) for i in range(1, 5)]
    pages[1] = pages[1].replace(b"word", b"<![CDATA[ <page> ]]><!-- <page> -->", 1)
    data = HEADER + b"".join(pages) + b"</mediawiki>\n"
    starts = [data.index(body) + body.index(b"<page") for body in pages]
    assert list(mediawiki.page_starts(data[i : i + 7] for i in range(0, len(data), 7))) == starts
    chunks = [data[i : i + 7] for i in range(starts[2], len(data), 7)]
    found = list(mediawiki.scan_pages(chunks, starts[2]))
    assert found[0] == b"" and [offset for offset, _ in found[1:]] == starts[2:]


def test_scan_yields_header_then_pages_across_chunk_boundaries():
    data = HEADER + page(1, "A", "x") + page(2, "B", "y &lt;b&gt;") + b"</mediawiki>\n"
    header, pages = scan(data)
    assert mediawiki.parse_siteinfo(header).language == "de"
    parsed = [mediawiki.parse_page(offset, body) for offset, body in pages]
    assert [(p.page_id, p.title, p.text) for p in parsed] == [(1, "A", "x"), (2, "B", "y <b>")]
    assert data[pages[1][0] :].startswith(b"<page>")


def test_siteinfo_names_namespaces_and_language():
    info = mediawiki.parse_siteinfo(HEADER)
    assert info.namespaces[6] == "Datei" and info.namespaces[14] == "Kategorie"
    assert mediawiki.SiteInfo("be_x_oldwiki").language == "be-x-old"
    assert info.content_language == "de"
    bare = mediawiki.parse_siteinfo(b'<mediawiki version="0.10" xml:lang="hy">\n')
    assert (bare.language, bare.content_language) == ("", "hy")


@pytest.mark.parametrize("name, language", [
    ("dumps/enwiki-20230401-pages-articles.xml.bz2", "en"),
    ("gensim-enwiki-table-markup.xml.bz2", "en"),  # a prefix before the wiki's name
    ("zh_min_nanwiki-latest-pages-articles.xml.bz2", "zh-min-nan"),
    ("pages.xml", "hy"),  # neither dbname nor a wiki in the name: the content language
])
def test_a_dump_without_dbname_takes_its_language_from_the_name_then_xml_lang(name, language):
    from redpajama.slices.wikipedia import _PageDescriber

    siteinfo = mediawiki.parse_siteinfo(b'<mediawiki xml:lang="hy">\n')
    assert _PageDescriber(name, siteinfo, None).language == language


def test_truncated_last_page_raises_after_the_complete_ones():
    data = HEADER + page(1, "A", "x") + page(2, "B", "cut")[:40]
    items = []
    with pytest.raises(mediawiki.DumpError) as error:
        for item in mediawiki.scan_pages([data]):
            items.append(item)
    assert error.value.reason == "truncated_page"
    assert len(items) == 2  # header and page 1


def test_malformed_and_non_utf8_pages_fail_alone():
    with pytest.raises(mediawiki.DumpError) as error:
        mediawiki.parse_page(0, b"<page><title>A</title><id>1</id><ns>0</ns><revision><text>x</revision></page>")
    assert error.value.reason == "invalid_xml"
    with pytest.raises(mediawiki.DumpError) as error:
        mediawiki.parse_page(0, page(1, "A", "caf\xe9").replace("caf\xc3\xa9".encode("latin-1"), b"caf\xe9"))
    assert error.value.reason == "invalid_utf8"


def test_not_a_dump():
    with pytest.raises(mediawiki.DumpError) as error:
        mediawiki.parse_siteinfo(b"<html><body>")
    assert error.value.reason == "not_a_mediawiki_dump"


def test_utf16_input_is_reencoded_as_utf8():
    text = (HEADER + page(7, "Ж", "ъ")).decode()
    data = codecs.BOM_UTF16_LE + text.encode("utf-16-le")
    header, pages = scan(b"".join(utf8_chunks([data[i : i + 5] for i in range(0, len(data), 5)])))
    assert mediawiki.parse_page(*pages[0]).title == "Ж"


def test_stream_offsets_by_scanning_and_from_an_index():
    streams = [bz2.compress(HEADER), bz2.compress(page(1, "A", "x")), bz2.compress(b"</mediawiki>")]
    expected = [0, len(streams[0]), len(streams[0]) + len(streams[1])]
    assert mediawiki.bz2_stream_offsets(io.BytesIO(b"".join(streams)), chunk_size=3) == expected
    index = bz2.compress(f"{expected[1]}:1:A\n{expected[1]}:2:B\n".encode())
    assert mediawiki.index_stream_offsets(io.BytesIO(index)) == [expected[1]]
    assert mediawiki.index_path_for("x/enwiki-1-pages-articles-multistream.xml.bz2") == (
        "x/enwiki-1-pages-articles-multistream-index.txt.bz2"
    )
    assert mediawiki.index_path_for("x/enwiki-1-pages-articles.xml.bz2") is None
