"""What a run says while it works: progress lines for long units and long phases, batches sized
so that those lines count documents one by one, and a quiet terminal (worker processes inherit
our stderr and log Beam's start-up chatter there; only lines at ERROR and above, and our own,
get through).

Every line goes out in one write: several worker processes share the terminal, and a line
written in pieces (text, then its newline, as ``print`` does on an unbuffered stream) can run
into another worker's line.
"""

from __future__ import annotations

import contextlib
import os
import re
import select
import sys
import threading
import time
from collections.abc import Callable

_CHATTER = re.compile(rb"^(?:DEBUG|INFO|WARNING):")


@contextlib.contextmanager
def quiet_worker_logs(enabled: bool = True):
    """Filter file descriptor 2 (shared with child processes) while the block runs."""
    if not enabled:
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    read_end, write_end = os.pipe()
    os.dup2(write_end, 2)
    os.close(write_end)

    def forward() -> None:
        with os.fdopen(read_end, "rb") as lines:
            for line in lines:
                if not _CHATTER.match(line):
                    os.write(saved, line)

    thread = threading.Thread(target=forward, name="stderr-filter", daemon=True)
    thread.start()
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)  # closes the pipe's last write end held by this process
        thread.join(timeout=5)
        os.close(saved)


def emit(line: str) -> None:
    """Write one line to stderr in a single write (at most ``PIPE_BUF`` bytes, which a pipe never
    interleaves with another process's write)."""
    data = line.rstrip("\n").encode("utf-8", "replace")[: select.PIPE_BUF - 1] + b"\n"
    stream = sys.stderr
    try:
        descriptor = stream.fileno()
    except (AttributeError, OSError, ValueError):  # a replaced stderr (captured, embedded): one write to it
        stream.write(data.decode("utf-8", "replace"))
        stream.flush()
        return
    stream.flush()
    os.write(descriptor, data)


class BatchSizer:
    """How many records a reader hands on at once: as many as the steps behind it get through in
    about ``target`` seconds (between 1 and ``largest``). A slow recipe (Wikipedia's wikitext
    cleaning, ~100 pages/s) then moves tens of records at a time and progress counts nearly
    document by document; a fast one keeps the largest batches, where Beam's cost per element
    matters. Starts small and at most doubles from one batch to the next."""

    def __init__(self, largest: int, target: float = 0.5, first: int = 16):
        self.largest = largest
        self.target = target
        self.limit = min(first, largest)

    def handed_on(self, records: int, seconds: float) -> None:
        """The steps took ``seconds`` over a batch of ``records``: size the next one."""
        wanted = self.largest if seconds <= 0 else records * self.target / seconds
        self.limit = max(1, min(self.largest, round(wanted), 2 * self.limit))


class UnitProgress:
    """While one unit is read, a line every ``interval`` seconds: documents, MB read (of the
    total, where known), rate and time left from the bytes read. Quiet for units that finish
    sooner. The reader can be up to one read chunk ahead of the documents it has handed on, so
    the time left counts that chunk as not done (no estimate before more than a chunk is read),
    and once every byte is read the line says it is finishing its documents."""

    def __init__(self, label: str, total_bytes: int | None, interval: float = 10.0):
        from redpajama.core.storage import BYTES_READ

        self.label = label
        self.total = total_bytes
        self.interval = interval
        self.documents = 0
        self._counts = BYTES_READ
        self._reader = threading.get_ident()
        self._baseline = BYTES_READ.get(self._reader, 0)
        self._started = time.monotonic()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._tick, name="unit-progress", daemon=True)

    def __enter__(self) -> UnitProgress:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()

    def line(self) -> str:
        elapsed = max(time.monotonic() - self._started, 1e-9)
        read = self._counts.get(self._reader, 0) - self._baseline
        rate = read / elapsed
        done = f"{read / 1e6:,.1f}" + (f" of {self.total / 1e6:,.1f}" if self.total else "")
        left = ""
        if self.total:
            from redpajama.core.storage import READ_CHUNK

            handed = read - READ_CHUNK  # the reader can be a chunk ahead of the documents it handed on
            if read >= self.total:
                left = ", all of it read, finishing its documents"
            elif handed > 0:
                left = f", about {_duration((self.total - handed) * elapsed / handed)} left"
        return (f"  {self.label}: {self.documents:,} documents, {done} MB read, {rate / 1e6:,.1f} MB/s, "
                f"{_duration(elapsed)} so far{left}")

    def _tick(self) -> None:
        while not self._stop.wait(self.interval):
            emit(self.line())


class Phase:
    """A long phase of a command (training a model, building a program): a line when it starts,
    one every ``interval`` seconds while it runs (what it last reported, and the time so far),
    and one when it ends."""

    def __init__(self, label: str, say: Callable[[str], None] = emit, interval: float = 10.0):
        self.label = label
        self.say = say
        self.interval = interval
        self.detail = ""
        self._started = time.monotonic()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._tick, name="phase-progress", daemon=True)

    def __enter__(self) -> Phase:
        self.say(f"{self.label} ...")
        self._started = time.monotonic()
        self._thread.start()
        return self

    def update(self, detail: str) -> None:
        """What the phase is at (``45% compiled``, ``12,000 articles``), shown in the next line."""
        self.detail = detail

    def __exit__(self, kind, error, traceback) -> None:
        self._stop.set()
        self._thread.join(timeout=self.interval + 1)
        if kind is None:
            self.say(f"{self.label}: done in {_duration(time.monotonic() - self._started)}"
                     + (f" ({self.detail})" if self.detail else ""))

    def line(self) -> str:
        so_far = f"{_duration(time.monotonic() - self._started)} so far"
        return f"{self.label}: {self.detail + ', ' if self.detail else ''}{so_far}"

    def _tick(self) -> None:
        while not self._stop.wait(self.interval):
            self.say(self.line())


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
