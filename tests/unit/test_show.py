"""``redpajama show``: documents and rejects printed from shards, streamed, with one-line mistakes."""

import json
import os
import random
import threading

import pytest
import zstandard
from redpajama.core import storage
from redpajama.pipelines.commands import show
from redpajama.pipelines.commands.cli import main


def shard(path, records, compressed=True):
    path.parent.mkdir(parents=True, exist_ok=True)
    data = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records).encode()
    path.write_bytes(zstandard.ZstdCompressor().compress(data) if compressed else data)
    return path


def doc(number, **meta):
    return {"text": f"Document {number}.\nSecond line of {number}.", "meta": {"id": f"d/{number}", **meta}}


@pytest.fixture
def out(tmp_path):
    """A slice folder as a run leaves it: shards, dead letters, rejects and stats.json."""
    folder = tmp_path / "out" / "common_crawl"
    shard(folder / "2019-30" / "en_head-00000-of-00002.jsonl.zst",
          [doc(n, bucket="head", perplexity=100.0 + n, nested={"lang": "en"}) for n in range(3)])
    shard(folder / "2019-30" / "en_tail-00000-of-00001.jsonl.zst", [doc(10, bucket="tail", perplexity=900.5)])
    shard(folder / "_errors" / "errors-00000-of-00001.jsonl", [{"reason": "x"}], compressed=False)
    shard(folder / "_dropped" / "near_duplicate-00000-of-00001.jsonl.zst", [doc(20, cluster="d/1")])
    shard(folder / "_dropped" / "language_id" / "language_score_below_threshold" / "rejects-00000-of-00001.jsonl.zst",
          [doc(30, language="fr", language_score=0.31), doc(31, language="de", language_score=0.42)])
    (folder / "stats.json").write_text(json.dumps({"dropped": {"near_duplicate": 1, "duplicate_lines": 7,
                                                               "language_score_below_threshold": 2}}))
    return folder


def cli(capsys, *argv):
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_shows_documents_of_a_slice_folder_and_never_its_rejects_or_dead_letters(out, capsys):
    code, text, err = cli(capsys, "show", out, "--n", "2")
    assert code == 0
    assert text.startswith("[1] en_head-00000-of-00002.jsonl.zst line 1\n  meta  {\"id\": \"d/0\", \"bucket\": \"head\"")
    assert "  text  (29 characters) Document 0.⏎ Second line of 0." in text and "[2]" in text and "[3]" not in text
    assert err.strip() == f"show: 2 documents from {out} (read 2 in 1 of 2 shards)"
    code, text, err = cli(capsys, "show", out, "--n", "50")
    assert text.count("\n[") + 1 == 4 and "d/20" not in text and "d/30" not in text
    assert err.strip() == f"show: 4 documents from {out} (read all 4 in 2 shards)"


def test_text_is_cut_to_the_width_and_terminal_escapes_are_shown_not_sent(tmp_path, capsys):
    folder = tmp_path / "c4"
    shard(folder / "c4-00000-of-00001.jsonl.zst", [{"text": "\x1b[31mred\x1b[0m " + "x" * 500, "meta": {"url": "u"}}])
    _, text, _ = cli(capsys, "show", folder, "--width", "20")
    assert "\x1b" not in text and "\\x1b[31mred\\x1b[0m" in text
    assert "  text  (513 characters) \\x1b[31mred\\x1b[0m xxxxxxx … (+493 characters)" in text
    _, text, _ = cli(capsys, "show", folder, "--json")
    assert json.loads(text) == {"text": "\x1b[31mred\x1b[0m " + "x" * 500, "meta": {"url": "u"}}


