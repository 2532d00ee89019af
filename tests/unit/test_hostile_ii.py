"""Hostile and unlucky inputs beyond the reliability tests, on the pieces that must hold: the
output folder's rules and lock, fingerprints, HTTP reads, the per-document budget, citations
and LaTeX. Every input is generated; bounds are generous guards, not measurements."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from redpajama.core.errors import UsageError
from redpajama.pipelines.runs.output_folder import SliceFolder, own_name


def test_an_input_list_left_by_a_run_is_its_own_file(tmp_path):
    """Earlier versions published ``_inputs.txt``; a commit cut short could leave it unlisted."""
    assert own_name("_inputs.txt")
    folder = tmp_path / "c4"
    folder.mkdir()
    (folder / "_inputs.txt").write_text("/data/c4-train.00000-of-01024.json.gz\n")
    (folder / "c4-00000-of-00001.jsonl.zst").write_bytes(b"")
    found = SliceFolder.read(str(folder))
    assert found.foreign() == [] and found.stale() == ["_inputs.txt", "c4-00000-of-00001.jsonl.zst"]


# --- one run at a time -------------------------------------------------------------------------------


def test_a_run_that_opens_the_lock_as_the_holder_ends_never_shares_the_folder(tmp_path, monkeypatch):
    """Run B opens ``_LOCK``; run A ends (removes and unlocks the file); B's lock then succeeds on
    a file no longer at the path, and run C locked a new ``_LOCK``: two runs held the folder."""
    from redpajama.pipelines.runs import lock as lock_module

    folder = str(tmp_path / "c4")
    first = lock_module.OutputLock(folder).__enter__()
    real_flock = lock_module.fcntl.flock
    calls = []

    def first_ends_between_open_and_lock(fd, operation):
        calls.append(fd)
        if len(calls) == 1:
            first.__exit__(None, None, None)
        return real_flock(fd, operation)

    monkeypatch.setattr(lock_module.fcntl, "flock", first_ends_between_open_and_lock)
    second = lock_module.OutputLock(folder).__enter__()
    monkeypatch.setattr(lock_module.fcntl, "flock", real_flock)
    try:
        held = os.fstat(second.fds[0])
        at_path = os.stat(second.path)
        assert (held.st_dev, held.st_ino) == (at_path.st_dev, at_path.st_ino)
        with pytest.raises(lock_module.OutputBusy):
            lock_module.OutputLock(folder).__enter__()
    finally:
        second.__exit__(None, None, None)


# --- when a finished run is taken as done ------------------------------------------------------------


def test_a_file_edited_inside_a_folder_input_changes_its_state(tmp_path):
    """A repository or paper folder is one input; editing ``src/main.py`` changes neither the
    folder's size nor its time, and the rerun said "already complete" with the old output."""
    from redpajama.core import storage
    from redpajama.pipelines.runs.resume import decide

    repo = tmp_path / "repo"
    (repo / "src").mkdir(parents=True)
    (repo / "src" / "main.py").write_text("def main():\n    return 1\n")
    (repo / "LICENSE").write_text("MIT License\n")
    before = storage.input_states([str(repo)])
    (repo / "src" / "main.py").write_text("def main():\n    return 2 + 40  # changed\n")
    after = storage.input_states([str(repo)])
    assert None not in before + after and before != after
    finished = {"fingerprint": {"inputs": [str(repo)], "input_states": before}}
    decision = decide(finished, {"failed": 0}, {"inputs": [str(repo)], "input_states": after}, where="out/github")
    assert decision.action == "refuse" and "1 input changed" in decision.message
    assert storage.input_states([str(repo)]) == after  # the same tree, the same state


def test_a_server_that_drips_its_answer_to_the_state_request_never_holds_the_launch(monkeypatch):
    """The HEAD request for an input's state waited per byte, never per answer: headers dripped a
    byte at a time held the launch (four tries) as long as the server liked, then gave a state."""
    from redpajama.core import storage

    from tests.guards import bounded
    from tests.integration.loopback import Reply, Server

    monkeypatch.setattr(storage, "HTTP_TIMEOUT", 1)
    monkeypatch.setattr(storage, "STATE_BACKOFF", 0.01)
    server = Server("127.0.0.1", lambda path, query, headers: Reply(200, b"x" * 100, drip_head=0.05))
    try:
        [state] = bounded(lambda: storage.input_states([f"{server.base}/c4.json.gz"]), 60)
    finally:
        server.close()
    assert state is None  # unknown: the same command runs again instead of trusting or refusing
    assert server.hits["/c4.json.gz"] == storage.STATE_TRIES


