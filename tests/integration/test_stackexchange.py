import re
from pathlib import Path

import py7zr
from lxml import etree
from redpajama.filters.html import html_to_text
from redpajama.slices.stackexchange import StackExchange

from tests.conftest import SE, need
from tests.integration.helpers import errors, records, run

BEER = SE / "beer.stackexchange.com" / "Posts.xml"
HISTORY = SE / "history.meta.stackexchange.com-2018" / "Posts.xml"


def pack(path: Path, members: list[tuple[str, bytes]]) -> Path:
    with py7zr.SevenZipFile(path, "w") as archive:
        for name, data in members:
            archive._writestr(data, name)  # also writes hostile names, which writestr refuses
    return path


def test_beer_archive_and_history_meta_with_doctype(tmp_path, lid_model):
    archive = pack(tmp_path / "beer.stackexchange.com.7z", [("Posts.xml", need(BEER).read_bytes()),
                                                           ("Users.xml", b"<users>\n</users>\n")])
    outcome = run(StackExchange(lid_model=lid_model), [archive, need(HISTORY)], tmp_path / "out")
    docs = records(outcome.slice_dir)
    beer = [d for d in docs if "beer.stackexchange.com" in d["meta"]["url"]]
    history = [d for d in docs if "history.meta.stackexchange.com" in d["meta"]["url"]]
    assert len(beer) == 663  # every question, answered or not, as RedPajama's 663
    assert len(history) == outcome.stats["kept"] - 663 > 0
    assert outcome.stats["failed"] == 0
    assert outcome.stats["dropped"]["answer_merged"] == 1572 + sum(d["text"].count("\nA: ") for d in history)
    meta = beer[0]["meta"]
    assert list(meta) == ["language", "url", "timestamp", "source", "question_score", "id", "language_score"]
    assert re.fullmatch(r"https://beer\.stackexchange\.com/questions/\d+", meta["url"])
    assert isinstance(meta["question_score"], int) and meta["source"] == "stackexchange"
    assert sum(d["meta"]["language"] == "en" for d in beer) / len(beer) > 0.95
    assert all(d["text"].startswith("Q: ") for d in docs)


def test_answers_follow_numeric_score(tmp_path, lid_model):
    rows = [r.attrib for r in etree.parse(str(need(BEER))).getroot()]
    answers: dict[str, list] = {}
    for row in rows:
        if row.get("ParentId"):
            answers.setdefault(row["ParentId"], []).append(row)
    # Questions where RedPajama's string sort ("9" above "10") changes the order.
    differing = {qid: items for qid, items in answers.items()
                 if [a["Id"] for a in sorted(items, key=lambda a: a["Score"], reverse=True)]
                 != [a["Id"] for a in sorted(items, key=lambda a: (-int(a["Score"]), int(a["Id"])))]}
    assert len(differing) > 10
    outcome = run(StackExchange(lid_model=lid_model), [BEER], tmp_path)
    by_id = {d["meta"]["id"].rsplit("/", 1)[1]: d for d in records(outcome.slice_dir)}
    for qid, items in differing.items():
        expected = [html_to_text(a["Body"]) for a in sorted(items, key=lambda a: (-int(a["Score"]), int(a["Id"])))]
        assert by_id[qid]["text"].split("\nA: ")[1:] == expected


def test_hostile_archive_and_broken_files_are_counted(tmp_path, lid_model):
    hostile = pack(tmp_path / "evil.stackexchange.com.7z", [
        ("Posts.xml", b'<posts>\n  <row Id="1" Title="Hi" Body="&lt;p&gt;ok&lt;/p&gt;" Score="1" />\n</posts>\n'),
        ("../../../escaped/Posts.xml", b"<posts/>"),
    ])
    corrupt = tmp_path / "corrupt.stackexchange.com.7z"
    corrupt.write_bytes(hostile.read_bytes()[:30])
    empty = tmp_path / "empty.stackexchange.com" / "Posts.xml"
    empty.parent.mkdir()
    empty.write_bytes(b"")
    outcome = run(StackExchange(lid_model=lid_model), [hostile, corrupt, empty], tmp_path / "out")
    assert sorted((Path(e["source"]).name, e["reason"]) for e in errors(outcome.slice_dir)) == [
        ("Posts.xml", "empty_input"), ("corrupt.stackexchange.com.7z", "corrupt_archive"),
        ("evil.stackexchange.com.7z", "unsafe_member")]
    assert [d["text"] for d in records(outcome.slice_dir)] == ["Q: Hi ok"]
    assert not list(tmp_path.parents[2].glob("escaped")) and not (tmp_path / "escaped").exists()
