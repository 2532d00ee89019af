"""What a run may touch, and when a finished run counts as done: through the real CLI.

A run writes only in its slice folder and removes only what a run of this project wrote; it
refuses, before any work, a slice folder that holds an input, sits inside one, holds files it
did not write, or is reached through a symbolic link. Output paths are literal. A finished
run is reused only while its inputs and models are the same bytes; a run whose every unit
failed is not finished, and failed units can be retried. Every input here is generated.
"""

from __future__ import annotations

import gzip
import json
import os
import shutil
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.conftest import SHARED, need
from tests.integration.helpers import output_bytes

TOKENIZER = SHARED / "models" / "gpt-neox-20b" / "20B_tokenizer.json"
OTHER_TOKENIZER = SHARED / "models" / "hf-tokenizers-dolma" / "gpt-neo-test-tokenizer.json"
C4_NAME = "c4-train.00000-of-01024.json.gz"


def cli(*args: str, timeout: float = 240) -> tuple[int, str]:
    """Exit code and output (stdout, then stderr) of ``redpajama ARGS`` in a child process."""
    done = subprocess.run([sys.executable, "-m", "redpajama.pipelines.commands.cli", *args], capture_output=True, text=True,
                          timeout=timeout)
    return done.returncode, done.stdout + done.stderr


def run_c4(inputs: list, output: Path, *extra: str) -> tuple[int, str]:
    return cli("run", "c4", "--input", *map(str, inputs), "--output", str(output), "--executor", "inprocess",
               "--count-tokens", "off", *extra)


def c4_rows(count: int, tag: str = "") -> bytes:
    rows = [{"text": f"document {tag}{i}: " + "words of the page " * 5, "url": f"https://x/{tag}{i}", "timestamp": "t"}
            for i in range(count)]
    return gzip.compress(b"".join(json.dumps(row).encode() + b"\n" for row in rows))


def tree(root: Path) -> dict[str, bytes | str]:
    """Every entry under ``root``: file bytes, a link's target, or ``dir``."""
    found: dict[str, bytes | str] = {}
    for path in sorted(root.rglob("*")):
        key = str(path.relative_to(root))
        if path.is_symlink():
            found[key] = "-> " + os.readlink(path)
        elif path.is_dir():
            found[key] = "dir"
        else:
            found[key] = path.read_bytes()
    return found


def one_line_error(code: int, out: str, *words: str) -> None:
    assert code == 2, out
    assert len(out.strip().splitlines()) == 1, out
    assert "Traceback" not in out
    for word in words:
        assert word in out, out


# --- item: a run removes only what it wrote -----------------------------------------------------------


def test_a_slice_folder_that_holds_an_input_is_refused_before_any_work(tmp_path):
    data = tmp_path / "data"
    (data / "c4" / "notes").mkdir(parents=True)
    (data / "c4" / "input.json").write_bytes(gzip.decompress(c4_rows(3)))
    (data / "c4" / "README.md").write_text("mine")
    (data / "c4" / "notes" / "IMPORTANT.txt").write_text("keep me")
    before = tree(tmp_path)
    for extra in ((), ("--overwrite",)):
        code, out = run_c4([f"{data}/c4/*.json"], data, *extra)
        one_line_error(code, out, "holds an input", "input.json")
        assert tree(tmp_path) == before


def test_an_output_beside_repositories_in_a_home_folder_is_refused(tmp_path):
    """``--output ~`` with ``--input ~/github/*``: the slice folder ~/github holds the repositories."""
    home = tmp_path / "home"
    for name in ("alpha", "beta"):
        (home / "github" / name / ".git").mkdir(parents=True)
        (home / "github" / name / "main.py").write_text("print('work in progress')\n")
    before = tree(tmp_path)
    code, out = cli("run", "github", "--input", *map(str, sorted((home / "github").iterdir())), "--output", str(home),
                    "--tokenizer", str(need(TOKENIZER)), "--overwrite")
    one_line_error(code, out, "holds an input")
    assert tree(tmp_path) == before


def test_an_output_inside_an_input_folder_is_refused(tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "main.py").write_text("print('hello')\n")
    code, out = cli("run", "github", "--input", str(repo), "--output", str(repo / "out"),
                    "--tokenizer", str(need(TOKENIZER)))
    one_line_error(code, out, "inside an input")
    assert not (repo / "out").exists()


