"""HTTP servers on loopback addresses for fetch tests: cited pages, hostile paths, a fake CDX API.

127.0.0.1, .2 and .3 are three hosts to the fetcher (politeness and robots.txt are per host).
Every server counts requests per path and the most requests it ever had in flight at once.
"""

from __future__ import annotations

import bz2
import functools
import html
import json
import threading
import time
import zlib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import mwparserfromhell
from redpajama.filters.citations import cited_urls
from redpajama.formats import mediawiki
from warcio.archiveiterator import ArchiveIterator

HOSTS = ("127.0.0.1", "127.0.0.2", "127.0.0.3")
PAGES = 40


@dataclass
class Reply:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=lambda: {"Content-Type": "text/html; charset=utf-8"})
    sleep: float = 0.0
    chunked: bool = False
    length: int | None = None  # the Content-Length sent, when it is not the body's (a server that lies)
    drip: float = 0.0  # seconds between two bytes of the body (a server that sends a byte at a time)
    drip_head: float = 0.0  # the same for the status line and headers


class Server:
    """A threading HTTP server whose replies come from ``route(path, query, headers) -> Reply``
    (``query`` as sent); requests are counted per path and query."""

    def __init__(self, host: str, route: Callable[[str, str, dict], Reply]):
        self.route = route
        self.hits: Counter = Counter()
        self.requests: list[tuple[str, str, dict]] = []  # (method, path, headers) of every request
        self._lock = threading.Lock()
        self.httpd = ThreadingHTTPServer((host, 0), self._handler())
        self.httpd.daemon_threads = True
        self.base = f"http://{host}:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def _handler(self):
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:
                pass

            def handle(self) -> None:
                try:
                    super().handle()
                except (ConnectionResetError, BrokenPipeError):  # the client gave up (a timeout): expected
                    pass

            def do_GET(self) -> None:
                self._answer(body=True)

            def do_HEAD(self) -> None:
                self._answer(body=False)

            def _answer(self, body: bool) -> None:
                parts = urlsplit(self.path)
                with server._lock:
                    server.hits[self.path] += 1
                    server.requests.append((self.command, self.path, dict(self.headers)))
                try:
                    reply = server.route(parts.path, parts.query, dict(self.headers))
                    time.sleep(reply.sleep)
                    if reply.drip_head:
                        self._drip(self._head(reply), reply.drip_head)
                        self._drip(reply.body if body else b"", reply.drip)
                        self.close_connection = True
                        return
                    self.send_response(reply.status)
                    for name, value in reply.headers.items():
                        self.send_header(name, value)
                    if reply.chunked:
                        self.send_header("Transfer-Encoding", "chunked")
                        self.end_headers()
                        for start in range(0, len(reply.body) if body else 0, 65536):
                            piece = reply.body[start : start + 65536]
                            self.wfile.write(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
                        self.wfile.write(b"0\r\n\r\n")
                    else:
                        self.send_header("Content-Length", str(len(reply.body) if reply.length is None else reply.length))
                        self.end_headers()
                        self._drip(reply.body if body else b"", reply.drip)
                    if reply.length is not None and reply.length != len(reply.body):
                        self.close_connection = True  # the rest never comes
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def _head(self, reply: Reply) -> bytes:
                lines = [f"HTTP/1.1 {reply.status} Status", *(f"{k}: {v}" for k, v in reply.headers.items()),
                         f"Content-Length: {len(reply.body) if reply.length is None else reply.length}", "", ""]
                return "\r\n".join(lines).encode()

            def _drip(self, data: bytes, pause: float) -> None:
                if not pause:
                    self.wfile.write(data)
                    return
                for index in range(len(data)):
                    self.wfile.write(data[index : index + 1])
                    time.sleep(pause)

        return Handler


# --- cited pages -------------------------------------------------------------------------------
@functools.cache
def cited_pages(dump: Path, count: int) -> list[tuple[str, str, str]]:
    """``(cited URL, article title, article text)`` for the first cited http(s) URL of ``count``
    articles of a dump: one page per article, so no two pages share their paragraphs."""
    chunks = iter([bz2.decompress(dump.read_bytes())])
    pages = mediawiki.scan_pages(chunks)
    next(pages)
    found = []
    for offset, data in pages:
        page = mediawiki.parse_page(offset, data)
        if page.namespace != 0 or page.redirect or not page.text:
            continue
        urls = [url for url in cited_urls(page.text) if url.startswith(("http://", "https://"))]
        text = mwparserfromhell.parse(page.text).strip_code().strip()
        if urls and len(text) > 3000:
            found.append((urls[0], page.title, text))
            if len(found) == count:
                break
    return found


def page_html(title: str, text: str) -> bytes:
    paragraphs = "".join(f"<p>{html.escape(p.strip())}</p>\n" for p in text.split("\n") if p.strip())
    return (f"<!DOCTYPE html>\n<html><head><title>{html.escape(title)}</title></head>\n"
            f"<body><h1>{html.escape(title)}</h1>\n{paragraphs}</body></html>\n").encode()


def loopback_url(url: str, servers: list[Server]) -> tuple[Server, str]:
    """The cited URL moved onto one of the loopback hosts (chosen by its original host)."""
    parts = urlsplit(url)
    server = servers[zlib.crc32(parts.netloc.encode()) % len(servers)]
    path = f"/{parts.netloc}{parts.path or '/'}"
    return server, server.base + path + (f"?{parts.query}" if parts.query else "")


class Site:
    """The cited pages of the English excerpt on three loopback hosts, plus hostile paths on the third."""

    def __init__(self, dump: Path):
        self.routes: list[dict[str, Reply]] = [{} for _ in HOSTS]
        self.flaky_served = False
        self.servers = [Server(host, self._route(n)) for n, host in enumerate(HOSTS)]
        self.cited = cited_pages(dump, PAGES)
        self.pages: dict[str, str] = {}  # loopback URL -> cited URL
        for url, title, text in self.cited:
            server, local = loopback_url(url, self.servers)
            self.routes[self.servers.index(server)][local[len(server.base):]] = Reply(body=page_html(title, text))
            self.pages[local] = url
        odd = self.servers[2]
        self.odd = odd
        article = page_html(*self.cited[0][1:])
        self.routes[2].update({
            "/robots.txt": Reply(body=b"User-agent: *\nDisallow: /private/\n", headers={"Content-Type": "text/plain"}),
            "/moved": Reply(301, b"", {"Location": "/moved-here", "Content-Type": "text/html"}),
            "/moved-here": Reply(body=article.replace(b"<h1>", b"<h1>Moved: ")),
            "/missing": Reply(404, b"<html>not here</html>"),
            "/slow": Reply(body=article, sleep=4.0),
            "/huge": Reply(body=b"<html><body>" + b"x" * (3 << 20), chunked=True),
            "/paper.pdf": Reply(body=b"%PDF-1.4 ...", headers={"Content-Type": "application/pdf"}),
            "/private/page": Reply(body=article),
            "/untyped": Reply(body=article.replace(b"<h1>", b"<h1>Untyped: "), headers={}),
        })
        self.special = [f"{odd.base}{path}" for path in ("/moved", "/missing", "/slow", "/huge", "/paper.pdf",
                                                         "/private/page", "/untyped", "/flaky")]

    def _route(self, index: int):
        def route(path: str, query: str, headers: dict) -> Reply:
            if index == 2 and path == "/flaky":
                if not self.flaky_served:
                    self.flaky_served = True
                    return Reply(503, b"busy", {"Content-Type": "text/plain", "Retry-After": "0"})
                return Reply(body=page_html("Flaky", self.cited[1][2]))
            return self.routes[index].get(path + (f"?{query}" if query else "")) or Reply(404, b"<html>no</html>")
        return route

    def url_list(self, folder: Path) -> Path:
        urls = [*self.pages, *self.special, "ftp://ftp.example.org/file.txt", next(iter(self.pages))]
        path = folder / "urls.txt"
        path.write_text("# cited pages, moved onto loopback hosts\n" + "\n".join(urls) + "\n")
        return path

    def close(self) -> None:
        for server in self.servers:
            server.close()



# --- a fake CommonCrawl: CDX API and data server -------------------------------------------------
@dataclass
class Capture:
    url: str
    status: str
    mime: str
    offset: int
    length: int
    filename: str
    redirect: str = ""


def index_warc(path: Path, filename: str) -> list[Capture]:
    """CDX entries of a WARC's response records, as CommonCrawl's index has them."""
    captures = []
    with path.open("rb") as handle:
        records = ArchiveIterator(handle)
        for record in records:
            if record.rec_type != "response":
                continue
            url = record.rec_headers.get_header("WARC-Target-URI")
            status = record.http_headers.get_statuscode()
            mime = (record.http_headers.get_header("Content-Type") or "").split(";")[0].strip()
            record.content_stream().read()
            captures.append(Capture(url, status, mime, records.get_record_offset(), records.get_record_length(), filename))
    return captures


def cdx_route(crawl: str, captures: list[Capture], unavailable_once: set[str]) -> Callable[[str, str, dict], Reply]:
    by_url: dict[str, list[Capture]] = {}
    for capture in captures:
        by_url.setdefault(capture.url, []).append(capture)
    failed: set[str] = set()

    def route(path: str, query: str, headers: dict) -> Reply:
        if path != f"/{crawl}-index":
            return Reply(404, b"no such index")
        url = parse_qs(query).get("url", [""])[0]
        if url in unavailable_once and url not in failed:
            failed.add(url)
            return Reply(503, b"Slow down", {"Content-Type": "text/plain", "Retry-After": "0"})
        found = by_url.get(url)
        if not found:
            return Reply(404, b'{"message": "No Captures found for: ' + url.encode() + b'"}',
                         {"Content-Type": "application/json"})
        lines = []
        for c in found:
            entry = {"urlkey": "", "timestamp": "20200808170000", "url": c.url, "mime": c.mime, "mime-detected": c.mime,
                     "status": c.status, "digest": "", "length": str(c.length), "offset": str(c.offset),
                     "filename": c.filename}
            if c.redirect:
                entry["redirect"] = c.redirect
            lines.append(json.dumps(entry))
        return Reply(200, ("\n".join(lines) + "\n").encode(), {"Content-Type": "text/x-ndjson"})

    return route


def data_route(files: dict[str, Path]) -> Callable[[str, str, dict], Reply]:
    def route(path: str, query: str, headers: dict) -> Reply:
        source = files.get(path.lstrip("/"))
        if source is None:
            return Reply(404, b"NoSuchKey", {"Content-Type": "text/plain"})
        spec = headers.get("Range", "")
        if not spec.startswith("bytes="):
            return Reply(200, source.read_bytes(), {"Content-Type": "application/octet-stream"})
        start, end = (int(x) for x in spec[6:].split("-"))
        with source.open("rb") as handle:
            handle.seek(start)
            body = handle.read(end - start + 1)
        return Reply(206, body, {"Content-Type": "application/octet-stream",
                                 "Content-Range": f"bytes {start}-{end}/{source.stat().st_size}"})

    return route
