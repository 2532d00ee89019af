"""After the demo, ``report`` and ``sample --tokens`` count tokens with no network: the demo leaves
the tokenizer in the model cache, and the commands say where it came from or why a count is missing.

The tokenizer's download URL points at a closed loopback port, so no test here can pass by
downloading it."""

import json
import socket
from dataclasses import replace

import pytest
import zstandard
from redpajama.models import catalog
from redpajama.pipelines.commands import demo
from redpajama.pipelines.commands.cli import main
from tokenizers import Tokenizer

from tests.conftest import SHARED, need

TOKENIZER = SHARED / "models" / "gpt-neox-20b" / "20B_tokenizer.json"
TEXTS = ["The quick brown fox jumps over the lazy dog.", "Naïve café: ünïcödé text, twice.  Spaces   too.",
         "def f(x):\n    return x * 2\n"]


@pytest.fixture
def offline(tmp_path, monkeypatch):
    """An empty model cache, and the tokenizer's URL on a loopback port nothing listens on."""
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    monkeypatch.setenv("REDPAJAMA_CACHE", str(tmp_path / "cache"))
    url = f"http://127.0.0.1:{port}/EleutherAI/gpt-neox-20b/tokenizer.json"
    monkeypatch.setattr(catalog, "NEOX_TOKENIZER", replace(catalog.NEOX_TOKENIZER, url=url))
    return url


def output(tmp_path, stats_tokens=None):
    folder = tmp_path / "out" / "c4"
    folder.mkdir(parents=True)
    lines = "".join(json.dumps({"text": text, "meta": {"id": str(n)}}) + "\n" for n, text in enumerate(TEXTS))
    (folder / "c4-00000-of-00001.jsonl.zst").write_bytes(zstandard.ZstdCompressor().compress(lines.encode()))
    stats = {"slice": "c4", "read": 3, "kept": 3, "dropped": {}, "failed": 0, "units": {"planned": 1}}
    if stats_tokens is not None:
        stats.update(tokens=stats_tokens, tokens_counted_with={"tokenizer": "a.json", "eod_per_document": True})
    (folder / "stats.json").write_text(json.dumps(stats))
    return tmp_path / "out"


def expected_tokens() -> int:
    tokenizer = Tokenizer.from_file(str(need(TOKENIZER)))
    return sum(len(tokenizer.encode(text, add_special_tokens=False).ids) + 1 for text in TEXTS)


def cli(capsys, *argv):
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_the_demo_puts_its_tokenizer_in_the_cache_and_report_and_sample_count_offline(offline, tmp_path, capsys):
    need(TOKENIZER)
    choice = demo.demo_tokenizer(str(SHARED))
    assert choice.location == "cache:gpt-neox-20b-tokenizer.json"
    assert f"copied from {TOKENIZER}" in choice.says and "model cache" in choice.says
    out = output(tmp_path)
    code, text, err = cli(capsys, "report", out, "--workers", "1")
    assert code == 0
    first = err.splitlines()[0]
    assert first.startswith("tokenizer: GPT-NeoX-20B tokenizer from the model cache (") and str(TOKENIZER) in first
    report = json.loads((out / "report.json").read_text())
    assert report["slices"][0]["tokens"] == expected_tokens() and report["slices"][0]["tokens_from"] == "counted"
    assert "tokenizer: GPT-NeoX-20B tokenizer from the model cache" in (out / "report.md").read_text()
    code, text, err = cli(capsys, "sample", out, "--dest", tmp_path / "s", "--tokens", "20")
    assert code == 0 and err.startswith("tokenizer: GPT-NeoX-20B tokenizer from the model cache")
    assert json.loads((tmp_path / "s" / "sample_report.json").read_text())["slices"][0]["tokens"] is not None


def test_without_a_tokenizer_the_report_says_why_and_takes_the_runs_own_counts(offline, tmp_path, capsys):
    out = output(tmp_path, stats_tokens=12345)
    code, text, err = cli(capsys, "report", out, "--workers", "1")
    assert code == 0
    first = err.splitlines()[0]
    assert first.startswith("tokens not counted: the GPT-NeoX-20B tokenizer is not in the model cache")
    assert f"{offline} is unreachable" in first and "--tokenizer PATH" in first
    row = json.loads((out / "report.json").read_text())["slices"][0]
    assert row["tokens"] == 12345 and row["tokens_from"] == "stats.json (counted by the run with a.json)"
    assert "c4: tokens from stats.json (counted by the run with a.json)" in (out / "report.md").read_text()
    code, _, _ = cli(capsys, "report", out, "--workers", "1", "--no-eod")
    assert json.loads((out / "report.json").read_text())["slices"][0]["tokens"] == 12345 - 3


def test_without_a_tokenizer_or_counts_the_tokens_are_missing_with_the_reason(offline, tmp_path, capsys):
    out = output(tmp_path)
    code, text, err = cli(capsys, "report", out, "--workers", "1")
    row = json.loads((out / "report.json").read_text())["slices"][0]
    assert code == 0 and row["tokens"] is None and row["documents"] == 3
    assert row["tokens_missing"].startswith("tokens not counted: the GPT-NeoX-20B tokenizer is not in the model cache")
    assert "| c4 | 3 | n/a |" in text
    code, _, err = cli(capsys, "sample", out, "--dest", tmp_path / "s", "--tokens", "100")
    assert code == 2 and err.count("\n") == 1 and "--tokens needs the tokenizer to count what it delivers" in err


def test_an_unreachable_tokenizer_option_is_one_line(offline, tmp_path, capsys):
    out = output(tmp_path)
    code, _, err = cli(capsys, "report", out, "--tokenizer", offline.replace("gpt-neox-20b", "other"))
    assert code == 2 and err.count("\n") == 1 and "cannot reach" in err and "offline?" in err
    assert not [p for p in (tmp_path / "cache").rglob("*") if p.is_file()]
