"""Hostile and broken inputs, interrupted and concurrent runs, preflight: through the real CLI.

Every input here is generated: bombs from zeros, FIFOs, rows with wrong-typed fields, cut and
empty files. Runs go through ``python -m redpajama.pipelines.commands.cli`` in a child process, which
reports its peak memory (its own and its engine's) on the last line of stderr.
"""

from __future__ import annotations

import bz2
import gzip
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import zstandard
from redpajama.pipelines.runs.lock import OutputLock

from tests.conftest import LID_MODEL, SHARED, need
from tests.integration.helpers import errors, records

# The probe's own peak is its address space's (VmHWM): ru_maxrss of RUSAGE_SELF carries over the peak of
# the process that forked it (pytest, large after many tests) through exec. Its children's peaks are theirs.
PROBE = ("import resource, sys; from redpajama.pipelines.commands.cli import main; code = main(sys.argv[1:]); "
         "own = next(int(line.split()[1]) for line in open('/proc/self/status') if line.startswith('VmHWM:')); "
         "peak = max(own, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss); "
         "print(f'peak-rss-kb {peak}', file=sys.stderr); sys.exit(code)")
TOKENIZER = SHARED / "models" / "gpt-neox-20b" / "20B_tokenizer.json"
ZEROS = b"\0" * (64 << 20)
GUARD_SECONDS = 600


def cli(*args: str, env: dict | None = None, timeout: float = 240) -> tuple[int, str, int]:
    """Exit code, output (stdout then stderr) and peak RSS (MB) of ``redpajama ARGS`` in a child process."""
    done = subprocess.run([sys.executable, "-c", PROBE, *args], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})})
    err, _, probe = done.stderr.partition("peak-rss-kb ")
    return done.returncode, done.stdout + err, int(probe.split()[0]) // 1024 if probe else 0


def run(slice_name: str, inputs: list, output: Path, *extra: str) -> tuple[dict, str, int]:
    code, err, peak = cli("run", slice_name, "--input", *map(str, inputs), "--output", str(output), "--executor",
                          "inprocess", "--count-tokens", "off", *extra)
    assert code == 0, err
    folder = next(p for p in output.iterdir() if (p / "stats.json").exists())
    stats = json.loads((folder / "stats.json").read_text())
    assert stats["read"] == stats["kept"] + sum(stats["dropped"].values()) + stats["failed"]
    return stats, err, peak


def reasons(folder: Path) -> dict[str, str]:
    return {Path(e["source"]).name: e["reason"] for e in errors(folder)}


def jsonl(rows: list) -> bytes:
    return b"".join(json.dumps(row).encode() + b"\n" for row in rows)


# --- bombs ------------------------------------------------------------------------------------------


def test_decompression_bombs_fail_their_unit_in_bounded_memory(tmp_path):
    good = jsonl([{"text": f"document {i}", "url": f"https://x/{i}", "timestamp": "2019"} for i in range(3)])
    c4 = tmp_path / "c4"
    c4.mkdir()
    (c4 / "c4-train.00000-of-01024.json.gz").write_bytes(gzip.compress(good) + gzip.compress(ZEROS) * 32)  # 2 MB -> 2 GB
    (c4 / "c4-train.00001-of-01024.json.zst").write_bytes(zstandard.ZstdCompressor().compress(ZEROS) * 32)
    stats, _, peak = run("c4", sorted(c4.iterdir()), tmp_path / "c4-out")
    assert stats["kept"] == 3 and stats["failed"] == 2  # the lines before the bomb stay
    assert set(reasons(tmp_path / "c4-out" / "c4").values()) <= {"decompression_bomb", "record_too_large"}
    assert peak < 1024, peak
    wiki = tmp_path / "xxwiki-20230320-pages-articles.xml.bz2"
    head = b"<mediawiki><siteinfo><dbname>xxwiki</dbname></siteinfo>\n<page><title>Bomb</title><ns>0</ns><id>1</id>"
    wiki.write_bytes(bz2.compress(head) + bz2.compress(ZEROS) * 36)  # a few KB -> 2.3 GB
    stats, _, peak = failed_run("wikipedia", [wiki], tmp_path / "wiki-out")  # its one page fails: nothing else
    assert stats["failed"] == 1 and peak < 1024, (stats, peak)
    assert set(reasons(tmp_path / "wiki-out" / "wikipedia" / "_temporary").values()) <= {"decompression_bomb",
                                                                                         "page_too_large"}


