"""``redpajama fetch-pages``: cited pages into WARC files, politely, resumably, every URL accounted.

The output folder holds ``pages-RRRRR-PPP.warc.gz`` (run R, part P; a new run never appends
to an older file), ``fetched.tsv`` (one line per URL that got an outcome: URL, outcome, HTTP
status, final URL, WARC file, offset, length) and ``stats.json``. A URL with an outcome is not
fetched again; transient failures (timeouts, resets, 429 and 5xx after their retries) are
tried again by the next run. One run at a time per folder (``_LOCK``).
"""

from __future__ import annotations

import hashlib
import json
import queue
import signal
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from redpajama.core import storage, streams
from redpajama.core.errors import UsageError
from redpajama.pipelines.fetch.crawl import CDX_SERVER, DATA_SERVER, CrawlFetcher
from redpajama.pipelines.fetch.live import MAX_REDIRECTS, HttpSettings, LiveFetcher, Outcome
from redpajama.pipelines.fetch.politeness import HostScheduler, Task
from redpajama.pipelines.runs.engine import Interrupted
from redpajama.pipelines.runs.lock import OutputLock

JOURNAL = "fetched.tsv"
JOURNAL_FIELDS = ("url", "outcome", "status", "final_url", "warc", "offset", "length")
USER_AGENT = "redpajama-fetch/0.1 (RedPajama-Data-1T reproduction; Wikipedia-reference classifier pages)"
PROGRESS_SECONDS = 10.0


@dataclass
class FetchSettings:
    inputs: list[str]
    output: Path
    from_crawl: str | None = None
    cdx_server: str = CDX_SERVER
    data_server: str = DATA_SERVER
    workers: int = 16
    per_host: int = 1
    delay: float = 1.0
    timeout: float = 5.0  # RedPajama: wget --timeout=5
    retries: int = 2
    backoff: float = 2.0
    max_bytes: int = 5 << 20
    max_seconds: float = 60.0
    max_pages: int | None = None  # RedPajama stopped at 300K pages
    language: str | None = None
    user_agent: str = USER_AGENT
    warc_bytes: int = 1 << 30
    window: int = 100_000  # URLs read ahead of the workers
    quiet: bool = False
    notes: list[str] = field(default_factory=list)


def read_journal(path: Path) -> dict[str, tuple[str, ...]]:
    """Each URL's last recorded outcome (a line cut short by a crash is ignored)."""
    outcomes: dict[str, tuple[str, ...]] = {}
    if not path.exists():
        return outcomes
    with path.open(encoding="utf-8", errors="replace") as handle:
        for line in handle:
            if not line.endswith("\n"):
                break
            fields = tuple(line.rstrip("\n").split("\t"))
            if len(fields) == len(JOURNAL_FIELDS):
                outcomes[fields[0]] = fields
    return outcomes


def is_transient(reason: str) -> bool:
    return reason in ("timeout", "connection_error", "cdx_unavailable", "crawl_data_unavailable") or (
        reason.startswith("http_") and reason[5:] in ("429", "500", "502", "503", "504"))


def url_lines(paths: list[str], invalid: Counter) -> Iterator[str]:
    """URLs of the lists, one per line (the first field; blank and ``#`` lines skipped)."""
    for path in paths:
        with storage.open_range(path) as stream:
            for _, raw in streams.iter_lines(streams.decompressed_chunks(stream, path), max_line=1 << 16):
                try:
                    line = raw.decode("utf-8").strip()
                except UnicodeDecodeError:
                    invalid["invalid_line"] += 1
                    continue
                if line and not line.startswith("#"):
                    yield line.split()[0]


class WarcSink:
    """Appends gzip members to ``pages-RRRRR-PPP.warc.gz``, starting a new part past ``limit`` bytes."""

    def __init__(self, folder: Path, limit: int):
        self.folder = folder
        self.limit = limit
        runs = [int(p.name.split("-")[1]) for p in folder.glob("pages-*-*.warc.gz") if p.name.split("-")[1].isdigit()]
        self.run = max(runs, default=-1) + 1
        self.part = -1
        self.handle = None
        self.written: list[str] = []
        self.bytes = 0

    def append(self, members: bytes) -> tuple[str, int]:
        if self.handle is None or self.handle.tell() >= self.limit:
            self.close()
            self.part += 1
            name = f"pages-{self.run:05d}-{self.part:03d}.warc.gz"
            self.handle = (self.folder / name).open("xb")
            self.written.append(name)
        offset = self.handle.tell()
        self.handle.write(members)
        self.handle.flush()
        self.bytes += len(members)
        return self.written[-1], offset

    def close(self) -> None:
        if self.handle is not None:
            self.handle.close()
            self.handle = None


