"""What a run says while it works: progress lines for long units, and a quiet terminal (worker
processes inherit our stderr and log Beam's start-up chatter there; only lines at ERROR and
above, and our own, get through)."""

from __future__ import annotations

import contextlib
import os
import re
import sys
import threading
import time

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


class UnitProgress:
    """While one unit is read, a line every ``interval`` seconds: documents, MB read (of the
    total, where known), rate and time left. Quiet for units that finish sooner."""

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
        if self.total and rate > 0 and read < self.total:
            left = f", about {_duration((self.total - read) / rate)} left"
        return (f"  {self.label}: {self.documents:,} documents, {done} MB read, {rate / 1e6:,.1f} MB/s, "
                f"{_duration(elapsed)} so far{left}")

    def _tick(self) -> None:
        while not self._stop.wait(self.interval):
            print(self.line(), file=sys.stderr, flush=True)


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
