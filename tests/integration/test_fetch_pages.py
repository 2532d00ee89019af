import gzip
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from redpajama.formats.warc_records import RawDocument
from redpajama.formats.webarchive import read_archive
from redpajama.pipelines.commands.cli import main
from redpajama.pipelines.fetch import pages as fetch
from redpajama.pipelines.fetch.pages import FetchSettings, read_journal, run_fetch
from redpajama.pipelines.fetch.politeness import HostScheduler
from warcio.archiveiterator import ArchiveIterator

from tests.conftest import SHARED, WIKI_EN, need
from tests.integration.loopback import HOSTS, PAGES, Capture, Server, Site, cdx_route, data_route, index_warc

CC_WARC = SHARED / "commoncrawl" / "warc" / "resiliparse-warcfile-CC-MAIN-2020-34.warc.gz"
CC_NAME = "crawl-data/CC-MAIN-2020-34/segments/1596439738015.38/warc/CC-MAIN-20200808165417-20200808195417-00395.warc.gz"


@pytest.fixture
def site():
    served = Site(need(WIKI_EN))
    yield served
    served.close()


def settings(urls: Path, output: Path, **changes) -> FetchSettings:
    base = dict(inputs=[str(urls)], output=output, workers=6, per_host=2, delay=0.05, timeout=1.0, retries=1,
                backoff=0.05, max_bytes=1 << 20, quiet=True)
    return FetchSettings(**{**base, **changes})


def warc_records(folder: Path) -> list:
    found = []
    for path in sorted(folder.glob("pages-*.warc.gz")):
        with path.open("rb") as handle:
            for record in ArchiveIterator(handle):
                body = record.content_stream().read()
                found.append((record.rec_type, record.rec_headers.get_header("WARC-Target-URI"), record, body))
    return found


EXPECTED_FAILURES = {"http_404": 1, "timeout": 1, "too_large": 1, "not_html": 1, "robots_disallowed": 1,
                     "unsupported_scheme": 1}


class RecordingScheduler(HostScheduler):
    """The run's scheduler, noting each request it lets start: host, time on its own clock, and
    how many requests to that host are then in flight. (What a server sees depends on the
    machine's load: a client that gave up on a request is no longer asking, a reply written is
    not yet counted out.)"""

    starts: list[tuple[str, float, int]] = []

    def _next_ready(self):
        task, wait = super()._next_ready()
        if task is not None:
            RecordingScheduler.starts.append((task.host, self.clock(), self._hosts[task.host].active))
        return task, wait


@pytest.fixture
def scheduled(monkeypatch) -> list[tuple[str, float, int]]:
    RecordingScheduler.starts = []
    monkeypatch.setattr(fetch, "HostScheduler", RecordingScheduler)
    return RecordingScheduler.starts


def test_cited_pages_fetched_politely_into_warc_with_every_failure_counted(site, tmp_path, scheduled):
    assert len(site.cited) == PAGES and len({s.base for s in site.servers}) == 3
    stats = run_fetch(settings(site.url_list(tmp_path), tmp_path / "out"))
    assert stats["urls"] == {"listed": PAGES + 10, "duplicate": 1, "invalid_line": 0, "done_before": 0, "not_attempted": 0}
    assert stats["this_run"]["failed"] == EXPECTED_FAILURES
    assert stats["this_run"]["fetched"] == PAGES + 3  # the pages, /moved (to /moved-here), /untyped, /flaky
    records = warc_records(tmp_path / "out")
    responses = {uri: (record, body) for kind, uri, record, body in records if kind == "response"}
    requests_ = [uri for kind, uri, _, _ in records if kind == "request"]
    assert len(responses) == len(requests_) == PAGES + 3 and len(records) == 2 * (PAGES + 3)
    record, body = responses[next(iter(site.pages))]
    assert record.http_headers.get_statuscode() == "200" and body.startswith(b"<!DOCTYPE html>")
    assert record.rec_headers.get_header("WARC-Payload-Digest").startswith("sha1:")
    assert f"{site.odd.base}/moved-here" in responses and f"{site.odd.base}/moved" not in responses
    assert set(site.pages) <= set(responses)
    # Politeness: robots.txt read once per host, the disallowed page never asked for, the slow one
    # asked twice (one retry), flaky retried; never more than --per-host 2 requests in flight to a
    # host and --delay 0.05 between two starts (robots.txt rides in a request's slot; a redirect hop
    # waits for its own).
    assert [server.hits["/robots.txt"] for server in site.servers] == [1, 1, 1]
    hits = site.odd.hits
    assert (hits["/private/page"], hits["/slow"], hits["/flaky"], hits["/huge"]) == (0, 2, 2, 1)
    assert {host for host, _, _ in scheduled} == {server.base for server in site.servers}
    assert len(scheduled) == PAGES + 10 - 2 + 2 + 1  # not the duplicate or ftp:, two retries, a redirect hop
    assert max(active for _, _, active in scheduled) <= 2
    for server in site.servers:
        starts = [t for host, t, _ in scheduled if host == server.base]
        assert min(b - a for a, b in zip(starts, starts[1:], strict=False)) >= 0.05
    journal = read_journal(tmp_path / "out" / "fetched.tsv")
    assert journal[f"{site.odd.base}/moved"][1:4] == ("fetched", "200", f"{site.odd.base}/moved-here")
    assert journal[f"{site.odd.base}/missing"][1:3] == ("http_404", "404")
    # The WARC is CommonCrawl input: the pages come out of our own reader as HTML documents.
    path = next((tmp_path / "out").glob("pages-*.warc.gz"))
    documents = [item for item in read_archive(lambda offset: path.open("rb"), str(path)) if isinstance(item, RawDocument)]
    assert len(documents) == PAGES + 3 and all(doc.html is not None for doc in documents)
    # A second run asks only for what failed for a passing reason: the timeout.
    again = run_fetch(settings(site.url_list(tmp_path), tmp_path / "out"))
    assert again["urls"]["done_before"] == PAGES + 8 and again["this_run"]["failed"] == {"timeout": 1}
    assert again["this_run"]["fetched"] == 0 and again["total"]["fetched"] == PAGES + 3
    assert again["this_run"]["warc_files"] == []
    written = json.loads((tmp_path / "out" / "stats.json").read_text())
    assert written["this_run"] == again["this_run"] and written["settings"]["timeout"] == 1.0
    assert not (tmp_path / "out" / "_LOCK").exists()