def test_files_a_run_did_not_write_are_refused_and_never_deleted(tmp_path):
    c4 = tmp_path / "in" / C4_NAME
    c4.parent.mkdir()
    c4.write_bytes(c4_rows(5))
    out = tmp_path / "out"
    (out / "c4" / "notes").mkdir(parents=True)
    (out / "c4" / "README.md").write_text("mine")
    (out / "c4" / "notes" / "IMPORTANT.txt").write_text("keep me")
    before = tree(out)
    for extra in ((), ("--overwrite",)):
        code, text = run_c4([c4], out, *extra)
        one_line_error(code, text, "did not write", "README.md")
        assert tree(out) == before
    # A finished run: a file added later blocks a run that would replace the output, never a reuse.
    finished = tmp_path / "finished"
    assert run_c4([c4], finished)[0] == 0
    (finished / "c4" / "README.md").write_text("notes on this output")
    code, text = run_c4([c4], finished)
    assert code == 0 and "already complete" in text
    code, text = run_c4([c4], finished, "--overwrite", "--shards", "2")
    one_line_error(code, text, "did not write", "README.md")
    assert (finished / "c4" / "README.md").read_text() == "notes on this output"
    assert (finished / "c4" / "c4-00000-of-00001.jsonl.zst").exists()


@pytest.mark.parametrize("name", ["_LOCK", "stats.json", "_SUCCESS", "c4-00000-of-00001.jsonl.zst", "_temporary",
                                  "_errors", "<slice folder>"])
def test_symlinks_in_the_output_are_never_followed_written_or_deleted(tmp_path, name):
    c4 = tmp_path / "in" / C4_NAME
    c4.parent.mkdir()
    c4.write_bytes(c4_rows(5))
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "precious.txt").write_text("precious")
    folder = tmp_path / "out" / "c4"
    folder.parent.mkdir()
    if name == "<slice folder>":
        empty = tmp_path / "elsewhere"
        empty.mkdir()
        folder.symlink_to(empty)
    else:
        folder.mkdir()
        target = victim if name in ("_temporary", "_errors") else victim / "precious.txt"
        (folder / name).symlink_to(target)
    before = tree(tmp_path)
    code, out = run_c4([c4], tmp_path / "out", "--overwrite")
    one_line_error(code, out, "symbolic link")
    assert tree(tmp_path) == before


# --- item: output paths are literal --------------------------------------------------------------------


def test_output_paths_are_literal_never_globs(tmp_path):
    c4 = tmp_path / "in" / C4_NAME
    c4.parent.mkdir()
    c4.write_bytes(c4_rows(5))
    for sibling in ("out1", "other"):  # what `out[1]` and `o*` would match as globs
        shard = tmp_path / sibling / "c4" / "c4-00000-of-00001.jsonl.zst"
        shard.parent.mkdir(parents=True)
        shard.write_bytes(b"a finished run's output")
    before = tree(tmp_path / "out1"), tree(tmp_path / "other")
    clean = tmp_path / "clean"
    assert run_c4([c4], clean)[0] == 0
    for literal in ("out[1]", "o*", "o?t"):
        code, out = run_c4([c4], tmp_path / literal)
        assert code == 0, out
        assert (tmp_path / literal / "c4" / "_SUCCESS").exists()
        assert output_bytes(tmp_path / literal / "c4") == output_bytes(clean / "c4")
        assert (tree(tmp_path / "out1"), tree(tmp_path / "other")) == before
        code, out = run_c4([c4], tmp_path / literal)
        assert code == 0 and "already complete" in out


# --- item: a transient error on the stat request is not the input's state ------------------------------


