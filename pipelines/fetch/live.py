"""Fetching one cited page from its live site into WARC request and response records.

As RedPajama's ``wget --timeout=5``: every connect and read waits at most ``timeout``
seconds. Unlike it, robots.txt is read first (RFC 9309: 401/403 forbid everything, other
4xx allow everything, 5xx forbid), its ``Crawl-delay`` slows the host down, bodies are
capped in size and a page in time (``max_seconds``, a deadline on every read, headers
included, however slowly the bytes come), pages that are not HTML are not kept, and each
failure gets a reason. A redirect is not followed here: it comes back as an outcome with
the next hop, which the caller queues under that hop's own host (its robots.txt, its delay).
"""

from __future__ import annotations

import io
import threading
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit
from urllib.robotparser import RobotFileParser

import requests
import urllib3
from redpajama.core.http_deadline import deadline, remaining, with_deadlines
from requests.utils import requote_uri
from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import BufferWARCWriter

HTML_TYPES = ("text/html", "application/xhtml+xml")
TRANSIENT_STATUS = (429, 500, 502, 503, 504)
MAX_REDIRECTS = 10
ROBOTS_MAX_BYTES = 512 << 10  # RFC 9309: parse at least 500 KiB
MAX_CRAWL_DELAY = 60.0
READ_PIECE = 64 << 10


@dataclass
class Outcome:
    """What became of one URL: ``reason`` is ``fetched`` or why not."""

    url: str
    reason: str
    status: int | None = None
    final_url: str = ""
    records: bytes = b""  # gzip members (WARC records) to append, when fetched
    retry_after: float | None = None  # set when trying again later may succeed
    redirect: str = ""  # the next hop (absolute), when the answer was a redirect

    @property
    def fetched(self) -> bool:
        return self.reason == "fetched"


@dataclass(frozen=True)
class HttpSettings:
    user_agent: str
    timeout: float = 5.0
    max_bytes: int = 5 << 20
    max_seconds: float = 60.0
    language: str | None = None  # Accept-Language


def host_of(url: str) -> str:
    """What politeness and robots.txt are kept per: scheme, host and port."""
    parts = urlsplit(url)
    return f"{parts.scheme.lower()}://{parts.netloc.lower()}"


def transient(reason: str, response: requests.Response | None = None) -> Outcome:
    return Outcome("", reason, retry_after=_retry_after(response))


def _retry_after(response: requests.Response | None) -> float:
    value = response.headers.get("Retry-After", "") if response is not None else ""
    return min(float(value), 300.0) if value.strip().isdigit() else 0.0


def request_failure(error: Exception) -> Outcome:
    """The outcome of a request that raised: transient (timeouts, resets) or final."""
    if isinstance(error, requests.exceptions.TooManyRedirects):
        return Outcome("", "too_many_redirects")
    if isinstance(error, (requests.exceptions.Timeout, urllib3.exceptions.TimeoutError)):
        return transient("timeout")
    if isinstance(error, requests.exceptions.SSLError):
        return Outcome("", "tls_error")
    if isinstance(error, (requests.exceptions.InvalidURL, requests.exceptions.InvalidSchema,
                          requests.exceptions.MissingSchema, urllib3.exceptions.LocationParseError, UnicodeError)):
        return Outcome("", "invalid_url")
    if "NameResolutionError" in repr(error) or "Name or service not known" in str(error):
        return Outcome("", "dns_error")
    if isinstance(error, (requests.exceptions.ConnectionError, urllib3.exceptions.HTTPError, OSError)):
        return transient("connection_error")
    return Outcome("", "request_error")


def past_deadline() -> bool:
    left = remaining()
    return left is not None and left <= 0