# --- HTTP inputs -------------------------------------------------------------------------------------


def test_a_resumed_read_that_the_server_answers_from_another_offset_fails_instead_of_shifting_bytes():
    """The connection drops after 1,000 bytes; the resume asks ``Range: bytes=1000-`` and the
    server answers 206 from byte 0, as its Content-Range says: the bytes came shifted, silently
    (duplicated lines in a JSONL input, a corrupt gzip)."""
    import re

    from redpajama.core import storage
    from redpajama.core.errors import SourceError

    from tests.guards import bounded
    from tests.integration.loopback import Reply, Server

    data = bytes(range(256)) * 40

    def from_the_start(path, query, headers):
        ranged = re.fullmatch(r"bytes=(\d+)-(\d*)", headers.get("Range", ""))
        head = {"Content-Range": f"bytes 0-{len(data) - 1}/{len(data)}"} if ranged else {}
        return Reply(206 if ranged else 200, data[:1000], head, length=len(data))

    server = Server("127.0.0.1", from_the_start)
    try:
        with pytest.raises(SourceError, match="asked for bytes from 1000, the server sent them from 0"):
            bounded(lambda: storage.open_range(f"{server.base}/data.bin").read(), 60)
    finally:
        server.close()


# --- fetch-pages -------------------------------------------------------------------------------------


@pytest.mark.parametrize("chunked", [False, True])
def test_a_robots_txt_past_the_parsing_limit_is_read_up_to_it_not_ignored(chunked):
    """RFC 9309 asks a crawler to parse at least the first 500 KiB; a longer robots.txt was taken as
    allowing everything, so ``Disallow: /`` on its first line was not obeyed."""
    from redpajama.pipelines.fetch.live import ROBOTS_MAX_BYTES, HttpSettings, LiveFetcher

    from tests.guards import bounded
    from tests.integration.loopback import Reply, Server

    robots = b"User-agent: *\nDisallow: /private/\n" + b"# a long comment line of the file\n" * 30000
    assert len(robots) > ROBOTS_MAX_BYTES

    def route(path, query, headers):
        if path == "/robots.txt":
            return Reply(200, robots, {"Content-Type": "text/plain"}, chunked=chunked)
        return Reply(200, b"<html><body>a page</body></html>")

    server = Server("127.0.0.1", route)
    try:
        fetcher = LiveFetcher(HttpSettings("test-agent", timeout=5), lambda host, delay: None)
        assert bounded(lambda: fetcher(f"{server.base}/private/page"), 60).reason == "robots_disallowed"
        assert bounded(lambda: fetcher(f"{server.base}/public/page"), 60).reason == "fetched"
    finally:
        server.close()


def test_a_page_from_a_crawl_ends_at_the_page_cap_however_slowly_the_index_answers():
    """``--from-crawl``: the index and data servers were read with a per-read timeout only, so an
    answer sent a byte at a time took as long as the server liked; the page cap now holds there."""
    from redpajama.pipelines.fetch.crawl import CrawlFetcher
    from redpajama.pipelines.fetch.live import HttpSettings

    from tests.guards import bounded
    from tests.integration.loopback import Reply, Server

    capture = {"url": "http://example.org/", "status": "200", "mime": "text/html", "filename": "a.warc.gz",
               "offset": "0", "length": "100"}
    dripped = Server("127.0.0.1", lambda path, query, headers: Reply(
        200, json.dumps(capture).encode() + b"\n", {"Content-Type": "text/plain"}, drip=0.05))
    try:
        fetcher = CrawlFetcher("CC-MAIN-2020-34", HttpSettings("agent", timeout=1, max_seconds=2), dripped.base,
                               dripped.base)
        assert bounded(lambda: fetcher("http://example.org/"), 60).reason == "too_slow"
    finally:
        dripped.close()


# --- the per-document budget -------------------------------------------------------------------------


