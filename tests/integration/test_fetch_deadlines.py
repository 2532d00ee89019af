"""fetch-pages: the page cap holds wherever the bytes come in (headers and body, however slowly),
and every redirect hop is asked for under its own host's robots.txt and politeness."""

from __future__ import annotations

from pathlib import Path

import pytest
from redpajama.pipelines.fetch import pages as fetch
from redpajama.pipelines.fetch.pages import FetchSettings, read_journal, run_fetch
from redpajama.pipelines.fetch.politeness import HostScheduler

from tests.guards import alarm
from tests.integration.loopback import HOSTS, Reply, Server

GUARD_SECONDS = 45  # turns a hang into a failure; not a measurement (a dripped page here takes 60 s)
PAGE = b"<!DOCTYPE html><html><head><title>t</title></head><body>" + b"<p>words</p>" * 20 + b"</body></html>"
TEXT = {"Content-Type": "text/plain"}


class RecordingScheduler(HostScheduler):
    """The run's scheduler, noting the host of each request it lets start."""

    hosts: list[str] = []

    def _next_ready(self):
        task, wait = super()._next_ready()
        if task is not None:
            RecordingScheduler.hosts.append(task.host)
        return task, wait


@pytest.fixture
def scheduled(monkeypatch) -> list[str]:
    RecordingScheduler.hosts = []
    monkeypatch.setattr(fetch, "HostScheduler", RecordingScheduler)
    return RecordingScheduler.hosts


@pytest.fixture
def servers():
    first = Server(HOSTS[0], lambda path, query, headers: routes[0].get(path) or Reply(404, b"no"))
    second = Server(HOSTS[1], lambda path, query, headers: routes[1].get(path) or Reply(404, b"no"))
    routes: list[dict[str, Reply]] = [{"/robots.txt": Reply(body=b"User-agent: *\nAllow: /\n", headers=TEXT)},
                                      {"/robots.txt": Reply(body=b"User-agent: *\nDisallow: /secret\n", headers=TEXT)}]
    yield first, second, routes
    first.close()
    second.close()


def fetch_urls(folder: Path, urls: list[str], **changes) -> tuple[dict, dict]:
    listing = folder / "urls.txt"
    listing.write_text("\n".join(urls) + "\n")
    base = dict(inputs=[str(listing)], output=folder / "out", workers=4, per_host=1, delay=0.0, timeout=2.0, retries=0,
                backoff=0.05, max_seconds=1.0, quiet=True)
    with alarm(GUARD_SECONDS):
        stats = run_fetch(FetchSettings(**{**base, **changes}))
    return stats, read_journal(folder / "out" / "fetched.tsv")


def test_a_page_dripped_a_byte_at_a_time_is_cut_at_the_page_cap(servers, tmp_path):
    first, _, routes = servers
    routes[0]["/drip-body"] = Reply(body=PAGE, drip=0.2)  # 300 bytes: 60 s, each byte well inside the 2 s timeout
    routes[0]["/drip-head"] = Reply(body=PAGE, drip_head=0.2)  # the headers alone take 20 s
    routes[0]["/fine"] = Reply(body=PAGE)
    stats, journal = fetch_urls(tmp_path, [f"{first.base}/drip-body", f"{first.base}/drip-head", f"{first.base}/fine"])
    assert journal[f"{first.base}/drip-body"][1] == "too_slow"
    assert journal[f"{first.base}/drip-head"][1] == "too_slow"
    assert journal[f"{first.base}/fine"][1] == "fetched"
    assert stats["this_run"]["failed"] == {"too_slow": 2}


def test_a_redirect_to_another_host_is_asked_for_under_that_hosts_robots_txt(servers, tmp_path, scheduled):
    first, second, routes = servers
    routes[0]["/jump-secret"] = Reply(302, b"", {"Location": f"{second.base}/secret", "Content-Type": "text/html"})
    routes[0]["/jump-open"] = Reply(301, b"", {"Location": f"{second.base}/open", "Content-Type": "text/html"})
    routes[0]["/jump-file"] = Reply(301, b"", {"Location": "file:///etc/passwd", "Content-Type": "text/html"})
    routes[0]["/loop"] = Reply(302, b"", {"Location": "/loop", "Content-Type": "text/html"})
    routes[1]["/secret"] = Reply(body=PAGE)
    routes[1]["/open"] = Reply(body=PAGE)
    urls = [f"{first.base}/{path}" for path in ("jump-secret", "jump-open", "jump-file", "loop")]
    stats, journal = fetch_urls(tmp_path, urls)
    assert journal[urls[0]][1:4] == ("robots_disallowed", "302", f"{second.base}/secret")
    assert journal[urls[1]][1:4] == ("fetched", "200", f"{second.base}/open")
    assert journal[urls[2]][1] == "invalid_url" and journal[urls[3]][1] == "too_many_redirects"
    assert second.hits["/robots.txt"] == 1 and second.hits["/secret"] == 0 and second.hits["/open"] == 1
    assert first.hits["/robots.txt"] == 1 and first.hits["/loop"] == 11  # the first request and 10 hops
    # each hop waited its turn in its own host's queue
    assert scheduled.count(second.base) == 2 and scheduled.count(first.base) == 4 + 10
    assert stats["this_run"]["fetched"] == 1