class FlakyServer:
    """Serves one C4 file; the first ``head_failures`` HEAD requests (all when -1) answer 500 and
    the first ``get_failures`` GET requests answer 404."""

    def __init__(self, body: bytes, head_failures: int = 0, get_failures: int = 0):
        self.body = body
        self.head_failures = head_failures
        self.get_failures = get_failures
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:
                pass

            def _reply(self, status: int, body: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("ETag", '"v1"')
                self.end_headers()

            def do_HEAD(self) -> None:
                failing = server.head_failures != 0
                if server.head_failures > 0:
                    server.head_failures -= 1
                self._reply(500 if failing else 200, b"" if failing else server.body)

            def do_GET(self) -> None:
                if server.get_failures > 0:
                    server.get_failures -= 1
                    self._reply(404, b"")
                    return
                self._reply(200, server.body)
                self.wfile.write(server.body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/{C4_NAME}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def test_a_transient_error_on_the_stat_request_does_not_poison_the_fingerprint(tmp_path):
    once = FlakyServer(c4_rows(4), head_failures=1)
    always = FlakyServer(c4_rows(4), head_failures=-1)
    try:
        code, out = run_c4([once.url], tmp_path / "once")
        assert code == 0, out
        code, out = run_c4([once.url], tmp_path / "once")
        assert code == 0 and "already complete" in out, out
        code, out = run_c4([always.url], tmp_path / "always")
        assert code == 0, out
        marker = json.loads((tmp_path / "always" / "c4" / "_SUCCESS").read_text())
        assert marker["fingerprint"]["input_states"] == [None]  # not known, and not an error recorded as a state
        code, out = run_c4([always.url], tmp_path / "always")
        assert code == 0 and "could not be read" in out and "already complete" not in out, out
    finally:
        once.close()
        always.close()


# --- item: the fingerprint holds each model's content ----------------------------------------------------


def test_a_changed_model_file_makes_the_same_command_run_again(tmp_path):
    rows = [{"repo_name": "a/b", "ref": "refs/heads/main", "license": "mit", "path": f"m{i}.py",
             "content": f"def greeting_{i}(name):\n    return 'hello ' + name\n"} for i in range(4)]
    github = tmp_path / "github_000.jsonl.gz"
    github.write_bytes(gzip.compress(b"".join(json.dumps(row).encode() + b"\n" for row in rows)))
    tokenizer = tmp_path / "tokenizer.json"
    shutil.copy(need(TOKENIZER), tokenizer)
    command = ("run", "github", "--input", str(github), "--output", str(tmp_path / "out"), "--executor", "inprocess",
               "--count-tokens", "off", "--tokenizer", str(tokenizer))
    assert cli(*command)[0] == 0
    code, out = cli(*command)
    assert code == 0 and "already complete" in out
    shutil.copy(need(OTHER_TOKENIZER), tokenizer)  # same place, other model
    code, out = cli(*command)
    assert code == 0 and "already complete" not in out and "models changed" in out and "tokenizer" in out, out
    code, out = cli(*command)
    assert code == 0 and "already complete" in out


# --- item: failed units ----------------------------------------------------------------------------------


def test_a_run_whose_every_unit_failed_is_not_finished(tmp_path):
    broken = tmp_path / "in" / C4_NAME
    broken.parent.mkdir()
    broken.write_bytes(b"\x1f\x8b\x08\x00 this is not a gzip stream at all" * 10)
    for _ in range(2):  # the rerun tries again: nothing was taken as done
        code, out = run_c4([broken], tmp_path / "out")
        assert code == 1, out
        assert "every unit failed" in out and "Traceback" not in out
        assert not (tmp_path / "out" / "c4" / "_SUCCESS").exists()
        assert list((tmp_path / "out" / "c4" / "_temporary" / "_errors").glob("errors-*.jsonl"))


def test_failed_units_are_retried_on_request_and_the_output_equals_an_uninterrupted_run(tmp_path):
    local = tmp_path / "in" / "c4-train.00001-of-01024.json.gz"
    local.parent.mkdir()
    local.write_bytes(c4_rows(6, "local-"))
    server = FlakyServer(c4_rows(5, "remote-"), get_failures=1)
    try:
        code, out = run_c4([local, server.url], tmp_path / "out")
        assert code == 0, out
        first = json.loads((tmp_path / "out" / "c4" / "stats.json").read_text())
        assert (first["read"], first["kept"], first["failed"]) == (7, 6, 1)
        code, out = run_c4([local, server.url], tmp_path / "out")
        assert code == 0 and "already complete" in out and "--retry-failed" in out, out
        code, out = run_c4([local, server.url], tmp_path / "out", "--retry-failed")
        assert code == 0 and "already complete" not in out, out
        stats = json.loads((tmp_path / "out" / "c4" / "stats.json").read_text())
        assert (stats["read"], stats["kept"], stats["failed"]) == (11, 11, 0)
        assert stats["read"] == stats["kept"] + sum(stats["dropped"].values()) + stats["failed"]
        assert run_c4([local, server.url], tmp_path / "clean")[0] == 0
        assert output_bytes(tmp_path / "out" / "c4") == output_bytes(tmp_path / "clean" / "c4")
        code, out = run_c4([local, server.url], tmp_path / "out", "--retry-failed")
        assert code == 0 and "already complete" in out  # nothing failed: nothing to retry
    finally:
        server.close()


def test_the_refusal_for_changed_settings_names_what_changed(tmp_path):
    c4 = tmp_path / "in" / C4_NAME
    c4.parent.mkdir()
    c4.write_bytes(c4_rows(3))
    assert run_c4([c4], tmp_path / "out")[0] == 0
    code, out = run_c4([c4], tmp_path / "out", "--max-record-mb", "2", "--include-validation")
    one_line_error(code, out, "limits", "options.include_validation", "--overwrite")
    c4.write_bytes(c4_rows(4))
    code, out = run_c4([c4], tmp_path / "out")
    one_line_error(code, out, "changed since", C4_NAME)


# --- item: what a rerun after a killed run keeps ----------------------------------------------------------


def test_a_rerun_after_a_killed_run_says_what_it_keeps(tmp_path):
    c4 = tmp_path / "in" / C4_NAME
    c4.parent.mkdir()
    c4.write_bytes(c4_rows(5))
    clean = tmp_path / "clean"
    assert run_c4([c4], clean)[0] == 0
    folder = tmp_path / "out" / "c4"
    (folder / "_temporary").mkdir(parents=True)
    (folder / "_temporary" / "c4-00000-of-00001.jsonl.zst").write_bytes(b"cut mid-wri")
    (folder / "_LOCK").write_text('{"pid": 1, "host": "gone", "started": "2024-01-01 00:00:00"}')  # no longer locked
    code, out = run_c4([c4], tmp_path / "out")
    assert code == 0, out
    assert "unfinished work of an earlier run" in out and "every input is read again" in out
    assert not (folder / "_temporary").exists() and not (folder / "_LOCK").exists()
    assert output_bytes(folder) == output_bytes(clean / "c4")


# --- item: report and sample on broken outputs ------------------------------------------------------------


def names_in_one_error_line(code: int, text: str, name: str) -> None:
    """One error line naming the file, after at most the line saying which tokenizer counts."""
    errors = [line for line in text.splitlines() if line.startswith("redpajama: ")]
    assert code == 2 and "Traceback" not in text and len(errors) == 1 and name in errors[0], text
    assert all(line.startswith(("redpajama: ", "tokenizer: ")) for line in text.strip().splitlines()), text


def broken_outputs(tmp_path: Path) -> Path:
    c4 = tmp_path / "in" / C4_NAME
    c4.parent.mkdir()
    c4.write_bytes(c4_rows(400))
    out = tmp_path / "out"
    assert run_c4([c4], out)[0] == 0
    return out


def test_report_and_sample_on_a_truncated_shard_name_it_and_leave_nothing_partial(tmp_path):
    out = broken_outputs(tmp_path)
    shard = out / "c4" / "c4-00000-of-00001.jsonl.zst"
    shard.write_bytes(shard.read_bytes()[: shard.stat().st_size // 2])
    code, text = cli("report", str(out), "--tokenizer", str(need(TOKENIZER)), "--workers", "1")
    names_in_one_error_line(code, text, str(shard))
    code, text = cli("sample", str(out), "--fraction", "0.5", "--dest", str(tmp_path / "sample"))
    names_in_one_error_line(code, text, str(shard))
    assert not list((tmp_path / "sample").glob("*")) if (tmp_path / "sample").exists() else True


def test_report_on_a_broken_stats_file_names_it(tmp_path):
    out = broken_outputs(tmp_path)
    stats = out / "c4" / "stats.json"
    stats.write_text(stats.read_text()[:40])
    code, text = cli("report", str(out), "--tokenizer", str(need(TOKENIZER)), "--workers", "1")
    names_in_one_error_line(code, text, str(stats))


def test_report_on_a_downloaded_jsonl_cut_mid_line_names_the_file_and_line(tmp_path):
    book = tmp_path / "rp" / "book" / "book.jsonl"  # RedPajama's download layout
    book.parent.mkdir(parents=True)
    line = json.dumps({"text": "a book " * 50, "meta": {"title": "t"}})
    book.write_text(line + "\n" + line + "\n" + line[:30])
    code, text = cli("report", str(tmp_path / "rp"), "--tokenizer", str(need(TOKENIZER)), "--workers", "1")
    names_in_one_error_line(code, text, f"{book} (line 3)")