class _Run:
    """One fetch run: a reader thread feeds the scheduler, workers fetch, this thread writes."""

    def __init__(self, settings: FetchSettings):
        self.settings = settings
        http = HttpSettings(settings.user_agent, settings.timeout, settings.max_bytes, settings.max_seconds, settings.language)
        self.scheduler = HostScheduler(settings.per_host, settings.delay)
        if settings.from_crawl:
            self.fetcher = CrawlFetcher(settings.from_crawl, http, settings.cdx_server, settings.data_server)
        else:
            self.fetcher = LiveFetcher(http, self.scheduler.slow_down)
        self.results: queue.Queue[Outcome] = queue.Queue()
        self.listed = Counter()  # listed, duplicate, done_before, invalid_line
        self.stop = threading.Event()
        self.reader_error: BaseException | None = None

    # --- the reader -------------------------------------------------------------------------
    def read(self, previous: dict[str, tuple[str, ...]]) -> None:
        seen: set[bytes] = set()
        try:
            for url in url_lines(self.settings.inputs, self.listed):
                if self.stop.is_set():
                    break
                self.listed["listed"] += 1
                digest = hashlib.blake2b(url.encode("utf-8", "surrogatepass"), digest_size=8).digest()
                if digest in seen:
                    self.listed["duplicate"] += 1
                    continue
                seen.add(digest)
                earlier = previous.get(url)
                if earlier is not None and not is_transient(earlier[1]):
                    self.listed["done_before"] += 1
                    continue
                if urlsplit(url).scheme.lower() not in ("http", "https"):
                    self.results.put(Outcome(url, "unsupported_scheme"))
                    continue
                if not self.scheduler.wait_below(self.settings.window):
                    break
                self.scheduler.add(Task(url, self.fetcher.host_of(url)))
        except BaseException as error:  # noqa: BLE001 - reported by the writer thread
            self.reader_error = error
        finally:
            self.scheduler.input_done()

    # --- the workers ------------------------------------------------------------------------
    def work(self) -> None:
        while (task := self.scheduler.take()) is not None:
            try:
                outcome = self.fetcher(task.target or task.url)
            except Exception as error:  # noqa: BLE001 - a bug in one fetch must not stop the run
                outcome = Outcome(task.url, "fetch_error", final_url=f"{type(error).__name__}: {error}"[:200])
            outcome.url = task.url
            if task.target:
                outcome.status = task.status if outcome.status is None else outcome.status
                outcome.final_url = outcome.final_url or task.target
            if outcome.retry_after is not None and task.attempt < self.settings.retries:
                self.scheduler.retry(task, max(outcome.retry_after, self.settings.backoff * 2 ** task.attempt))
                continue
            if outcome.redirect:
                outcome = self.follow(task, outcome)
            self.scheduler.done(task)
            if outcome is not None:
                self.results.put(outcome)

    def follow(self, task: Task, redirect: Outcome) -> Outcome | None:
        """Queue a redirect's next hop under its own host (robots.txt and politeness are that
        host's); None when queued, else the outcome that ends the URL."""
        if urlsplit(redirect.redirect).scheme.lower() not in ("http", "https"):
            return Outcome(task.url, "invalid_url", redirect.status, redirect.redirect)
        if task.hops >= MAX_REDIRECTS:
            return Outcome(task.url, "too_many_redirects", redirect.status, redirect.redirect)
        self.scheduler.add(Task(task.url, self.fetcher.host_of(redirect.redirect), target=redirect.redirect,
                                hops=task.hops + 1, status=redirect.status))
        return None


def run_fetch(settings: FetchSettings) -> dict:
    """Fetch every listed URL not fetched before; returns (and writes) ``stats.json``."""
    if not settings.inputs:
        raise UsageError("fetch-pages: no URL lists given (--input)")
    for path in settings.inputs:
        if not storage.exists(path):
            raise UsageError(f"--input {path}: no such file")
    settings.output.mkdir(parents=True, exist_ok=True)
    with OutputLock(str(settings.output)):
        return _fetch_locked(settings)


