"""A finished run's fingerprint: input states that are never errors, models by content, and
what a rerun does when the fingerprint differs."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from redpajama.core import storage
from redpajama.models import digests
from redpajama.pipelines.runs.executor import Layout
from redpajama.pipelines.runs.resume import decide
from redpajama.pipelines.runs.run import fingerprint
from redpajama.slices.commoncrawl import CommonCrawl


class HeadServer:
    """Answers HEAD with the statuses given, one per request, then 200 with an ETag."""

    def __init__(self, statuses: list[int]):
        self.statuses = list(statuses)
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:
                pass

            def do_HEAD(self) -> None:
                status = server.statuses.pop(0) if server.statuses else 200
                self.send_response(status)
                self.send_header("Content-Length", "0" if status != 200 else "1234")
                self.send_header("ETag", '"abc"')
                self.end_headers()

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/file.json.gz"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def no_backoff(monkeypatch):
    monkeypatch.setattr(storage, "STATE_BACKOFF", 0.0)


def test_a_passing_server_error_is_retried_and_never_recorded(no_backoff, tmp_path):
    flaky, broken, gone = HeadServer([500, 503]), HeadServer([500] * 10), HeadServer([404])
    try:
        states = storage.input_states([flaky.url, broken.url, gone.url, str(tmp_path / "missing")])
    finally:
        for server in (flaky, broken, gone):
            server.close()
    assert states[0] == '200:"abc":1234:'
    assert states[1] is None  # unknown: not "500", which a rerun would take for a changed input
    assert states[2].startswith("404:") and states[3] == "missing"  # definite answers are states


def test_an_unknown_state_runs_again_and_a_changed_one_is_refused():
    old = {"format": 2, "inputs": ["a", "b"], "input_states": ["1:1", None], "options": {"x": 1}, "models": {}}
    stats = {"failed": 0}
    again = decide({"fingerprint": old}, stats, {**old, "input_states": ["1:1", "2:2"]}, where="out/c4")
    assert again.action == "run" and "could not be read" in again.message and "b" in again.message
    refused = decide({"fingerprint": old}, stats, {**old, "input_states": ["1:2", None]}, where="out/c4")
    assert refused.action == "refuse" and "changed since" in refused.message and "a" in refused.message
    changed = decide({"fingerprint": old}, stats, {**old, "options": {"x": 2, "y": True}}, where="out/c4")
    assert changed.action == "refuse" and "options.x (1 -> 2), options.y (unset -> True)" in changed.message
    same = {**old, "input_states": ["1:1", "2:2"]}
    assert decide({"fingerprint": same}, stats, same, where="out/c4").action == "reuse"
    failed = {"failed": 2, "failed_by_reason": {"unreadable_input": 2}}
    assert decide({"fingerprint": same}, failed, same, where="out/c4").action == "reuse"
    retry = decide({"fingerprint": same}, failed, same, where="out/c4", retry_failed=True)
    assert retry.action == "run" and "unreadable_input 2" in retry.message


def built_models(root, cutoffs: str) -> None:
    """A ``models build`` output: what the CommonCrawl slice reads to choose its models."""
    root.mkdir(parents=True)
    files = {"sp": "en.sp.model", "lm": "en.arpa.bin", "cutoffs": "cutoff.csv", "wikiref": "wikiref.bin"}
    for name, file in files.items():
        (root / file).write_text(cutoffs if name == "cutoffs" else f"{name} model bytes")
    (root / "models.json").write_text(json.dumps({"language": "en", "files": {k: {"file": v} for k, v in files.items()}}))


def test_models_are_fingerprinted_by_content_not_location(tmp_path, monkeypatch):
    monkeypatch.setenv("REDPAJAMA_CACHE", str(tmp_path / "cache"))
    built = tmp_path / "cache" / "models" / "built"
    built_models(built, "percentile,en\n30,340\n60,520\n")

    def models() -> dict:
        slc = CommonCrawl(lid_model=str(tmp_path / "cache" / "models" / "built" / "wikiref.bin"))
        return fingerprint(slc, [], Layout(str(tmp_path / "out")))["models"]

    first = models()
    assert set(first) == {"lid", "cutoffs", "wikiref", "sp:en", "lm:en"}
    assert all(value.startswith("sha256:") for value in first.values())
    assert json.dumps(first).count("cache:") == 0  # no location in the fingerprint
    (built / "cutoff.csv").write_text("percentile,en\n30,170\n60,260\n")  # halved, in place
    second = models()
    assert second["cutoffs"] != first["cutoffs"] and {k: v for k, v in second.items() if k != "cutoffs"} == {
        k: v for k, v in first.items() if k != "cutoffs"}


def test_a_file_digest_is_read_once_per_version(tmp_path, monkeypatch):
    monkeypatch.setenv("REDPAJAMA_CACHE", str(tmp_path / "cache"))
    model = tmp_path / "model.bin"
    model.write_bytes(b"weights" * 1000)
    reads = []
    original = digests.hashlib.file_digest
    monkeypatch.setattr(digests.hashlib, "file_digest", lambda handle, name: reads.append(1) or original(handle, name))
    first = digests.digest(str(model))
    assert digests.digest(str(model)) == first and len(reads) == 1
    model.write_bytes(b"other weights" * 1000)
    assert digests.digest(str(model)) != first and len(reads) == 2
    assert digests.digest("ccnet") == "name:ccnet" and digests.digest(str(tmp_path / "gone.bin")) == "missing"