def test_where_matches_meta_values_numbers_patterns_and_text(out, capsys):
    def ids(*where):
        _, text, _ = cli(capsys, "show", out, "--n", "9", "--json", *[a for w in where for a in ("--where", w)])
        return [json.loads(line)["meta"]["id"] for line in text.splitlines()]

    assert ids("meta.bucket=tail") == ["d/10"]
    assert ids("meta.bucket!=head") == ["d/10"]
    assert ids("meta.perplexity>101") == ["d/2", "d/10"]
    assert ids("meta.perplexity<=101", "meta.bucket=head") == ["d/0", "d/1"]
    assert ids("meta.perplexity=900.5") == ["d/10"]
    assert ids("meta.nested.lang=en") == ["d/0", "d/1", "d/2"]
    assert ids("meta.id~^d/1") == ["d/1", "d/10"]
    assert ids("text~Second line of 2") == ["d/2"]
    assert ids("meta.missing=x") == []
    code, _, err = cli(capsys, "show", out, "--where", "meta.bucket=nothing")
    assert code == 0 and err.startswith("show: no documents matching meta.bucket=nothing in ") and "read all 4" in err


@pytest.mark.parametrize("where, words", [
    ("bucket=head", "expected meta.KEY=VALUE"), ("meta.perplexity>high", "is not one"),
    ("meta.title~(", "not a regular expression"), ("text=hello", "text~REGEX"), ("meta.", "expected meta.KEY=VALUE"),
])
def test_a_bad_where_is_one_line(out, capsys, where, words):
    code, text, err = cli(capsys, "show", out, "--where", where)
    assert code == 2 and text == "" and words in err and err.count("\n") == 1, err


def test_rejects_are_read_from_both_layouts_the_same_way(out, capsys):
    code, text, err = cli(capsys, "show", out, "--dropped", "near_duplicate")
    assert code == 0 and "d/20" in text and '"cluster": "d/1"' in text and "(near_duplicate)" in err
    _, text, _ = cli(capsys, "show", out, "--dropped", "language_score_below_threshold", "--where", "meta.language_score>0.4")
    assert "d/31" in text and "d/30" not in text and '"language_score": 0.42' in text
    _, text, _ = cli(capsys, "show", out, "--dropped", "language_id/language_score_below_threshold", "--json")
    assert [json.loads(line)["meta"]["id"] for line in text.splitlines()] == ["d/30", "d/31"]
    _, text, err = cli(capsys, "show", out, "--dropped", "--json")
    assert sorted(json.loads(line)["meta"]["id"] for line in text.splitlines()) == ["d/20", "d/30", "d/31"]
    assert err.startswith("show: 3 rejects from")


def test_a_reason_without_kept_rejects_says_what_is_kept(out, capsys):
    code, _, err = cli(capsys, "show", out, "--dropped", "duplicate_lines")
    assert code == 2 and err.count("\n") == 1
    assert "7 documents were dropped as 'duplicate_lines', but their text was not kept" in err
    assert "kept here: language_id/language_score_below_threshold, near_duplicate" in err
    code, _, err = cli(capsys, "show", out, "--dropped", "no_such_reason")
    assert code == 2 and "no rejects for 'no_such_reason'" in err and "stats.json counts duplicate_lines 7" in err


def test_missing_empty_unfinished_and_several_slice_folders_are_one_line(out, tmp_path, capsys):
    code, _, err = cli(capsys, "show", out.parent / "common_crawll")
    assert code == 2 and err.strip() == (f"redpajama: error: {out.parent / 'common_crawll'}: no such folder; "
                                         f"did you mean {out}?")
    empty = tmp_path / "empty"
    empty.mkdir()
    code, _, err = cli(capsys, "show", empty)
    assert code == 2 and "no output shards here" in err and err.count("\n") == 1
    (empty / "_temporary").mkdir()
    (empty / "_temporary" / "part").write_text("x")
    code, _, err = cli(capsys, "show", empty)
    assert code == 2 and "a run is writing it or was interrupted" in err and err.count("\n") == 1
    shard(out.parent / "c4" / "c4-00000-of-00001.jsonl.zst", [doc(1)])
    (out.parent / "c4" / "stats.json").write_text("{}")
    code, _, err = cli(capsys, "show", out.parent)
    assert code == 2 and "holds 2 slices (c4, common_crawl): name one" in err and err.count("\n") == 1
    code, _, err = cli(capsys, "show", out / "2019-30" / "nothing-*.zst")
    assert code == 2 and "no output shards match" in err