def read_capped(response: requests.Response, settings: HttpSettings, started: float,
                keep_first: bool = False) -> bytes | Outcome:
    """The body as sent (still content-encoded), or the outcome when it is too large or too slow
    (past ``max_seconds`` since ``started``, or past the thread's deadline while waiting for a byte).
    With ``keep_first``, a body over ``max_bytes`` gives its first ``max_bytes`` instead."""
    declared = response.headers.get("Content-Length", "")
    if declared.isdigit() and int(declared) > settings.max_bytes and not keep_first:
        return Outcome("", "too_large")
    body = bytearray()
    try:
        for piece in response.raw.stream(READ_PIECE, decode_content=False):
            body += piece
            if len(body) > settings.max_bytes:
                return bytes(body[: settings.max_bytes]) if keep_first else Outcome("", "too_large")
            if time.monotonic() - started > settings.max_seconds:
                return Outcome("", "too_slow")
    except Exception as error:  # noqa: BLE001 - urllib3 raises several unrelated types mid-body
        return Outcome("", "too_slow") if past_deadline() else request_failure(error)
    return bytes(body)


def looks_like_html(body: bytes, encoding: str) -> bool:
    """For responses without a Content-Type: does the start of the page look like HTML?"""
    head = body[:4096]
    if encoding in ("gzip", "x-gzip", "deflate"):
        try:
            head = zlib.decompressobj(47).decompress(body[:65536], 4096)
        except zlib.error:
            return False
    head = head.lstrip().lower()
    return head.startswith((b"<!doctype html", b"<html")) or b"<html" in head[:1024] or b"<body" in head[:2048]


def warc_records(response: requests.Response, body: bytes) -> bytes:
    """The request and response records of one exchange, each its own gzip member."""
    writer = BufferWARCWriter(gzip=True)
    date = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    protocol = {10: "HTTP/1.0", 11: "HTTP/1.1"}.get(getattr(response.raw, "version", 11), "HTTP/1.1")
    # The body is stored de-chunked (as urllib3 read it), so Transfer-Encoding no longer applies.
    headers = [(k, v) for k, v in response.raw.headers.items() if k.lower() != "transfer-encoding"]
    http = StatusAndHeaders(f"{response.status_code} {response.reason or ''}".strip(), headers, protocol=protocol)
    answer = writer.create_warc_record(response.url, "response", payload=io.BytesIO(body), length=len(body),
                                       http_headers=http, warc_headers_dict={"WARC-Date": date})
    request = response.request
    parts = urlsplit(request.url)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    sent = [("Host", parts.netloc), *request.headers.items()]
    question = writer.create_warc_record(
        response.url, "request", http_headers=StatusAndHeaders(f"GET {target}", sent, protocol=protocol, is_http_request=True),
        warc_headers_dict={"WARC-Date": date, "WARC-Concurrent-To": answer.rec_headers.get_header("WARC-Record-ID")},
    )
    writer.write_record(question)
    writer.write_record(answer)
    return writer.get_contents()


