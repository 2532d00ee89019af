"""Fetching one cited page from a CommonCrawl crawl instead of its site.

The crawl's CDX index (``https://index.commoncrawl.org/CC-MAIN-YYYY-WW-index``) says which
WARC file holds the URL's capture and where; a range request to CommonCrawl's data server
returns that record as the single gzip member CommonCrawl wrote, which is appended to our
WARC unchanged. Pages that are gone from the web are still there, and the same crawl gives
the same bytes to every user. Redirect captures are followed through the index.
"""

from __future__ import annotations

import gzip
import io
import json
import threading
import time
from urllib.parse import urlencode, urljoin, urlsplit

import requests
from redpajama.core.http_deadline import deadline, with_deadlines
from redpajama.pipelines.fetch.live import (
    HTML_TYPES,
    TRANSIENT_STATUS,
    HttpSettings,
    Outcome,
    for_url,
    past_deadline,
    read_capped,
    request_failure,
    transient,
)
from warcio.archiveiterator import ArchiveIterator

CDX_SERVER = "https://index.commoncrawl.org"
DATA_SERVER = "https://data.commoncrawl.org"
MAX_HOPS = 5


def capture_rank(capture: dict) -> tuple:
    """Prefer a 200, then a redirect, then anything; the latest capture first."""
    status = str(capture.get("status", ""))
    kind = 0 if status == "200" else 1 if status.startswith("3") else 2
    return kind, _negated(capture.get("timestamp", ""))


def _negated(timestamp: str) -> str:
    return "".join(chr(ord("9") - ord(c) + ord("0")) if c.isdigit() else c for c in timestamp)


class CrawlFetcher:
    """Looks URLs up in one crawl's CDX index and range-requests their WARC records."""

    def __init__(self, crawl: str, settings: HttpSettings, cdx_server: str = CDX_SERVER, data_server: str = DATA_SERVER):
        self.crawl = crawl
        self.settings = settings
        self.index = f"{cdx_server.rstrip('/')}/{crawl}-index"
        self.data_server = data_server.rstrip("/")
        self.politeness_host = urlsplit(self.index).netloc  # every lookup asks the index server
        self._local = threading.local()

    def host_of(self, url: str) -> str:
        return self.politeness_host

    def _session(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = with_deadlines(requests.Session())
            session.headers["User-Agent"] = self.settings.user_agent
        return session

    def __call__(self, url: str) -> Outcome:
        """The page's record; its lookups and its read end within ``max_seconds`` (``too_slow``),
        however slowly the servers send, as a live page's do."""
        started = time.monotonic()
        with deadline(started + self.settings.max_seconds):
            return self._fetch(url, started)

    def _fetch(self, url: str, started: float) -> Outcome:
        target = url
        for _ in range(MAX_HOPS + 1):
            captures = self.lookup(target, started)
            if isinstance(captures, Outcome):
                return for_url(url, captures)
            if not captures:
                return Outcome(url, "not_in_crawl")
            capture = min(captures, key=capture_rank)
            status = str(capture.get("status", ""))
            if status.startswith("3") and capture.get("redirect"):
                target = urljoin(target, capture["redirect"])
                continue
            return self._record(url, capture)
        return Outcome(url, "too_many_redirects")

    def lookup(self, url: str, started: float | None = None) -> list[dict] | Outcome:
        """The crawl's captures of ``url`` (none: an empty list); an answer is read up to ``max_bytes``."""
        timeout = self.settings.timeout
        try:
            response = self._session().get(f"{self.index}?{urlencode({'url': url, 'output': 'json'})}",
                                           timeout=(timeout, 6 * timeout), stream=True)
        except Exception as error:  # noqa: BLE001
            if past_deadline():
                return Outcome("", "too_slow")
            failure = request_failure(error)
            return transient("cdx_unavailable") if failure.retry_after is not None else failure
        with response:
            if response.status_code == 404:
                return []
            if response.status_code in TRANSIENT_STATUS:
                return transient("cdx_unavailable", response)
            if response.status_code != 200:
                return Outcome("", f"cdx_http_{response.status_code}")
            body = read_capped(response, self.settings, time.monotonic() if started is None else started)
        if isinstance(body, Outcome):
            return Outcome("", "cdx_too_large") if body.reason == "too_large" else body
        captures = []
        for line in body.decode(response.encoding or "utf-8", "replace").splitlines():
            try:
                capture = json.loads(line)
            except (ValueError, RecursionError):  # a line nested too deep for the parser is skipped like any bad one
                continue
            if isinstance(capture, dict) and {"filename", "offset", "length"} <= capture.keys():
                captures.append(capture)
        return captures

    def _record(self, url: str, capture: dict) -> Outcome:
        status = str(capture.get("status", ""))
        if status != "200":
            return Outcome(url, f"crawl_http_{status or 'unknown'}", int(status) if status.isdigit() else None)
        mime = str(capture.get("mime-detected") or capture.get("mime") or "").lower()
        if mime not in HTML_TYPES:
            return Outcome(url, "not_html", 200, capture.get("url", url))
        try:
            offset, length = int(capture["offset"]), int(capture["length"])
        except (TypeError, ValueError):
            return Outcome(url, "bad_cdx_entry")
        if length > self.settings.max_bytes:
            return Outcome(url, "too_large", 200)
        timeout = self.settings.timeout
        try:
            response = self._session().get(f"{self.data_server}/{capture['filename']}", timeout=(timeout, 6 * timeout),
                                           headers={"Range": f"bytes={offset}-{offset + length - 1}"}, stream=True)
        except Exception as error:  # noqa: BLE001
            if past_deadline():
                return Outcome(url, "too_slow")
            failure = request_failure(error)
            return for_url(url, transient("crawl_data_unavailable") if failure.retry_after is not None else failure)
        with response:
            if response.status_code in TRANSIENT_STATUS:
                return for_url(url, transient("crawl_data_unavailable", response))
            if response.status_code != 206:
                return Outcome(url, f"crawl_data_http_{response.status_code}")
            try:
                member = response.raw.read(length + 1, decode_content=False)
            except Exception as error:  # noqa: BLE001 - urllib3 raises several unrelated types mid-body
                return Outcome(url, "too_slow") if past_deadline() else for_url(url, request_failure(error))
        if len(member) != length or not _is_response_record(member):
            return Outcome(url, "bad_crawl_record")
        return Outcome(url, "fetched", 200, capture.get("url", url), member)


def _is_response_record(member: bytes) -> bool:
    """One gzip member holding a WARC response record (what a CDX entry points at)."""
    try:
        types = [record.rec_type for record in ArchiveIterator(io.BytesIO(gzip.decompress(member)))]
    except Exception:  # noqa: BLE001 - gzip and warcio raise many types, bare ones included
        return False
    return types == ["response"]