# --- special files and bad rows -------------------------------------------------------------------


def test_fifos_are_skipped_and_counted_never_read(tmp_path):
    paper = tmp_path / "papers" / "2001.00001"
    paper.mkdir(parents=True)
    (paper / "main.tex").write_text("\\documentclass{article}\\begin{document}\\section{A} text\\end{document}")
    os.mkfifo(paper / "x.tex")
    stats, _, _ = run("arxiv", [paper], tmp_path / "arxiv-out", "--lid-model", str(need(LID_MODEL)))
    assert (stats["kept"], stats["failed"]) == (1, 1)
    assert reasons(tmp_path / "arxiv-out" / "arxiv") == {"x.tex": "not_regular_file"}
    books = tmp_path / "books"
    books.mkdir()
    (books / "a.txt").write_text("Title: A\n\n" + "Some words of a book. " * 100)
    os.mkfifo(books / "b.txt")
    stats, _, _ = run("books", [f"{books}/*.txt"], tmp_path / "books-out")
    assert (stats["kept"], stats["failed"]) == (1, 1)
    assert reasons(tmp_path / "books-out" / "books") == {"b.txt": "not_regular_file"}


def test_rows_with_wrong_types_are_dead_lettered_and_the_run_completes(tmp_path):
    books = tmp_path / "books3.jsonl"
    books.write_bytes(jsonl([
        {"title": "Kept", "text": "A book with its own id column. " * 50, "id": 7, "source": "somewhere"},
        {"title": "Text is a number", "text": 5},
        ["not", "an", "object"],
        {"title": "Another", "text": "Another book, different words entirely here. " * 50},
    ]))
    stats, _, _ = run("books", [books], tmp_path / "books-out")
    assert (stats["read"], stats["kept"], stats["failed"]) == (4, 2, 2)
    kept = {d["meta"]["title"]: d["meta"] for d in records(tmp_path / "books-out" / "books")}
    assert kept["Kept"]["row_id"] == 7 and kept["Kept"]["row_source"] == "somewhere"
    assert kept["Kept"]["source"] == "books3" and kept["Kept"]["id"] == "books3/books3/0"
    github = tmp_path / "github_000.jsonl.gz"
    base = {"repo_name": "a/b", "ref": "refs/heads/main", "license": "mit"}
    code = "def greeting(name):\n    return 'hello ' + name\n"
    github.write_bytes(gzip.compress(jsonl([
        {**base, "path": "ok.py", "content": code}, {**base, "path": 17, "content": code},
        {**base, "path": "l.py", "license": ["mit"], "content": code}, [1, 2],
        {**base, "path": "c.py", "content": {"a": 1}}, {**base, "path": "s.py", "source": "x", "content": code + "#\n"},
    ])))
    stats, _, _ = run("github", [github], tmp_path / "gh-out", "--tokenizer", str(need(TOKENIZER)))
    assert (stats["read"], stats["kept"], stats["failed"]) == (6, 2, 4)
    c4 = tmp_path / "c4-train.00000-of-01024.json.gz"
    c4.write_bytes(gzip.compress(jsonl([
        {"text": "fine", "url": "https://x", "timestamp": "t"}, {"text": 1, "url": "u", "timestamp": "t"},
        {"text": "t", "url": ["u"], "timestamp": "t"}, "a string", {"text": "surrogate \udc80", "url": "u", "timestamp": "t"},
    ])))
    stats, _, _ = run("c4", [c4], tmp_path / "c4-out")
    assert (stats["read"], stats["kept"], stats["failed"]) == (5, 1, 4)  # the lone surrogate fails at the writer


def failed_run(slice_name: str, inputs: list, output: Path, *extra: str) -> tuple[dict, str, int]:
    """A run whose every unit fails: exit 1, nothing committed, its stats and dead letters in ``_temporary/``."""
    code, err, peak = cli("run", slice_name, "--input", *map(str, inputs), "--output", str(output), "--executor",
                          "inprocess", "--count-tokens", "off", *extra)
    assert code == 1 and "every unit failed" in err, err
    folder = next(p for p in output.iterdir() if (p / "_temporary" / "stats.json").exists())
    assert not (folder / "_SUCCESS").exists()
    return json.loads((folder / "_temporary" / "stats.json").read_text()), err, peak