def test_plain_jsonl_line_shards_single_files_and_globs(tmp_path, capsys):
    shard(tmp_path / "book" / "book.jsonl", [{"meta": {"title": "T"}, "text": "Call me Ishmael."}], compressed=False)
    (tmp_path / "urls").mkdir()
    (tmp_path / "urls" / "urls-00000-of-00001.txt").write_text("https://a.example/\nhttps://b.example/\n")
    _, text, _ = cli(capsys, "show", tmp_path / "book")
    assert '"title": "T"' in text and "Call me Ishmael." in text
    _, text, _ = cli(capsys, "show", tmp_path / "urls" / "urls-00000-of-00001.txt", "--n", "1")
    assert text == "[1] urls-00000-of-00001.txt line 1\n  text  (18 characters) https://a.example/\n\n"
    _, text, _ = cli(capsys, "show", str(tmp_path / "urls" / "*.txt"), "--where", "text~b\\.example", "--json")
    assert json.loads(text) == {"text": "https://b.example/"}


def test_a_few_documents_of_a_large_shard_read_only_its_start(tmp_path, capsys):
    rng = random.Random(0)
    big = shard(tmp_path / "cc" / "en_head-00000-of-00001.jsonl.zst",
                [{"text": rng.randbytes(2000).hex(), "meta": {"id": str(n)}} for n in range(8000)])
    assert big.stat().st_size > 12 << 20
    before = storage.BYTES_READ.get(threading.get_ident(), 0)
    code, text, _ = cli(capsys, "show", tmp_path / "cc", "--n", "3")
    read = storage.BYTES_READ.get(threading.get_ident(), 0) - before
    assert code == 0 and text.count("\n[") == 2
    assert read <= 2 * storage.READ_CHUNK, read


def test_a_truncated_shard_is_named_in_one_line(tmp_path, capsys):
    data = zstandard.ZstdCompressor().compress(b"".join(json.dumps(doc(n)).encode() + b"\n" for n in range(20000)))
    (tmp_path / "s").mkdir()
    (tmp_path / "s" / "x-00000-of-00001.jsonl.zst").write_bytes(data[: len(data) // 2])
    code, text, err = cli(capsys, "show", tmp_path / "s", "--n", "100000", "--json")
    assert code == 2 and err.count("\n") == 1 and "x-00000-of-00001.jsonl.zst: unreadable after line" in err
    assert len(text.splitlines()) > 0  # what came before the cut was shown


def test_debug_is_accepted_anywhere_on_the_command_line(out, capsys, monkeypatch):
    monkeypatch.delenv("REDPAJAMA_DEBUG", raising=False)
    code, text, _ = cli(capsys, "show", out, "--debug", "--n", "1")
    assert code == 0 and text.startswith("[1] ") and os.environ.get("REDPAJAMA_DEBUG") == "1"
    monkeypatch.delenv("REDPAJAMA_DEBUG")
    code, _, err = cli(capsys, "run", "wikipedia", "--input", str(out / "none*.xml"), "--output", str(out), "--debug")
    assert code == 2 and "no input matches" in err and os.environ.get("REDPAJAMA_DEBUG") == "1"


def test_parse_where_reads_json_values_for_equality():
    record = {"meta": {"n": 3, "ok": True, "none": None, "s": "3"}}
    assert show.parse_where("meta.n=3").matches(record) and show.parse_where("meta.n=3.0").matches(record)
    assert show.parse_where("meta.ok=true").matches(record) and not show.parse_where("meta.ok=1").matches(record)
    assert show.parse_where("meta.none=null").matches(record) and show.parse_where("meta.s=3").matches(record)
