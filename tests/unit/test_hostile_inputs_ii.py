"""Readers against inputs that try to steer or stop a run: columns named like working state,
deep JSON, hostile file names and links, cut reference shards, 7z bombs, damaged WARC records,
odd XML layouts (no pipeline unless a test says so)."""

from __future__ import annotations

import ast
import gzip
import io
import json
import os
import re
import zlib
from pathlib import Path

import pytest
from redpajama.core.records import Failure
from redpajama.pipelines.beam.reading import ReadUnits
from redpajama.pipelines.beam.steps import FAILURES
from redpajama.slices.arxiv import Arxiv
from redpajama.slices.base import Slice
from redpajama.slices.books import Books
from redpajama.slices.c4 import C4
from redpajama.slices.commoncrawl import CommonCrawl
from redpajama.slices.github import GitHub, SelectFiles
from redpajama.slices.stackexchange import StackExchange
from redpajama.slices.wikipedia import Wikipedia
from redpajama.slices.wikiref_urls import WikirefUrls

ROOT = Path(__file__).resolve().parents[2]
UNDERSCORE_NAME = re.compile(r"_[A-Za-z][A-Za-z0-9_]*")


def internal_names() -> list[str]:
    """Every ``_``-prefixed name the package's code writes as a string or passes as a keyword:
    the meta keys it keeps working state under are among them (dunder names are not)."""
    names = set()
    packaged = [path.parent for path in ROOT.glob("*/__init__.py") if path.parent.name not in ("tests", "bench")]
    for folder in packaged:
        for path in folder.rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Constant) and isinstance(node.value, str):
                    candidate = node.value
                elif isinstance(node, ast.keyword) and node.arg:
                    candidate = node.arg
                else:
                    continue
                if UNDERSCORE_NAME.fullmatch(candidate) and not candidate.startswith("__"):
                    names.add(candidate)
    return sorted(names)


INTERNAL = internal_names()
HOSTILE_VALUES = ["x", -1, None, True, {"bytes": 1}, [3], 10**30, "license_not_allowed"]


def test_the_internal_names_are_collected_from_the_code():
    assert {"_source_bytes", "_skip", "_unit", "_namespace", "_post_id", "_files", "_scope"} <= set(INTERNAL)


# --- inputs with every internal name where the format lets an input name a field ---------------


def books_jsonl(folder: Path, extra: list[dict]) -> str:
    path = folder / "pg19.jsonl"
    rows = [{"short_book_title": f"Book {i}", "url": f"u{i}", "text": f"words of book {i}", **columns}
            for i, columns in enumerate(extra)]
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return str(path)


def books_parquet(folder: Path, extra: list[dict]) -> str:
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = folder / "pg19.parquet"
    rows = [{"short_book_title": f"Book {i}", "text": f"words of book {i}",
             **{key: json.dumps(value) for key, value in columns.items()}} for i, columns in enumerate(extra)]
    pq.write_table(pa.Table.from_pylist(rows), path)
    return str(path)


def bigquery_jsonl(folder: Path, extra: list[dict]) -> str:
    path = folder / "github_000.jsonl"
    rows = [{"repo_name": "o/r", "ref": "refs/heads/main", "path": f"f{i}.py", "license": "mit",
             "content": f"x = {i}\n", **columns} for i, columns in enumerate(extra)]
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return str(path)


def c4_jsonl(folder: Path, extra: list[dict]) -> str:
    path = folder / "c4-train.00000-of-01024.json"
    rows = [{"text": f"text {i}", "url": f"https://x/{i}", "timestamp": "2019-04-25T12:57:54Z", **columns}
            for i, columns in enumerate(extra)]
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return str(path)


def xml_name(key: str) -> str:
    return key if re.fullmatch(r"[A-Za-z_][\w.-]*", key) else "x"


def posts_xml(folder: Path, extra: list[dict]) -> str:
    from xml.sax.saxutils import quoteattr

    path = folder / "beer.stackexchange.com" / "Posts.xml"
    path.parent.mkdir()
    rows = []
    for i, columns in enumerate(extra):
        attributes = " ".join(f"{xml_name(k)}={quoteattr(json.dumps(v))}" for k, v in columns.items())
        rows.append(f'  <row Id="{i + 1}" PostTypeId="1" Score="1" Title="Q{i}" Body="&lt;p&gt;b{i}&lt;/p&gt;" '
                    f'LastActivityDate="2020-01-01T00:00:00" {attributes} />\n')
    path.write_text('<?xml version="1.0" encoding="utf-8"?>\n<posts>\n' + "".join(rows) + "</posts>\n")
    return str(path)


