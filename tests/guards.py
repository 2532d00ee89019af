"""Bounds on how long a test waits, so that a hang fails the test instead of the suite: not
measurements (the bounds are generous)."""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any


def bounded(work: Callable[[], Any], seconds: float = 120) -> Any:
    """``work()`` in a thread; fails the test if it has not returned within ``seconds``."""
    outcome: dict = {}

    def target():
        try:
            outcome["value"] = work()
        except BaseException as error:  # noqa: BLE001 - handed to the test
            outcome["error"] = error

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"still running after {seconds} s"
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


@contextmanager
def alarm(seconds: int) -> Iterator[None]:
    """Raise ``TimeoutError`` in the block if it has not ended within ``seconds`` (main thread only:
    for what must run there, such as a pipeline run, which handles signals)."""

    def expired(signum, frame):
        raise TimeoutError(f"still running after {seconds} s")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