def test_stopped_runs_resume_without_fetching_a_page_twice(site, tmp_path):
    urls = site.url_list(tmp_path)
    first = run_fetch(settings(urls, tmp_path / "out", max_pages=10, workers=2))
    assert 10 <= first["this_run"]["fetched"] < PAGES and first["urls"]["not_attempted"] > 0
    second = run_fetch(settings(urls, tmp_path / "out"))
    assert second["total"]["fetched"] == PAGES + 3
    assert second["this_run"]["warc_files"] == ["pages-00001-000.warc.gz"]  # never appended to the first run's file
    for server in site.servers:
        assert all(count == 1 for path, count in server.hits.items() if path not in ("/slow", "/flaky", "/robots.txt"))
    responses = [uri for kind, uri, _, _ in warc_records(tmp_path / "out") if kind == "response"]
    assert len(responses) == len(set(responses)) == PAGES + 3


@pytest.fixture
def crawl():
    captures = index_warc(need(CC_WARC), CC_NAME)
    target = captures[3]
    captures.append(Capture("http://old.example.org/page", "301", "text/html", 0, 0, CC_NAME, redirect=target.url))
    captures.append(Capture("http://example.org/report.pdf", "200", "application/pdf", 0, 10, CC_NAME))
    cdx = Server(HOSTS[0], cdx_route("CC-MAIN-2020-34", captures, unavailable_once={captures[5].url}))
    data = Server(HOSTS[1], data_route({CC_NAME: CC_WARC}))
    yield cdx, data, captures
    cdx.close()
    data.close()


def test_pages_from_a_crawl_are_its_own_records_byte_for_byte(crawl, tmp_path, scheduled):
    cdx, data, captures = crawl
    real = [c for c in captures if c.status == "200" and c.mime == "text/html"]
    urls = tmp_path / "urls.txt"
    urls.write_text("\n".join([*(c.url for c in real), "http://old.example.org/page", "http://example.org/report.pdf",
                               "http://never.crawled.example/"]) + "\n")
    stats = run_fetch(settings(urls, tmp_path / "out", from_crawl="CC-MAIN-2020-34", cdx_server=cdx.base,
                               data_server=data.base, per_host=1, delay=0.0))
    assert stats["source"] == "CC-MAIN-2020-34"
    assert stats["this_run"]["fetched"] == len(real) + 1 == 17
    assert stats["this_run"]["failed"] == {"not_in_crawl": 1, "not_html": 1}
    assert sum(cdx.hits.values()) == len(real) + 3 + 2  # + a 503 and a redirect hop
    assert {host for host, _, _ in scheduled} == {cdx.base.removeprefix("http://")} and max(a for _, _, a in scheduled) == 1
    written = (tmp_path / "out" / "pages-00000-000.warc.gz").read_bytes()
    original = CC_WARC.read_bytes()
    journal = read_journal(tmp_path / "out" / "fetched.tsv")
    for capture in real:
        _, outcome, status, final, _, offset, length = journal[capture.url]
        assert (outcome, status, final, int(length)) == ("fetched", "200", capture.url, capture.length)
        assert written[int(offset): int(offset) + capture.length] == original[capture.offset: capture.offset + capture.length]
    moved = journal["http://old.example.org/page"]
    assert moved[1] == "fetched" and moved[3] == captures[3].url
    assert gzip.decompress(written).count(b"WARC-Type: response") == 17


def test_command_line_mistakes_are_one_line(tmp_path, capsys):
    assert main(["fetch-pages", "--input", str(tmp_path / "nope.txt"), "--output", str(tmp_path / "o")]) == 2
    with pytest.raises(SystemExit) as exit_:
        main(["fetch-pages", "--input", "x", "--output", "o", "--from-crawl", "2023-14"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[0] == f"redpajama: error: no input matches '{tmp_path / 'nope.txt'}'"
    assert "expected a crawl name like CC-MAIN-2023-14" in err[1] and len(err) == 2


def test_ctrl_c_keeps_what_was_written_and_the_rerun_finishes(site, tmp_path):
    urls = site.url_list(tmp_path)
    out = tmp_path / "out"
    # A second between requests to a host: the 43 pages take over ten seconds, so the run is still
    # going when the signal comes, however late a loaded machine lets this test send it.
    command = [sys.executable, "-m", "redpajama.pipelines.commands.cli", "fetch-pages", "--input", str(urls),
               "--output", str(out), "--delay", "1", "--timeout", "0.5", "--retries", "0"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    journal = out / "fetched.tsv"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and (not journal.exists() or journal.read_text().count("\n") < 5):
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 130 and err.strip().count("\n") == 0 and "interrupted" in err
    stopped = json.loads((out / "stats.json").read_text())
    assert stopped["this_run"]["interrupted"] and stopped["urls"]["not_attempted"] > 0
    finished = run_fetch(settings(urls, out))
    assert finished["total"]["fetched"] == PAGES + 3
    responses = [uri for kind, uri, _, _ in warc_records(out) if kind == "response"]
    assert len(responses) == len(set(responses)) == PAGES + 3