def test_empty_and_binary_inputs_are_counted_failures(tmp_path):
    (tmp_path / "c4-train.00000-of-01024.json.gz").write_bytes(b"")
    (tmp_path / "github_000.jsonl.gz").write_bytes(b"")
    (tmp_path / "empty.txt").write_bytes(b"")
    (tmp_path / "binary.txt").write_bytes(bytes(range(256)) * 400)
    (tmp_path / "nul.txt").write_bytes(b"\0" * 10_000 + b"hello")
    stats, _, _ = failed_run("c4", [tmp_path / "c4-train.00000-of-01024.json.gz"], tmp_path / "c4-out")
    assert (stats["read"], stats["failed"]) == (1, 1)
    stats, _, _ = failed_run("github", [tmp_path / "github_000.jsonl.gz"], tmp_path / "gh-out",
                             "--tokenizer", str(need(TOKENIZER)))
    assert (stats["read"], stats["failed"]) == (1, 1)
    stats, _, _ = failed_run("books", [tmp_path / "empty.txt", tmp_path / "binary.txt", tmp_path / "nul.txt"],
                             tmp_path / "books-out")
    assert (stats["read"], stats["kept"], stats["failed"]) == (3, 0, 3)
    assert reasons(tmp_path / "books-out" / "books" / "_temporary") == {
        "empty.txt": "empty_input", "binary.txt": "not_text", "nul.txt": "not_text"}


# --- runs and their output ------------------------------------------------------------------------