def wiki_page(page_id: int, title: str, text: str, extra: str = "", ns: int = 0) -> str:
    return (f"  <page>\n    <title>{title}</title>\n    <ns>{ns}</ns>\n    <id>{page_id}</id>\n{extra}"
            f"    <revision>\n      <id>{page_id + 1000}</id>\n      <timestamp>2023-03-01T00:00:00Z</timestamp>\n"
            f"      <text xml:space=\"preserve\">{text}</text>\n    </revision>\n  </page>\n")


WIKI_HEAD = ('<mediawiki xmlns="http://www.mediawiki.org/xml/export-0.10/" xml:lang="en">\n  <siteinfo>\n'
             "    <dbname>enwiki</dbname>\n    <base>https://en.wikipedia.org/wiki/Main_Page</base>\n"
             '    <namespaces>\n      <namespace key="0" case="first-letter" />\n    </namespaces>\n  </siteinfo>\n')


def wiki_xml(folder: Path, extra: list[dict], name: str = "enwiki-20230301-pages-articles.xml") -> str:
    from xml.sax.saxutils import escape

    path = folder / name
    pages = []
    for i, columns in enumerate(extra):
        fields = "".join(f"    <{xml_name(k)}>{escape(json.dumps(v))}</{xml_name(k)}>\n" for k, v in columns.items())
        text = f"Text of page {i}.&lt;ref&gt;[https://example.org/{i} a source]&lt;/ref&gt;"
        pages.append(wiki_page(i + 1, f"Page {i}", text, fields))
    path.write_text(WIKI_HEAD + "".join(pages) + "</mediawiki>\n")
    return str(path)


