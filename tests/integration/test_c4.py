"""C4 on its real shipping format: the 3 real records plus fixtures written in that format."""

import gzip
import json
from pathlib import Path

import zstandard
from redpajama.slices.c4 import C4

from tests.conftest import SHARED, need
from tests.integration.helpers import errors, records, run

REAL = SHARED / "c4" / "hf-datasets-dummy-en"


def write_c4(path: Path, rows: list, raw_lines: tuple = ()) -> Path:
    """One gzipped JSON object per line, no final newline, as allenai/c4 ships."""
    lines = [json.dumps(row) for row in rows] + list(raw_lines)
    path.write_bytes(gzip.compress("\n".join(lines).encode()))
    return path


def rows(prefix: str, count: int) -> list[dict]:
    return [{"url": f"https://{prefix}.example/{i}", "text": f"Document {i} of {prefix}.\nSecond line.",
             "timestamp": f"2019-04-{1 + i % 28:02d}T10:00:00Z"} for i in range(count)]


def test_tokens_counted_into_stats(tmp_path):
    from redpajama.pipelines.inprocess.executor import InProcessExecutor
    from redpajama.pipelines.runs.run import run_slice
    from tokenizers import Tokenizer

    tokenizer = need(SHARED / "models" / "gpt-neox-20b" / "20B_tokenizer.json")
    train = need(REAL / "c4-train.00000-of-01024.json.gz")
    outcome = run_slice(C4(), [str(train)], str(tmp_path), InProcessExecutor(), tokenizer=str(tokenizer))
    texts = [d["text"] for d in records(outcome.slice_dir)]
    counted = sum(len(Tokenizer.from_file(str(tokenizer)).encode(t, add_special_tokens=False).ids) + 1 for t in texts)
    assert outcome.stats["tokens"] == counted
    assert json.loads((tmp_path / "c4" / "stats.json").read_text())["tokens"] == counted


def test_real_records_reformatted_and_validation_skipped(tmp_path):
    train, validation = need(REAL / "c4-train.00000-of-01024.json.gz"), REAL / "c4-validation.00000-of-00008.json.gz"
    outcome = run(C4(), [train, validation], tmp_path / "a")
    docs = records(outcome.slice_dir)
    assert outcome.stats["read"] == 3 and len(docs) == 3
    originals = [json.loads(line) for line in gzip.decompress(train.read_bytes()).decode().split("\n")]
    assert [d["text"] for d in docs] == [o["text"] for o in originals]
    assert docs[0]["meta"] == {"timestamp": originals[0]["timestamp"], "url": originals[0]["url"], "language": "en",
                               "source": "c4", "id": "c4/c4-train.00000-of-01024/0"}
    both = run(C4(include_validation=True), [train, validation], tmp_path / "b")
    assert both.stats["read"] == 6
    assert {d["meta"]["id"].split("/")[1] for d in records(both.slice_dir)} == {
        "c4-train.00000-of-01024", "c4-validation.00000-of-00008"}


def test_bad_lines_and_truncated_files_are_counted(tmp_path):
    good = write_c4(tmp_path / "c4-train.00001-of-01024.json.gz", rows("a", 40), raw_lines=('{"url": broken',))
    whole = gzip.compress("\n".join(json.dumps(r) for r in rows("b", 200)).encode())
    cut = tmp_path / "c4-train.00002-of-01024.json.gz"
    cut.write_bytes(whole[: len(whole) // 2])
    missing = write_c4(tmp_path / "c4-train.00003-of-01024.json.gz", [{"url": "u", "timestamp": "t"}])
    outcome = run(C4(), [good, cut, missing], tmp_path / "out")
    reasons = sorted(e["reason"] for e in errors(outcome.slice_dir))
    assert reasons == ["corrupt_compression", "invalid_record", "invalid_record"]
    kept_b = [d for d in records(outcome.slice_dir) if "b.example" in d["meta"]["url"]]
    assert 0 < len(kept_b) < 200  # every complete line before the cut
    assert outcome.stats["kept"] == 40 + len(kept_b) and outcome.stats["failed"] == 3


def test_overlap_with_the_commoncrawl_output_is_counted_and_optionally_dropped(tmp_path):
    c4 = write_c4(tmp_path / "c4-train.00004-of-01024.json.gz", rows("shared", 10) + rows("own", 15))
    cc_dir = tmp_path / "cc" / "common_crawl" / "2019-30"
    cc_dir.mkdir(parents=True)
    cc_lines = [json.dumps({"text": "x", "meta": {"url": f"https://shared.example/{i}"}}) for i in range(0, 10, 2)]
    cc_lines.append(json.dumps({"text": "y", "meta": {"url": "https://elsewhere.example/"}}))
    (cc_dir / "en_head-00000-of-00001.jsonl.zst").write_bytes(zstandard.compress("\n".join(cc_lines).encode() + b"\n"))
    counted = run(C4(commoncrawl_output=str(tmp_path / "cc" / "common_crawl")), [c4], tmp_path / "counted")
    step = counted.stats["steps"][0]
    assert step["name"] == "commoncrawl_overlap" and step["matched"] == 5 and counted.stats["kept"] == 25
    dropped = run(C4(commoncrawl_output=str(tmp_path / "cc" / "common_crawl"), drop_commoncrawl_urls=True), [c4],
                  tmp_path / "dropped")
    assert dropped.stats["dropped"] == {"url_in_commoncrawl": 5} and dropped.stats["kept"] == 20
    assert not {f"https://shared.example/{i}" for i in range(0, 10, 2)} & {d["meta"]["url"] for d in records(dropped.slice_dir)}