def test_a_changed_input_is_not_taken_as_already_done(tmp_path):
    rows = [{"text": f"document {i}", "url": f"https://x/{i}", "timestamp": "t"} for i in range(50)]
    good = gzip.compress(jsonl(rows))
    c4 = tmp_path / "c4-train.00000-of-01024.json.gz"
    c4.write_bytes(good[: len(good) // 2])
    first, _, _ = run("c4", [c4], tmp_path / "out")
    c4.write_bytes(good)
    second, err, _ = run("c4", [c4], tmp_path / "out", "--overwrite")
    assert first["failed"] == 1 and second["failed"] == 0 and second["kept"] == 50
    third, err, _ = run("c4", [c4], tmp_path / "out")
    assert "already complete" in err


def test_a_second_run_into_the_same_output_refuses_at_once(tmp_path):
    c4 = tmp_path / "c4-train.00000-of-01024.json.gz"
    c4.write_bytes(gzip.compress(jsonl([{"text": "x", "url": "u", "timestamp": "t"}])))
    with OutputLock(str(tmp_path / "out" / "c4")):
        code, err, _ = cli("run", "c4", "--input", str(c4), "--output", str(tmp_path / "out"), "--count-tokens", "off")
    assert code == 2 and "is being written by another run" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "out" / "c4" / "_temporary").exists()
    run("c4", [c4], tmp_path / "out")  # the lock is free again
    assert not (tmp_path / "out" / "c4" / "_LOCK").exists()


@pytest.mark.parametrize("executor, said", [("beam", "local runner"), ("inprocess", "in-process")])
@pytest.mark.parametrize("signum, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signals_end_the_run_fast_with_one_line_and_no_process_left(tmp_path, signum, code, executor, said):
    dump = need(SHARED / "wikipedia" / "ltg" / "dumpster-dive-ltgwiki-latest-pages-articles.xml.bz2")
    temp = tmp_path / "tmp"
    temp.mkdir()
    child = subprocess.Popen(
        [sys.executable, "-m", "redpajama.pipelines.commands.cli", "run", "wikipedia", "--input", str(dump), str(dump),
         "--output", str(tmp_path / "out"), "--workers", "2", "--count-tokens", "off", "--executor", executor],
        stderr=subprocess.PIPE, text=True, env={**os.environ, "TMPDIR": str(temp)})
    first = child.stderr.readline()  # printed when the pipeline starts
    assert said in first
    time.sleep(1.0)  # the workers are starting or running; either way they must go
    sent = time.monotonic()
    child.send_signal(signum)
    rest = child.stderr.read()
    child.wait(timeout=30)
    assert child.returncode == code and time.monotonic() - sent < 10
    *progress, last = rest.strip().splitlines()  # a unit read before the signal says so; no traceback
    assert last == f"redpajama: interrupted ({signal.Signals(signum).name}); rerun the same command to finish"
    assert all(line.strip().startswith("wikipedia: read ") for line in progress), rest
    assert not _processes_with(f"redpajama-run-{child.pid}-")
    assert list(temp.iterdir()) == []  # Beam's temporary folders went with the run


def _processes_with(marker: str) -> list[int]:
    """Processes whose environment mentions ``marker`` (the engine and its SDK workers)."""
    found = []
    for environ in Path("/proc").glob("[0-9]*/environ"):
        try:
            if marker.encode() in environ.read_bytes():
                found.append(int(environ.parent.name))
        except OSError:
            continue
    return found


def test_preflight_finds_mistakes_before_any_work(tmp_path):
    c4 = tmp_path / "c4-train.00000-of-01024.json.gz"
    c4.write_bytes(gzip.compress(jsonl([{"text": "x", "url": "u", "timestamp": "t"}])))
    a_file = tmp_path / "a-file"
    a_file.write_text("")
    cases = [
        (["--shard-mb", "0"], "--shard-mb"), (["--shard-mb", "-5"], "--shard-mb"), (["--workers", "-1"], "--workers"),
        (["--max-expansion", "0"], "--max-expansion"),
    ]
    for extra, words in cases:
        code, err, _ = cli("run", "c4", "--input", str(c4), "--output", str(tmp_path / "o"), *extra)
        assert code == 2 and words in err and len(err.strip().splitlines()) == 1, err
    for output, words in ((a_file, "is a file"), (Path("/proc/no-such"), "cannot write")):
        code, err, _ = cli("run", "c4", "--input", str(c4), "--output", str(output))
        assert code == 2 and words in err and len(err.strip().splitlines()) == 1, err
    code, err, _ = cli("run", "github", "--input", str(tmp_path), "--output", str(tmp_path / "o"),
                       "--tokenizer", "http://127.0.0.1:9/tokenizer.json", env={"REDPAJAMA_CACHE": str(tmp_path / "cache")})
    assert code == 2 and "cannot reach http://127.0.0.1:9/tokenizer.json" in err
    assert not list((tmp_path / "cache").rglob("*"))


def test_a_failed_model_download_leaves_nothing_in_the_cache(tmp_path, monkeypatch):
    from redpajama.core import storage
    from redpajama.models import catalog

    monkeypatch.setenv("REDPAJAMA_CACHE", str(tmp_path))
    monkeypatch.setattr(storage, "HTTP_POLICY", storage.HttpPolicy(attempts=1))
    with pytest.raises(catalog.ModelNotFound):
        catalog.fetch("http://127.0.0.1:9/lid.176.bin", "lid.176.bin")
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []


def test_a_launcher_that_ran_beam_in_process_before_still_finishes(tmp_path):
    """Beam's shared thread pool has idle workers in this process; the engine is forked from it."""
    from apache_beam.utils import thread_pool_executor
    from redpajama.pipelines.beam.executor import BeamExecutor
    from redpajama.pipelines.runs.run import run_slice
    from redpajama.pipelines.runs.runner_config import RunnerConfig
    from redpajama.slices.c4 import C4

    assert thread_pool_executor.shared_unbounded_instance().submit(lambda: 1).result() == 1
    rows = tmp_path / "c4-train.00000-of-01024.json.gz"
    rows.write_bytes(gzip.compress(jsonl([{"text": f"page {n}", "url": f"https://x/{n}", "timestamp": "t"}
                                          for n in range(50)])))

    def hung(*_):
        raise TimeoutError("the run hung")

    previous = signal.signal(signal.SIGALRM, hung)
    signal.alarm(GUARD_SECONDS)  # turns the old hang into a failure; not a measurement
    try:
        outcome = run_slice(C4(), [str(rows)], str(tmp_path / "out"), BeamExecutor(RunnerConfig(workers=2)), quiet=True)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    assert outcome.stats["kept"] == 50