def wet_record(text: str, url: str, extra_headers: str = "") -> bytes:
    body = text.encode("utf-8")
    head = (f"WARC/1.0\r\nWARC-Type: conversion\r\nWARC-Target-URI: {url}\r\nWARC-Date: 2019-07-17T12:00:00Z\r\n"
            f"WARC-Record-ID: <urn:uuid:{zlib.crc32(url.encode()):032x}>\r\n{extra_headers}Content-Type: text/plain\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode()
    return head + body + b"\r\n\r\n"


def wet_file(folder: Path, extra: list[dict]) -> str:
    path = folder / "CC-MAIN-2019-30-x.warc.wet.gz"
    records = []
    for i, columns in enumerate(extra):
        headers = "".join(f"{k}: {json.dumps(v)}\r\n" for k, v in columns.items())
        records.append(gzip.compress(wet_record(f"document {i}\nsecond line", f"https://x.org/{i}", headers)))
    path.write_bytes(b"".join(records))
    return str(path)


def arxiv_folder(folder: Path, extra: list[dict]) -> str:
    paper = folder / "2101.00001"
    paper.mkdir()
    (paper / "main.tex").write_text("\\documentclass{article}\\begin{document}Hello.\\end{document}\n")
    for name in file_names(extra):
        (paper / f"{name}.tex").write_text("% a part\n")
    return str(paper)


def repository(folder: Path, extra: list[dict]) -> str:
    repo = folder / "repo"
    repo.mkdir()
    (repo / "LICENSE").write_text(MIT)
    for name in file_names(extra):
        (repo / f"{name}.py").write_text("x = 1\n")
    return str(repo)


def file_names(extra: list[dict]) -> list[str]:
    """Files named by the first row's extra columns; as many neutral names for a clean input."""
    return list(extra[0]) if extra and extra[0] else [f"part{n}" for n in range(len(INTERNAL))]


MIT = ("MIT License\n\nCopyright (c) 2020 Someone\n\nPermission is hereby granted, free of charge, to any person "
       "obtaining a copy of this software and associated documentation files (the \"Software\"), to deal in the "
       "Software without restriction, including without limitation the rights to use, copy, modify, merge, publish, "
       "distribute, sublicense, and/or sell copies of the Software, and to permit persons to whom the Software is "
       "furnished to do so, subject to the following conditions:\n\nThe above copyright notice and this permission "
       "notice shall be included in all copies or substantial portions of the Software.\n\nTHE SOFTWARE IS PROVIDED "
       "\"AS IS\", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF "
       "MERCHANTABILITY, FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE AUTHORS OR "
       "COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER LIABILITY, WHETHER IN AN ACTION OF CONTRACT, "
       "TORT OR OTHERWISE, ARISING FROM, OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN "
       "THE SOFTWARE.\n")

READERS = {  # slice -> (how to make it, its input from rows of extra columns)
    "books-jsonl": (Books, books_jsonl),
    "books-parquet": (Books, books_parquet),
    "github-bigquery": (lambda: GitHub(tokenizer="unused"), bigquery_jsonl),
    "github-repository": (lambda: GitHub(tokenizer="unused"), repository),
    "c4": (C4, c4_jsonl),
    "stackexchange": (StackExchange, posts_xml),
    "wikipedia": (Wikipedia, wiki_xml),
    "wikiref-urls": (lambda: WikirefUrls(language="en"), wiki_xml),
    "commoncrawl": (CommonCrawl, wet_file),
    "arxiv": (Arxiv, arxiv_folder),
}


def read_through_loop(slc: Slice, source: str) -> tuple[list, list[Failure]]:
    """Plan ``source`` and read every unit through the pipeline's reading loop (no pipeline)."""
    reader = ReadUnits(slc)
    reader.setup()
    records, failures = [], []
    for unit in slc.plan(source):
        if isinstance(unit, Failure):
            failures.append(unit)
            continue
        for out in reader.process(unit):
            if getattr(out, "tag", None) == FAILURES:
                failures.append(out.value)
            else:
                records.extend(out)
    return records, failures


def working_state(records: list) -> list[dict]:
    """Each record's ``_``-prefixed meta, the unit name aside, in order key order."""
    def comparable(value):  # a paper's files are compared by their contents (their names differ)
        return sorted(map(repr, value.values())) if isinstance(value, dict) else value

    return [{k: comparable(v) for k, v in record["meta"].items() if k.startswith("_") and k != "_unit"}
            for _, record in sorted(records, key=lambda item: item[0].split("|")[0])]


@pytest.mark.parametrize("reader", sorted(READERS))
def test_no_input_field_sets_working_state_or_stops_the_reading_loop(reader, tmp_path):
    make, write = READERS[reader]
    rows = len(HOSTILE_VALUES)
    (tmp_path / "clean").mkdir()
    (tmp_path / "hostile").mkdir()
    clean, clean_failures = read_through_loop(make(), write(tmp_path / "clean", [{} for _ in range(rows)]))
    hostile, failures = read_through_loop(
        make(), write(tmp_path / "hostile", [dict.fromkeys(INTERNAL, value) for value in HOSTILE_VALUES]))
    assert clean and not clean_failures
    assert not failures, failures
    assert len(hostile) == len(clean)
    assert working_state(hostile) == working_state(clean)  # no row chose its own fate


@pytest.mark.parametrize("reader", ["books-jsonl", "books-parquet", "github-bigquery"])
def test_columns_named_like_working_state_are_kept_under_another_name(reader, tmp_path):
    from redpajama.pipelines.runs.sink import encode_record

    make, write = READERS[reader]
    columns = {"_source_bytes": "x", "_skip": "license_not_allowed", "row__skip": "taken", "source": "s", "id": 7}
    records, failures = read_through_loop(make(), write(tmp_path, [columns]))
    assert not failures
    written = json.loads(encode_record(records[0][1]))["meta"]
    if reader == "books-parquet":  # parquet cells hold the JSON text of the values in this test
        columns = {key: json.dumps(value) for key, value in columns.items()}
    assert written["row__source_bytes"] == columns["_source_bytes"]
    assert {written["row__skip"], written["row_row__skip"]} == {columns["_skip"], columns["row__skip"]}
    if reader == "github-bigquery":
        [(_, record)] = records
        assert SelectFiles().apply(record) is record  # kept: the row's "_skip" chose nothing


def test_a_reader_item_that_breaks_the_loops_bookkeeping_fails_alone():
    class Odd(Slice):
        name = "odd"

        def read(self, unit):
            yield "a", {"text": "one", "meta": {"id": "a", "_source_bytes": "x"}}
            yield "b", {"text": None, "meta": {"id": "b"}}  # a reader's bug: fails alone
            yield "c", {"text": "three", "meta": {"id": "c", "_source_bytes": 5}}
            yield "d\udcff", {"text": "four", "meta": {"id": "d"}}  # names the file system could not decode
            yield "e", {"text": "five \ud800", "meta": {"id": "e"}}
            yield "f", {"text": "six", "meta": {"id": "f", "_files": {"a\udcfe.tex": "x"}}}
            yield "g", {"text": "seven", "meta": {"id": "g"}}

    from redpajama.slices.base import WorkUnit

    reader = ReadUnits(Odd())
    reader.setup()
    outputs = list(reader.process(WorkUnit("odd.txt")))
    records = [item for out in outputs if isinstance(out, list) for item in out]
    failed = [out.value for out in outputs if getattr(out, "tag", None) == FAILURES]
    assert [key for key, _ in records] == ["a", "c", "g"]
    assert [(failure.reason, failure.location) for failure in failed] == [
        ("reader_failed", "b"), ("invalid_record", "d\\xff"), ("invalid_record", "e"), ("invalid_record", "f")]


def test_a_glob_that_matches_a_name_that_is_not_utf8_counts_it(tmp_path):
    from redpajama.pipelines.beam.reading import ExpandInputs

    (tmp_path / "good.txt").write_text("a book")
    with open(os.fsencode(tmp_path) + b"/bad\xff.txt", "w") as handle:
        handle.write("another")
    expand = ExpandInputs(Books())
    expand.setup()
    out = list(expand.process(str(tmp_path / "*.txt")))
    assert [item for item in out if isinstance(item, str)] == [str(tmp_path / "good.txt")]
    [failure] = [item.value for item in out if not isinstance(item, str)]
    assert failure.reason == "invalid_file_name" and failure.source.endswith("bad\\xff.txt")


# --- JSON nested deeper than a parser's stack -------------------------------------------------


DEEP = "[" * 100_000 + "]" * 100_000


@pytest.mark.parametrize("reader", ["books-jsonl", "github-bigquery", "c4"])
def test_a_row_nested_too_deep_fails_alone(reader, tmp_path):
    make, write = READERS[reader]
    path = Path(write(tmp_path, [{} for _ in range(49)]))
    lines = path.read_text().splitlines(keepends=True)
    deep_value = "[" * 500 + "]" * 500  # parses, but no pickle of a record could hold it
    lines[10] = lines[10].rstrip("\n")[:-1] + f', "deep": {DEEP}}}\n'
    lines[20] = lines[20].rstrip("\n")[:-1] + f', "deep": {deep_value}}}\n'
    lines.insert(30, DEEP + "\n")
    path.write_text("".join(lines))
    records, failures = read_through_loop(make(), str(path))
    assert len(records) == 47
    assert [(f.reason, f.location) for f in failures] == [
        ("invalid_record", "line 11"), ("invalid_record", "line 21"), ("invalid_record", "line 31")]


def test_a_books_run_with_every_internal_name_as_a_column_completes(tmp_path):
    from tests.integration.helpers import records, run

    rows = [dict.fromkeys(INTERNAL, value) for value in HOSTILE_VALUES]
    source = books_jsonl(tmp_path, rows)
    outcome = run(Books(), [source], tmp_path / "out", workers=1)
    assert outcome.stats["read"] == outcome.stats["kept"] == len(rows) and outcome.stats["failed"] == 0
    written = records(outcome.slice_dir)
    assert all(doc["meta"]["row__source_bytes"] == row["_source_bytes"] for doc, row in
               zip(sorted(written, key=lambda doc: doc["meta"]["id"]), rows, strict=True))


# --- GitHub repositories: undecodable names, special files, links out of the repository --------


def hostile_repository(folder: Path) -> Path:
    repo = Path(repository(folder, [{"good": 1}]))
    (repo / "src").mkdir()
    (repo / "src" / "main.py").write_text("print('hello')\n")
    os.mkfifo(repo / "src" / "pipe.py")
    bad_name = os.fsencode(repo / "src") + b"/bad\xff\xfe.py"
    with open(bad_name, "wb") as handle:
        handle.write(b"value = 2\n")
    secret = folder / "secret.txt"
    secret.write_text("ref: refs/heads/SECRET-TEXT\n[remote \"origin\"]\n\turl = git@github.com:leak/SECRET-TEXT.git\n")
    (repo / ".git").mkdir()
    (repo / ".git" / "HEAD").symlink_to(secret)
    (repo / ".git" / "config").symlink_to(secret)
    return repo


def test_a_repository_reads_nothing_outside_itself_and_counts_what_it_cannot_read(tmp_path):
    repo = hostile_repository(tmp_path)
    records, failures = read_through_loop(GitHub(tokenizer="unused"), str(repo))
    meta = {record["meta"]["path"]: record["meta"] for _, record in records}
    assert sorted(meta) == ["LICENSE", "good.py", "src/main.py"]
    assert all(m["ref"] == "" and m["repo_name"] == "repo" for m in meta.values())  # HEAD/config lead outside
    assert sorted((Path(f.source).name, f.reason) for f in failures) == [
        ("bad\\xff\\xfe.py", "invalid_file_name"), ("pipe.py", "not_regular_file")]


def test_a_github_run_over_a_hostile_repository_completes(tmp_path):
    from tests.conftest import SHARED, need
    from tests.integration.helpers import errors, records, run

    tokenizer = need(SHARED / "models" / "gpt-neox-20b" / "20B_tokenizer.json")
    repo = hostile_repository(tmp_path)
    outcome = run(GitHub(tokenizer=str(tokenizer)), [repo], tmp_path / "out", workers=1)
    assert outcome.stats["failed"] == 2 and outcome.stats["read"] == 5
    assert sorted(e["reason"] for e in errors(outcome.slice_dir)) == ["invalid_file_name", "not_regular_file"]
    assert "SECRET" not in json.dumps(records(outcome.slice_dir))


def test_links_and_special_members_of_a_bulk_tar_are_counted(tmp_path):
    import io
    import tarfile

    paper = gzip.compress(b"\\documentclass{article}\\begin{document}Hello.\\end{document}\n")
    path = tmp_path / "arXiv_src_2101_001.tar"
    with tarfile.open(path, "w") as archive:
        def add(name: str, kind: bytes, data: bytes = b"", target: str = "") -> None:
            info = tarfile.TarInfo(name)
            info.type, info.size, info.linkname = kind, len(data), target
            archive.addfile(info, io.BytesIO(data) if data else None)

        add("2101", tarfile.DIRTYPE)
        add("2101/2101.00001.gz", tarfile.REGTYPE, paper)
        add("2101/2101.00002.gz", tarfile.SYMTYPE, target="/etc/passwd")
        add("2101/2101.00003.gz", tarfile.LNKTYPE, target="2101/2101.00001.gz")
        add("2101/2101.00004.gz", tarfile.FIFOTYPE)
    records, failures = read_through_loop(Arxiv(), str(path))
    assert [record["meta"]["arxiv_id"] for _, record in records] == ["2101.00001"]
    assert [(f.location, f.reason) for f in failures] == [
        ("2101/2101.00002.gz", "link_member"), ("2101/2101.00003.gz", "link_member"),
        ("2101/2101.00004.gz", "not_regular_file")]


# --- C4: the CommonCrawl output it is compared with -------------------------------------------


def test_a_cut_or_damaged_commoncrawl_shard_is_counted_and_the_c4_run_goes_on(tmp_path):
    import random

    import zstandard

    from tests.integration.helpers import errors, run

    def shard(path: Path, lines: list[str]) -> bytes:
        path.parent.mkdir(parents=True, exist_ok=True)
        data = zstandard.ZstdCompressor().compress("".join(line + "\n" for line in lines).encode())
        path.write_bytes(data)
        return data

    def line(url: str) -> str:
        return json.dumps({"text": "t", "meta": {"url": url}})

    output = tmp_path / "common_crawl"
    shard(output / "2019-30" / "en_head-00000-of-00002.jsonl.zst", [line("https://x/0"), line("https://x/1")])
    shard(output / "2019-30" / "en_head-00001-of-00002.jsonl.zst",
          [line("https://x/2"), "{not json", "[1, 2]", DEEP, line("https://x/3")])
    rng = random.Random(0)
    filler = [line(f"https://filler/{rng.getrandbits(64):x}" * 20) for _ in range(20_000)]
    cut = output / "2019-30" / "en_middle-00000-of-00001.jsonl.zst"
    data = shard(cut, [line("https://x/4"), *filler])
    cut.write_bytes(data[: len(data) // 2])
    c4_input = c4_jsonl(tmp_path, [{} for _ in range(6)])  # urls https://x/0 ... https://x/5
    outcome = run(C4(commoncrawl_output=str(output)), [c4_input], tmp_path / "out", workers=1)
    [step] = outcome.stats["steps"]
    assert step["matched"] == 5 and outcome.stats["kept"] == 6
    assert step["reference_failures"] == 4 and outcome.stats["failed"] == 0
    found = sorted((Path(e["source"]).name, e["location"], e["reason"]) for e in errors(outcome.slice_dir))
    assert found[:3] == [("en_head-00001-of-00002.jsonl.zst", f"line {n}", "invalid_reference") for n in (2, 3, 4)]
    assert found[3][0] == cut.name and found[3][2] == "corrupt_compression"


# --- StackExchange: every row, whatever the line layout ------------------------------------------


def posts_file(folder: Path, body: str) -> str:
    path = folder / "beer.stackexchange.com" / "Posts.xml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text('<?xml version="1.0" encoding="utf-8"?>\n' + body)
    return str(path)


def row(post_id: int, extra: str = "") -> str:
    return f'<row Id="{post_id}" PostTypeId="1" Score="2" Title="Q{post_id}" Body="&lt;p&gt;b{post_id}&lt;/p&gt;" {extra}/>'


@pytest.mark.parametrize("layout, ids, failed", [
    ("<posts>" + row(1) + "\n  " + row(2) + "\n</posts>", [1, 2], 0),  # the first row on the <posts> line
    ("<posts>\n  " + row(1) + row(2) + " " + row(3) + "\n</posts>", [1, 2, 3], 0),  # rows sharing a line
    ("<posts>" + row(1) + row(2) + "</posts>", [1, 2], 0),  # the whole file on one line
    ("<posts>\n  " + row(1).replace(" ", "\n    ") + "\n  " + row(2).replace('" ', '"\r\n\t') + "\n</posts>",
     [1, 2], 0),  # rows split across lines
    ("<posts>\n  " + row(1, 'Tags="a/>b" Other="x > y" ') + "\n</posts>", [1], 0),  # '/>' inside a value
    ("<posts>\n  <!-- " + row(9) + " -->" + row(1) + "\n  <?pi " + row(8) + " ?>\n</posts>", [1], 0),
    ("<posts>\n  " + row(1) + '<row Id="2" Title="unclosed />' + row(3) + "\n</posts>", [1, 3], 1),
    ("<posts>\n  " + row(1) + '<row Id="x" />' + row(3) + "\n</posts>", [1, 3], 1),  # a bad value fails alone
    ('<posts>\n  <row Id="1" PostTypeId="1" Title="Q1" Body="b"></row>' + row(2) + "\n</posts>", [1, 2], 0),
])
def test_every_posts_row_is_read_whatever_the_line_layout(layout, ids, failed, tmp_path):
    records, failures = read_through_loop(StackExchange(), posts_file(tmp_path, layout))
    assert sorted(record["meta"]["_post_id"] for _, record in records) == ids
    assert [f.reason for f in failures] == ["invalid_row"] * failed


def test_a_row_longer_than_the_cap_fails_alone(tmp_path):
    from redpajama.core.streams import Limits
    from redpajama.slices.base import RunContext

    long_row = row(2, 'Long="' + "x" * 5000 + '" ')
    slc = StackExchange(context=RunContext(limits=Limits(max_record_bytes=2000)))
    records, failures = read_through_loop(slc, posts_file(tmp_path, "<posts>" + row(1) + long_row + row(3) + "</posts>"))
    assert sorted(record["meta"]["_post_id"] for _, record in records) == [1, 3]
    assert [f.reason for f in failures] == ["record_too_large"]


# --- Wikipedia: duplicate page ids, markup inside text ------------------------------------------


def dump(folder: Path, pages: list[str], name: str = "enwiki-20230301-pages-articles.xml") -> Path:
    path = folder / name
    path.write_text(WIKI_HEAD + "".join(pages) + "</mediawiki>\n")
    return path


INJECTED = ("<![CDATA[ quoted </text></revision></page>\n  <page>\n    <title>Fake</title>\n    <ns>0</ns>\n"
            "    <id>666</id>\n    <revision><text>FAKE</text></revision>\n  </page>\n  <page><title>Fake2</title>"
            "<ns>0</ns><id>667</id><revision><text>more ]]> after")
COMMENTED = "<!-- </page><page><title>Fake3</title><ns>0</ns><id>668</id><revision><text>F</text></revision></page> -->"


def wiki_read(path: Path, **options) -> tuple[dict[str, str], list[Failure]]:
    records, failures = read_through_loop(Wikipedia(**options), str(path))
    texts: dict[str, str] = {}
    for _, record in records:
        assert record["meta"]["id"] not in texts, record["meta"]["id"]
        texts[record["meta"]["id"]] = record["text"]
    return texts, failures


@pytest.mark.parametrize("split_mb", [None, 0.0005])  # whole file, and byte ranges far smaller than a page
def test_markup_inside_a_page_text_never_makes_a_page(split_mb, tmp_path):
    filler = "word " * 200
    pages = [wiki_page(1, "One", filler), wiki_page(2, "Two", filler + INJECTED + filler, COMMENTED),
             wiki_page(3, "Three", filler)]
    path = dump(tmp_path, pages)
    texts, failures = wiki_read(path, **({"split_mb": split_mb} if split_mb else {}))
    assert sorted(texts) == ["wikipedia/en/1", "wikipedia/en/2", "wikipedia/en/3"] and not failures
    assert "</page>" in texts["wikipedia/en/2"] and "FAKE" in texts["wikipedia/en/2"]


def test_a_compressed_dump_with_injected_markup_reads_the_same(tmp_path):
    import bz2

    path = dump(tmp_path, [wiki_page(1, "One", "a" + INJECTED), wiki_page(2, "Two", "b")])
    packed = tmp_path / "enwiki-20230301-pages-articles.xml.bz2"
    packed.write_bytes(bz2.compress(path.read_bytes()))
    texts, failures = wiki_read(packed)
    assert sorted(texts) == ["wikipedia/en/1", "wikipedia/en/2"] and not failures


def test_a_page_id_seen_before_is_counted_as_a_duplicate_and_the_first_kept(tmp_path):
    pages = [wiki_page(5, "First", "first text"), wiki_page(6, "Other", "other"), wiki_page(5, "Again", "second text"),
             wiki_page(6, "Other", "other")]
    texts, failures = wiki_read(dump(tmp_path, pages))
    assert texts == {"wikipedia/en/5": "first text", "wikipedia/en/6": "other"}
    assert [f.reason for f in failures] == ["duplicate_page_id"] * 2
    assert all("page at byte" in f.location for f in failures)


def test_an_unclosed_page_fails_alone(tmp_path):
    broken = wiki_page(2, "Two", "cut").replace("  </page>\n", "")
    texts, failures = wiki_read(dump(tmp_path, [wiki_page(1, "One", "a"), broken, wiki_page(3, "Three", "c")]))
    assert sorted(texts) == ["wikipedia/en/1", "wikipedia/en/3"]
    assert [f.reason for f in failures] == ["invalid_xml"]


# --- 7z: --max-expansion holds for archive members too ---------------------------------------------


MAKE_SEVEN_ZIP_BOMB = r"""
import sys
import py7zr

rows = b"".join(b'  <row Id="%d" PostTypeId="1" Score="1" Title="t" Body="b" />\n' % i for i in range(1, 4))
filler = b'  <row Id="99" PostTypeId="2" ParentId="1" Score="0" Body="' + b"a" * 100_000 + b'" />\n'
with py7zr.SevenZipFile(sys.argv[1], "w") as archive:
    archive.writestr(b"<posts>\n" + rows + filler * 1200 + b"</posts>\n", "Posts.xml")  # ~120 MB
"""

READ_SEVEN_ZIP_BOMB = r"""
import json, os, sys
from redpajama.core.records import Failure
from redpajama.slices.base import WorkUnit
from redpajama.slices.stackexchange import StackExchange

path = sys.argv[1]
documents, failures = 0, []
for item in StackExchange().read(WorkUnit(path)):
    if isinstance(item, Failure):
        failures.append(item.reason)
    else:
        documents += 1
# VmHWM is this address space's peak; ru_maxrss would carry over the forking parent's through exec
peak_kb = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM:"))
print(json.dumps({"documents": documents, "failures": failures, "archive": os.path.getsize(path),
                  "peak_mb": peak_kb >> 10}))
"""


def test_a_7z_member_that_expands_past_max_expansion_fails_in_bounded_memory(tmp_path):
    import subprocess
    import sys

    archive = str(tmp_path / "beer.stackexchange.com.7z")
    subprocess.run([sys.executable, "-c", MAKE_SEVEN_ZIP_BOMB, archive], timeout=600, check=True)  # its own peak
    result = subprocess.run([sys.executable, "-c", READ_SEVEN_ZIP_BOMB, archive],
                            capture_output=True, text=True, timeout=600, check=True)
    outcome = json.loads(result.stdout.splitlines()[-1])
    assert outcome["archive"] < 1 << 20  # a few KB that would expand to 120 MB
    assert outcome["failures"] == ["decompression_bomb"]
    assert 3 <= outcome["documents"] < 1200  # the rows before the cap are kept
    assert outcome["peak_mb"] < 512  # reading alone peaks near 300 MB


# --- WET/WARC: no record lost or shortened silently ------------------------------------------------


def plain_wet() -> tuple[bytes, list[int]]:
    """The sample WET file uncompressed, and the offsets of its records."""
    from tests.unit.test_hostile_readers import members, wet_bytes

    data = wet_bytes()
    starts = members(data)
    plain = b"".join(zlib.decompressobj(31).decompress(data[a:b]) for a, b in zip(starts, [*starts[1:], len(data)], strict=True))
    return plain, [i for i in range(len(plain)) if plain.startswith(b"WARC/1.0\r\n", i)]


def read_wet(data: bytes, name: str, **limits) -> tuple[int, list[str]]:
    from redpajama.core.streams import Limits
    from redpajama.formats.warc_records import RawDocument
    from redpajama.formats.webarchive import read_archive

    documents, reasons = 0, []
    for item in read_archive(lambda offset: io.BytesIO(data[offset:]), name, Limits(**limits)):
        if isinstance(item, RawDocument):
            documents += 1
        elif isinstance(item, Failure):
            reasons.append(item.reason)
    return documents, reasons


def damaged(plain: bytes, lines: list[int], damage: str) -> bytes:
    record = plain[lines[50] : lines[51]]
    if damage == "garbage":
        record = b"<!doctype html><p>not a record</p>\r\n\r\n"
    elif damage == "short_length":
        record = re.sub(rb"Content-Length: (\d+)", lambda m: b"Content-Length: %d" % (int(m.group(1)) - 30), record)
    elif damage == "huge_length":
        record = re.sub(rb"Content-Length: \d+", b"Content-Length: 10000000000", record)
    elif damage == "length_past_the_end":
        record = re.sub(rb"Content-Length: \d+", b"Content-Length: %d" % (len(plain) + 1000), record)
    return plain[: lines[50]] + record + plain[lines[51] :]


DAMAGE = {"garbage": "unreadable_record", "short_length": "invalid_content_length",
          "huge_length": "record_too_large", "length_past_the_end": "truncated_record"}


@pytest.mark.parametrize("damage", sorted(DAMAGE))
@pytest.mark.parametrize("packing", ["plain", "one_gzip_member", "one_large_gzip_member"])
def test_a_damaged_record_fails_alone_wherever_it_sits(packing, damage):
    plain, lines = plain_wet()
    records = len(lines) - 1  # the warcinfo record is no document
    if packing == "one_large_gzip_member":  # larger than a member that is held whole: streamed
        plain, lines = plain * 8, [line + copy * len(plain) for copy in range(8) for line in lines]
        records = 8 * records
    data = damaged(plain, lines, damage)
    if packing != "plain":
        data = gzip.compress(data)
    assert read_wet(data, "x.warc.wet" + (".gz" if packing != "plain" else "")) == (records - 1, [DAMAGE[damage]])


def test_an_honest_record_longer_than_the_cap_is_skipped_whole():
    plain, lines = plain_wet()
    inner = b"Quoted archive:\r\nWARC/1.0\r\nWARC-Type: conversion\r\nContent-Length: 2\r\n\r\nhi\r\n\r\n" * 6000
    big = (b"WARC/1.0\r\nWARC-Type: conversion\r\nWARC-Target-URI: https://x/\r\nContent-Length: %d\r\n\r\n"
           % len(inner)) + inner + b"\r\n\r\n"
    data = plain[: lines[50]] + big + plain[lines[50] :]
    assert len(big) > 400_000 > max(b - a for a, b in zip(lines, [*lines[1:], len(plain)], strict=True))
    assert read_wet(data, "x.warc", max_record_bytes=400_000) == (len(lines) - 1, ["record_too_large"])


@pytest.mark.parametrize("copies", [1, 8])  # a member held whole, and one streamed
def test_a_cut_whole_file_gzip_keeps_the_records_before_the_cut(copies):
    plain, lines = plain_wet()
    plain, lines = plain * copies, [line + copy * len(plain) for copy in range(copies) for line in lines]
    cut = lines[-40] + 100  # inside a record near the end
    packed = zlib.compressobj(6, zlib.DEFLATED, 31)
    data = packed.compress(plain) + packed.flush()
    whole, produced, size = zlib.decompressobj(31), 0, 0
    while produced <= cut:  # a prefix of the compressed file that decompresses past the cut
        produced += len(whole.decompress(data[size : size + 4096]))
        size += 4096
    documents, reasons = read_wet(data[:size], "x.warc.wet.gz")
    records_before = sum(1 for line in lines if line < cut) - copies  # whole records, warcinfo records aside
    assert reasons == ["truncated_archive"]
    assert records_before - 1 <= documents <= records_before  # the last one before the cut is unverified
