"""Keep the terminal readable during local runs: worker processes inherit our stderr and
log Beam's start-up chatter there; this lets through everything except log lines below ERROR."""

from __future__ import annotations

import contextlib
import os
import re
import sys
import threading

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
