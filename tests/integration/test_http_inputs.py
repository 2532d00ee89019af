"""HTTP inputs always end: bounded retries with exponential back-off (reset only by progress), a
minimum rate over the time spent waiting, a deadline on every read (headers included), then a
counted failure. Servers on loopback with small deadlines; times are only bounded, generously."""

from __future__ import annotations

import bz2
import dataclasses
import re

import pytest
from redpajama.core import storage
from redpajama.core.errors import SourceError, failure_reason
from redpajama.slices.wikipedia import Wikipedia

from tests.conftest import WIKI_EN, need
from tests.guards import alarm, bounded
from tests.integration.helpers import errors, records, run
from tests.integration.loopback import Reply, Server

GUARD_SECONDS = 120  # turns a hang into a failure; not a measurement
DATA = bytes(range(256)) * 40  # 10,240 bytes
POLICY = storage.HttpPolicy(attempts=4, backoff=0.01, max_backoff=0.05, stall_seconds=1.0, min_rate=2000.0,
                            rate_window=0.5, max_seconds=30.0)


@pytest.fixture
def policy(monkeypatch) -> list[float]:
    """Small deadlines for every HTTP input; returns the back-off waits, as they are asked for."""
    waits: list[float] = []
    monkeypatch.setattr(storage, "HTTP_POLICY", POLICY)
    monkeypatch.setattr(storage, "_sleep", waits.append)
    return waits


def ranged(data: bytes, cut: int | None = None, every: int | None = None, **reply):
    """A server route for ``data`` that honours Range. ``cut``: every reply stops at that byte of the
    file while declaring the full length (the file is shorter than the server says); ``every``: a
    reply carries at most that many bytes, declaring the rest (the connection drops)."""

    def route(path: str, query: str, headers: dict) -> Reply:
        match = re.fullmatch(r"bytes=(\d+)-(\d*)", headers.get("Range", ""))
        start = int(match.group(1)) if match else 0
        end = int(match.group(2)) + 1 if match and match.group(2) else len(data)
        sent = data[start:end]
        if cut is not None:
            sent = data[start:max(start, min(end, cut))]
        if every is not None:
            sent = sent[:every]
        head = {"Content-Type": "application/octet-stream", "Accept-Ranges": "bytes"}
        if match:
            head["Content-Range"] = f"bytes {start}-{end - 1}/{len(data)}"
        return Reply(206 if match else 200, sent, head, length=end - start, **reply)

    return route


def read_all(url: str, start: int = 0, end: int | None = None) -> bytes:
    with storage.open_range(url, start, end) as stream:
        return stream.read()


@pytest.fixture
def serve():
    servers = []

    def start(route) -> Server:
        servers.append(Server("127.0.0.1", route))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


def test_a_server_that_sends_less_than_it_declares_ends_after_bounded_retries_with_backoff(serve, policy):
    server = serve(ranged(DATA, cut=3000))
    with pytest.raises(SourceError, match=r"gave up after 4 attempts without a byte, at byte 3000") as failed:
        bounded(lambda: read_all(f"{server.base}/data.bin"))
    assert failure_reason(failed.value) == "unreadable_input"
    # the first request brought 3,000 bytes; then four in a row brought none, with growing waits between them
    assert server.hits["/data.bin"] == 5
    assert policy == [0.01, 0.02, 0.04]
    assert [headers.get("Range") for _, _, headers in server.requests] == [None] + ["bytes=3000-10239"] * 4


def test_dropped_connections_resume_where_they_stopped_while_bytes_keep_coming(serve, policy):
    server = serve(ranged(DATA, every=1000))
    assert bounded(lambda: read_all(f"{server.base}/data.bin")) == DATA
    assert bounded(lambda: read_all(f"{server.base}/data.bin", 500, 7500)) == DATA[500:7500]
    assert server.hits["/data.bin"] == 11 + 7 and policy == []  # progress every time: no waiting


def test_a_server_that_drips_its_body_fails_the_input_as_too_slow(serve, policy):
    server = serve(ranged(DATA, drip=0.02))  # 50 bytes/s: 200 s for the file
    with pytest.raises(SourceError, match="too slow") as failed:
        bounded(lambda: read_all(f"{server.base}/data.bin"), 60)
    assert failure_reason(failed.value) == "input_too_slow"


def test_a_server_that_drips_its_headers_never_holds_a_read(serve, policy, monkeypatch):
    monkeypatch.setattr(storage, "HTTP_POLICY", dataclasses.replace(POLICY, rate_window=1000.0))  # the stall alone
    server = serve(ranged(DATA, drip_head=0.05))  # 2 s for the headers, over the 1 s stall deadline
    with pytest.raises(SourceError, match="gave up after 4 attempts"):
        bounded(lambda: read_all(f"{server.base}/data.bin"), 60)
    assert server.hits["/data.bin"] == 4 and policy == [0.01, 0.02, 0.04]


def test_a_slow_reader_is_not_a_slow_input(serve, policy):
    """The rate counts time spent waiting on the network, not time the consumer spends elsewhere."""
    import time

    server = serve(ranged(DATA))
    pieces = []
    with storage.open_range(f"{server.base}/data.bin") as stream:
        while piece := stream.read(2048):
            pieces.append(piece)
            time.sleep(0.3)  # past the 0.5 s window in total, with few bytes per second of wall time
    assert b"".join(pieces) == DATA


def test_an_http_input_that_never_ends_is_one_counted_failure_of_the_run(serve, policy, tmp_path):
    xml = bz2.decompress(need(WIKI_EN).read_bytes())
    cut = xml.index(b"<page>", len(xml) // 2)
    server = serve(ranged(xml, cut=cut))
    with alarm(GUARD_SECONDS):  # a run wants the main thread (signals): the guard is an alarm here
        outcome = run(Wikipedia(), [f"{server.base}/enwiki-20230320-pages-articles.xml"], tmp_path / "out", workers=1)
    stats = outcome.stats
    [failure] = errors(outcome.slice_dir)
    assert failure["reason"] == "unreadable_input" and "gave up after 4 attempts" in failure["detail"]
    assert stats["failed"] == 1 and stats["kept"] == len(records(outcome.slice_dir)) > 10