def test_budgets_far_beyond_any_document_work_as_no_bound():
    """``--doc-timeout 1e12`` (a user's "practically unlimited") made every budgeted document fail
    with ``OverflowError: timestamp out of range`` (and the run committed that); ``--doc-memory-mb``
    past what rlimits hold killed the child while it set up, which failed the run."""
    from redpajama.core.isolation import Budget, IsolatedSteps
    from redpajama.core.records import make_record

    from tests.guards import bounded
    from tests.unit.hostile_steps import Hostile

    for budget in (Budget(seconds=1e12), Budget(seconds=1e300, memory_mb=1 << 50)):
        steps = IsolatedSteps([Hostile()], budget)
        try:
            done = bounded(lambda steps=steps: steps.apply(0, make_record("some text", id="doc/1")), 60)
        finally:
            steps.close()
        assert done["text"] == "SOME TEXT (set up)"


PARENT_DIES_MID_RECORD = """
import os, sys, threading, time
from redpajama.core.isolation import Budget, IsolatedSteps
from redpajama.core.records import make_record
from tests.unit.hostile_steps import Hostile
started = sys.argv[1]
steps = IsolatedSteps([Hostile()], Budget(seconds=60))
record = make_record("x", id="1", do="work", seconds=1.0, started=started)
threading.Thread(target=steps.apply, args=(0, record), daemon=True).start()
deadline = time.monotonic() + 60
while not os.path.exists(started) and time.monotonic() < deadline:
    time.sleep(0.01)
os._exit(0)  # dies while the child works on the record
"""


def test_a_child_whose_parent_died_mid_record_leaves_quietly(tmp_path):
    """The worker holding the child dies (the OS kills it); the child finishes its record and
    found the pipe gone: a BrokenPipeError traceback landed on the terminal after the run."""
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    done = subprocess.run([sys.executable, "-c", PARENT_DIES_MID_RECORD, str(tmp_path / "started")],
                          capture_output=True, text=True, timeout=120, cwd=root)  # ends when the child does
    assert (tmp_path / "started").exists()
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr


# --- Wikipedia citations (the wikiref-urls slice reads them as the dump is read) --------------------


def test_refs_are_found_as_the_expression_finds_them():
    import random

    from redpajama.filters.citations import REF, refs

    pieces = ["<ref>", "<ref name=a>", "<ref name=a/>", "<REF>", "</ref>", "</ref >", "</REF\n>", "</ref", "<ref",
              "<reference>", ">", "/", "/>", "x", "http://a.b/c", "\n", " "]
    rng = random.Random(19)
    for _ in range(20000):
        page = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 12)))
        assert refs(page) == [match.group(1) for match in REF.finditer(page)], page


@pytest.mark.parametrize("page", ['"<ref>http://a.b/x " * 100_000', '"<ref " * 200_000', '"<ref name=a/>" * 100_000',
                                  '"<ref>http://a.b/" + ")" * 500_000 + "</ref>"'])
def test_pages_of_unclosed_refs_are_read_in_linear_time(page):
    """Each took minutes to hours with the expression (20,000 unclosed refs: 50 s; quadratic), or
    with the ``)`` trimming of a URL of half a million parentheses. In a child process: the
    expression holds the GIL, so only a process can be stopped. A guard, not a measurement."""
    code = f"from redpajama.filters.citations import cited_urls; print(cited_urls({page}))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stdout.strip() in ("[]", "['http://a.b/']"), done.stderr


def test_a_model_replaced_by_a_copy_that_keeps_its_size_and_time_is_known_by_its_content(tmp_path, monkeypatch):
    """The digest cache took a model as unchanged while its path, size and modification time
    were: cutoffs edited to the same length and put back with their time (``cp -p``, ``rsync``,
    ``touch -r``) kept the old digest, and the same command said "already complete"."""
    from redpajama.models import digests

    monkeypatch.setenv("REDPAJAMA_CACHE", str(tmp_path / "cache"))
    model = tmp_path / "cutoffs.json"
    model.write_text('{"en": [340, 520]}')
    kept = os.stat(model)
    first = digests.digest(str(model))
    edited = tmp_path / "edited.json"
    edited.write_text('{"en": [170, 260]}')
    os.utime(edited, ns=(kept.st_atime_ns, kept.st_mtime_ns))
    os.replace(edited, model)
    assert os.stat(model).st_size == kept.st_size and os.stat(model).st_mtime_ns == kept.st_mtime_ns
    assert digests.digest(str(model)) != first