class LiveFetcher:
    """Fetches pages from their sites; one ``requests`` session per worker thread."""

    def __init__(self, settings: HttpSettings, slow_down: Callable[[str, float], None]):
        self.settings = settings
        self.slow_down = slow_down
        self._local = threading.local()
        self._robots: dict[str, RobotFileParser | None] = {}
        self._robots_locks: dict[str, threading.Lock] = {}
        self._lock = threading.Lock()

    host_of = staticmethod(host_of)

    def _session(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = with_deadlines(requests.Session())
            session.headers.update({"User-Agent": self.settings.user_agent,
                                    "Accept": "text/html,application/xhtml+xml;q=0.9,*/*;q=0.1"})
            if self.settings.language:
                session.headers["Accept-Language"] = f"{self.settings.language},*;q=0.5"
        return session

    def __call__(self, url: str) -> Outcome:
        started = time.monotonic()
        host = host_of(url)
        allowed = self._robots_allow(host, url)
        if isinstance(allowed, Outcome):
            return for_url(url, allowed)
        if not allowed:
            return Outcome(url, "robots_disallowed")
        cap = started + self.settings.max_seconds
        with deadline(cap):
            return self._get(url, started, cap)

    def _get(self, url: str, started: float, cap: float) -> Outcome:
        timeout = self.settings.timeout
        session = self._session()
        try:
            connect = max(0.001, min(timeout, cap - time.monotonic()))
            response = session.get(url, timeout=(connect, timeout), stream=True, allow_redirects=False)
        except Exception as error:  # noqa: BLE001 - classified, never raised
            return for_url(url, Outcome("", "too_slow") if past_deadline() else request_failure(error))
        with response:
            status = response.status_code
            location = session.get_redirect_target(response)
            if location:
                target = requote_uri(urljoin(response.url, location))
                return Outcome(url, "redirect", status, target, redirect=target)
            if status in TRANSIENT_STATUS:
                return for_url(url, transient(f"http_{status}", response), status)
            if not 200 <= status < 300:
                return Outcome(url, f"http_{status}", status, response.url)
            content_type = response.headers.get("Content-Type", "").split(";")[0].strip().lower()
            if content_type and content_type not in HTML_TYPES:
                return Outcome(url, "not_html", status, response.url)
            body = read_capped(response, self.settings, started)
            if isinstance(body, Outcome):
                return for_url(url, body, status)
            if not content_type and not looks_like_html(body, response.headers.get("Content-Encoding", "").lower()):
                return Outcome(url, "not_html", status, response.url)
            return Outcome(url, "fetched", status, response.url, warc_records(response, body))

    # --- robots.txt -------------------------------------------------------------------------
    def _robots_allow(self, host: str, url: str) -> bool | Outcome:
        with self._lock:
            lock = self._robots_locks.setdefault(host, threading.Lock())
        with lock:
            if host not in self._robots:
                rules = self._read_robots(host)
                if isinstance(rules, Outcome):
                    return rules  # a network failure: not remembered, the retry asks again
                self._robots[host] = rules
            rules = self._robots[host]
        if rules is None:
            return True
        delay = rules.crawl_delay(self.settings.user_agent)
        if delay:
            self.slow_down(host, min(float(delay), MAX_CRAWL_DELAY))
        return rules.can_fetch(self.settings.user_agent, url)

    def _read_robots(self, host: str) -> RobotFileParser | None | Outcome:
        timeout = self.settings.timeout
        with deadline(time.monotonic() + 2 * timeout):
            return self._robots_reply(host, timeout)

    def _robots_reply(self, host: str, timeout: float) -> RobotFileParser | None | Outcome:
        try:
            response = self._session().get(f"{host}/robots.txt", timeout=(timeout, timeout), stream=True)
        except Exception as error:  # noqa: BLE001
            failure = request_failure(error)
            return failure if failure.retry_after is not None else None
        with response:
            rules = RobotFileParser()
            if response.status_code in (401, 403):
                rules.disallow_all = True
            elif 400 <= response.status_code < 500:
                return None
            elif response.status_code >= 500:
                return Outcome("", "robots_unreachable")
            else:
                # RFC 9309: at least the first 500 KiB are parsed; rules past the limit may be ignored
                body = read_capped(response, HttpSettings("", timeout, ROBOTS_MAX_BYTES, 2 * timeout), time.monotonic(),
                                   keep_first=True)
                if isinstance(body, Outcome):
                    return body
                if response.headers.get("Content-Encoding", "").lower() in ("gzip", "x-gzip", "deflate"):
                    try:
                        body = zlib.decompressobj(47).decompress(body, ROBOTS_MAX_BYTES)
                    except zlib.error:
                        return None
                if len(body) >= ROBOTS_MAX_BYTES:  # cut: a last line may be partial
                    body = body[: body.rfind(b"\n") + 1]
                rules.parse(body.decode("utf-8", "replace").splitlines())
            rules.modified()
            return rules


def for_url(url: str, outcome: Outcome, status: int | None = None) -> Outcome:
    """``outcome`` (made without knowing the URL) as the outcome of ``url``."""
    outcome.url = url
    if status is not None:
        outcome.status = status
    return outcome