def _fetch_locked(settings: FetchSettings) -> dict:
    started = time.monotonic()
    journal_path = settings.output / JOURNAL
    previous = read_journal(journal_path)
    fetched_before = sum(fields[1] == "fetched" for fields in previous.values())
    run = _Run(settings)
    sink = WarcSink(settings.output, settings.warc_bytes)
    outcomes: Counter = Counter()
    reader = threading.Thread(target=run.read, args=(previous,), daemon=True, name="fetch-reader")
    workers = [threading.Thread(target=run.work, daemon=True, name=f"fetch-{n}") for n in range(settings.workers)]
    interrupted: Interrupted | None = None
    last_progress = time.monotonic()
    with journal_path.open("a", encoding="utf-8") as journal:
        reader.start()
        for worker in workers:
            worker.start()
        try:
            while True:
                try:
                    outcome = run.results.get(timeout=0.2)
                except queue.Empty:
                    if not reader.is_alive() and not any(w.is_alive() for w in workers) and run.results.empty():
                        break
                    outcome = None
                if outcome is not None:
                    _record(outcome, sink, journal)
                    outcomes[outcome.reason] += 1
                    if settings.max_pages and fetched_before + outcomes["fetched"] >= settings.max_pages:
                        run.stop.set()  # in-flight fetches end and are written; queued URLs wait for a rerun
                        run.scheduler.close()
                if not settings.quiet and time.monotonic() - last_progress >= PROGRESS_SECONDS:
                    last_progress = time.monotonic()
                    _progress(outcomes, run.scheduler, last_progress - started)
        except (KeyboardInterrupt, Interrupted) as stop:  # what was written stays; the rest waits for a rerun
            interrupted = stop if isinstance(stop, Interrupted) else Interrupted(signal.SIGINT)
            run.stop.set()
            run.scheduler.close()
        finally:
            sink.close()
    if run.reader_error is not None and interrupted is None:
        raise run.reader_error
    stats = _stats(settings, run, outcomes, read_journal(journal_path), sink, time.monotonic() - started,
                   interrupted is not None)
    (settings.output / "stats.json").write_text(json.dumps(stats, indent=2) + "\n", encoding="utf-8")
    if interrupted is not None:
        raise interrupted
    return stats


def _record(outcome: Outcome, sink: WarcSink, journal) -> None:
    warc, offset, length = "", "", ""
    if outcome.fetched:
        warc, start = sink.append(outcome.records)
        offset, length = str(start), str(len(outcome.records))
    fields = (outcome.url, outcome.reason, "" if outcome.status is None else str(outcome.status),
              outcome.final_url, warc, offset, length)
    journal.write("\t".join(field.replace("\t", " ").replace("\n", " ") for field in fields) + "\n")
    journal.flush()


def _progress(outcomes: Counter, scheduler: HostScheduler, seconds: float) -> None:
    failed = sum(count for reason, count in outcomes.items() if reason != "fetched")
    print(f"  fetch-pages: {outcomes['fetched']:,} fetched, {failed:,} failed, {scheduler.queued:,} queued on "
          f"{scheduler.hosts:,} hosts, {sum(outcomes.values()) / max(seconds, 1e-9):.1f} URLs/s", file=sys.stderr, flush=True)


def _stats(settings: FetchSettings, run: _Run, outcomes: Counter, journal: dict, sink: WarcSink,
           seconds: float, interrupted: bool) -> dict:
    this_run = sum(outcomes.values())
    accounted = run.listed["duplicate"] + run.listed["done_before"] + this_run
    total = Counter(fields[1] for fields in journal.values())
    return {
        "source": settings.from_crawl or "live",
        "urls": {
            "listed": run.listed["listed"],
            "duplicate": run.listed["duplicate"],
            "invalid_line": run.listed["invalid_line"],
            "done_before": run.listed["done_before"],
            "not_attempted": run.listed["listed"] - accounted,
        },
        "this_run": {"fetched": outcomes["fetched"],
                     "failed": dict(sorted((r, n) for r, n in outcomes.items() if r != "fetched")),
                     "warc_files": sink.written, "warc_bytes": sink.bytes, "seconds": round(seconds, 1),
                     "interrupted": interrupted},
        "total": {"fetched": total["fetched"],
                  "failed": dict(sorted((r, n) for r, n in total.items() if r != "fetched"))},
        "settings": {key: value for key, value in asdict(settings).items()
                     if key not in ("inputs", "output", "quiet", "notes")} | {"inputs": settings.inputs},
    }