# --- arXiv ---------------------------------------------------------------------------------------------

READ_PAPER_IN_A_GIGABYTE = """
import resource, sys
from redpajama.slices.arxiv import Arxiv
from redpajama.slices.base import WorkUnit
resource.setrlimit(resource.RLIMIT_AS, (1 << 30, resource.getrlimit(resource.RLIMIT_AS)[1]))
for item in Arxiv(lid_model="unused").read(WorkUnit(sys.argv[1])):
    print(item.reason if hasattr(item, "reason") else "read " + item[0].split("|")[1])
"""


@pytest.mark.parametrize("project", [False, True])
def test_a_small_paper_that_unpacks_to_huge_tex_fails_as_too_large_before_it_is_decoded(tmp_path, project):
    """A 200 KB paper of 200 MB of TeX (one astral character makes Python keep it at 4 bytes a
    character) passed --max-paper-mb (256) and took the worker to 1.5 GB before failing as
    clean_latex_out_of_memory. TeX past --max-record-mb now fails as record_too_large while it
    is read: here the reader alone, under a 1 GB address-space limit."""
    import io
    import tarfile
    import zlib

    tex = [b"\\documentclass{article}\n\\begin{document}\n\\section{S}\n\xf0\x9d\x94\xb8\n"] + [b"a" * (1 << 20)] * 200
    if project:
        inner = io.BytesIO()
        with tarfile.open(fileobj=inner, mode="w") as archive:
            info = tarfile.TarInfo("main.tex")
            info.size = sum(map(len, tex))
            archive.addfile(info, io.BytesIO(b"".join(tex)))
        tex = [inner.getvalue()]
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)
    payload = b"".join([packer.compress(piece) for piece in tex] + [packer.flush()])
    assert len(payload) < 1 << 20
    bulk = tmp_path / "arXiv_src_2301_001.tar"
    with tarfile.open(bulk, "w") as archive:
        info = tarfile.TarInfo("2301/2301.00001.gz")
        info.size = len(payload)
        archive.addfile(info, io.BytesIO(payload))
    done = subprocess.run([sys.executable, "-c", READ_PAPER_IN_A_GIGABYTE, str(bulk)], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0 and done.stdout.split() == ["record_too_large"], done.stderr[-2000:]


def test_a_marker_without_a_fingerprint_names_no_file_a_run_may_remove(tmp_path):
    """A ``_SUCCESS`` no run of this project wrote (``{"files": ["README.md"]}``: another tool's, or
    hand-made) made the user's README.md a run's file: the next run deleted it, no --overwrite asked."""
    folder = tmp_path / "c4"
    folder.mkdir()
    (folder / "README.md").write_text("mine")
    (folder / "_SUCCESS").write_text(json.dumps({"files": ["README.md"]}))
    found = SliceFolder.read(str(folder))
    assert found.foreign() == ["README.md"]
    with pytest.raises(UsageError, match="did not write .*README.md"):
        found.check_writable()


def test_lines_split_over_many_chunks_are_joined_once():
    """A long line arriving in small pieces is held as pieces and joined when it ends (joining
    the held bytes again at every piece took seconds for tens of MB: quadratic)."""
    import random
    import time

    from redpajama.core.streams import iter_lines

    rng = random.Random(7)
    data = b"".join(rng.choice([b"a", b"bb", b"\n", b"ccc", b"\n\n"]) for _ in range(20_000)) + b"tail"
    for size in (1, 2, 3, 7, 64, 4096, len(data)):
        pieces = [data[i : i + size] for i in range(0, len(data), size)]
        expected, offset = [], 0
        for line in data.split(b"\n"):
            expected.append((offset, line))
            offset += len(line) + 1
        assert list(iter_lines(pieces)) == expected[:-1] + ([expected[-1]] if expected[-1][1] else [])
    line = b"x" * (16 << 20)
    started = time.process_time()
    assert [len(text) for _, text in iter_lines(line[i : i + 1024] for i in range(0, len(line), 1024))] == [16 << 20]
    assert time.process_time() - started < 10  # ~0.05 s joined once; the old loop copied ~128 GB
