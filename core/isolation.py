"""The per-document budget: steps that can run away on one record run in a child process that
the record cannot take past its time or memory budget.

A step class says it may run away with ``unbounded_cost = True`` (a parser that is quadratic on
some inputs). :class:`IsolatedSteps` starts one child interpreter for such steps (``python -m
redpajama.core.isolation``: a fresh process, never a fork of a threaded one), which sets them up
once and applies them record by record. Each record may use ``Budget.seconds`` of the child's CPU
time (``RLIMIT_CPU``: a loaded machine does not change which records fail; a wall-clock cap of
several times that backs it up) and ``Budget.memory_mb`` of address space above what the child
held after set-up (``RLIMIT_AS``). A record that exceeds either, or that kills the child, raises
:class:`BudgetExceeded`; a new child serves the next record. The child is stopped from outside,
so slow code inside C extensions (mwparserfromhell's tokenizer, ``re``) ends as surely as Python
code, which neither a signal handler nor an exception raised in a thread could do. Steps that
are not marked never pay for the round trip.
"""

from __future__ import annotations

import math
import os
import pickle
import select
import signal
import struct
import subprocess
import sys
import threading
import time
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from redpajama.core.records import Record, Step, StepResult

WALL_FACTOR = 3.0  # wall-clock cap of one record: this many times its CPU budget, plus WALL_GRACE
WALL_GRACE = 10.0
STOP_SECONDS = 5.0
LONGEST_WAIT = 86400.0  # one select() at most; longer deadlines wait in steps
_FRAME = struct.Struct(">Q")
_PICKLE = pickle.HIGHEST_PROTOCOL


@dataclass(frozen=True)
class Budget:
    """What one record may cost a step marked ``unbounded_cost``: ``seconds`` of CPU time (0
    turns the budget off: such steps then run in-process, unbounded) and ``memory_mb`` of memory."""

    seconds: float = 120.0
    memory_mb: int = 1024

    def __post_init__(self):
        if not (math.isfinite(self.seconds) and self.seconds >= 0):
            raise ValueError(f"a document's time budget must be 0 (off) or more seconds, not {self.seconds}")
        if not self.memory_mb > 0:
            raise ValueError(f"a document's memory budget must be a positive number of MB, not {self.memory_mb}")

    @property
    def enabled(self) -> bool:
        return self.seconds > 0

    @property
    def wall_seconds(self) -> float:
        return self.seconds * WALL_FACTOR + WALL_GRACE

    def as_json(self) -> dict[str, Any]:
        return {"seconds": self.seconds, "memory_mb": self.memory_mb}


def budgeted_steps(steps: Sequence[Step], budget: Budget) -> list[int]:
    """Indexes of the steps that run under ``budget`` (none when it is off)."""
    if not budget.enabled:
        return []
    return [index for index, step in enumerate(steps) if getattr(step, "unbounded_cost", False)]


class BudgetExceeded(Exception):
    """One record took a step past its budget; ``outcome`` says how (``timeout``,
    ``out_of_memory``, ``crashed``): the record fails as ``<step>_<outcome>``."""

    def __init__(self, outcome: str, detail: str):
        super().__init__(detail)
        self.outcome = outcome


class StepSetupError(RuntimeError):
    """The child could not set the steps up (a missing model, say): an error of the run, not of a record."""


class IsolatedSteps:
    """Applies ``steps`` in a child process under ``budget``; one record at a time (thread-safe)."""

    def __init__(self, steps: Sequence[Step], budget: Budget):
        self.steps = list(steps)
        self.budget = budget
        self._setup = pickle.dumps((self.steps, budget.seconds, budget.memory_mb), _PICKLE)
        self._child: _Child | None = None
        self._lock = threading.Lock()

    def apply(self, index: int, record: Record) -> StepResult:
        """``steps[index].apply(record)`` in the child: what it returned or raised, or
        :class:`BudgetExceeded` when the record took it past its budget."""
        request = pickle.dumps((index, record), _PICKLE)
        with self._lock:
            if self._child is None or not self._child.alive():
                self._child = _Child(self._setup)
            child = self._child
            try:
                status, value = child.call(request, self.budget.wall_seconds)
            except _ChildLost as lost:
                self._child = None
                raise self._exceeded(lost) from None
            if status == "memory":
                self._child = None
                child.stop(grace=STOP_SECONDS)
                raise BudgetExceeded("out_of_memory", f"over the memory budget of {self.budget.memory_mb} MB: {value}")
        if status == "error":
            raise value
        return value

    @property
    def child_pid(self) -> int | None:
        """The process id of the current child (None before the first record or after a failure)."""
        return self._child.process.pid if self._child is not None else None

    def _exceeded(self, lost: _ChildLost) -> BudgetExceeded:
        code, waited = lost.returncode, lost.waited
        if waited or code == -signal.SIGXCPU:
            return BudgetExceeded(
                "timeout", f"over the time budget of {self.budget.seconds:g} s"
                + (f" (no answer after {waited:g} s)" if waited else " of CPU"))
        if code is not None and code < 0:
            return BudgetExceeded("crashed", f"the step's process died of {signal.Signals(-code).name}")
        return BudgetExceeded("crashed", f"the step's process ended with code {code}")

    def close(self) -> None:
        with self._lock:
            if self._child is not None:
                self._child.stop()
                self._child = None


class _ChildLost(Exception):
    def __init__(self, returncode: int | None, waited: float = 0.0):
        super().__init__(returncode)
        self.returncode = returncode
        self.waited = waited


class _Child:
    """One child interpreter and the two pipes to it; set up when made."""

    def __init__(self, setup: bytes):
        to_child, self._requests = os.pipe()
        self._replies, from_child = os.pipe()
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(path for path in sys.path if path))
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-m", __name__, str(to_child), str(from_child)],
                stdin=subprocess.DEVNULL, pass_fds=(to_child, from_child), env=env,
            )
        finally:
            os.close(to_child)
            os.close(from_child)
        os.set_blocking(self._requests, False)
        os.set_blocking(self._replies, False)
        self._finalizer = weakref.finalize(self, _stop, self.process, self._requests, self._replies)
        try:
            status, detail = self.call(setup, None)
        except _ChildLost as lost:
            self.stop()
            raise StepSetupError(f"the budgeted steps' process ended while setting up (code {lost.returncode})") from None
        if status != "ready":
            self.stop()
            raise StepSetupError(f"setting up the budgeted steps failed: {detail}")

    def alive(self) -> bool:
        return self.process.poll() is None

    def call(self, payload: bytes, wall_seconds: float | None) -> tuple[str, Any]:
        """Send one frame, return the reply; :class:`_ChildLost` if the child died or (after
        ``wall_seconds``) was killed."""
        deadline = None if wall_seconds is None else time.monotonic() + wall_seconds
        try:
            self._send(_FRAME.pack(len(payload)) + payload, deadline)
            size = _FRAME.unpack(self._receive(_FRAME.size, deadline))[0]
            return pickle.loads(self._receive(size, deadline))
        except (BrokenPipeError, EOFError):
            self.stop(grace=STOP_SECONDS)  # it is ending: let it say how
            raise _ChildLost(self.process.returncode) from None
        except TimeoutError:
            self.stop(grace=0.0)
            raise _ChildLost(self.process.returncode, wall_seconds or 0.0) from None

    def _send(self, data: bytes, deadline: float | None) -> None:
        view = memoryview(data)
        while view:
            _wait(self._requests, "w", deadline)
            try:
                view = view[os.write(self._requests, view):]
            except BlockingIOError:
                continue

    def _receive(self, size: int, deadline: float | None) -> bytes:
        data = bytearray()
        while len(data) < size:
            _wait(self._replies, "r", deadline)
            try:
                piece = os.read(self._replies, min(size - len(data), 1 << 20))
            except BlockingIOError:
                continue
            if not piece:
                raise EOFError
            data += piece
        return bytes(data)

    def stop(self, grace: float = 1.0) -> None:
        """End the child: it leaves by itself once idle and its requests pipe is closed; killed
        after ``grace`` seconds."""
        if self._finalizer.detach() is not None:
            _stop(self.process, self._requests, self._replies, grace=grace)


def _wait(fd: int, mode: str, deadline: float | None) -> None:
    """Until ``fd`` is ready, or :class:`TimeoutError` at ``deadline`` (however far: a budget of
    years waits in steps that ``select`` takes)."""
    while True:
        timeout = None if deadline is None else deadline - time.monotonic()
        if timeout is not None and timeout <= 0:
            raise TimeoutError
        step = None if timeout is None else min(timeout, LONGEST_WAIT)
        ready = select.select([fd], [], [], step) if mode == "r" else select.select([], [fd], [], step)
        if any(ready):
            return


def _stop(process: subprocess.Popen, requests: int, replies: int, grace: float = 1.0) -> None:
    os.close(requests)
    os.close(replies)
    try:
        process.wait(grace)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


# --- the child ------------------------------------------------------------------------------------
def _read_exact(fd: int, size: int) -> bytes:
    data = bytearray()
    while len(data) < size:
        piece = os.read(fd, min(size - len(data), 1 << 20))
        if not piece:
            raise EOFError
        data += piece
    return bytes(data)


def _write_reply(fd: int, reply: tuple[str, Any] | bytes) -> None:
    payload = reply if isinstance(reply, bytes) else pickle.dumps(reply, _PICKLE)
    data = memoryview(_FRAME.pack(len(payload)) + payload)
    while data:
        data = data[os.write(fd, data):]


def _address_space() -> int | None:
    """Bytes of address space this process holds now (Linux), else None."""
    try:
        with open("/proc/self/statm") as handle:
            return int(handle.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError):
        return None


def _limit(kind: int, soft: int) -> None:
    """Set a soft limit; one beyond what the system can hold (a budget of years) is no limit."""
    import resource

    hard = resource.getrlimit(kind)[1]
    if soft >= RLIM_MAX:
        soft = hard  # as far as the hard limit allows (RLIM_INFINITY: none)
    elif hard != resource.RLIM_INFINITY:
        soft = min(soft, hard)
    resource.setrlimit(kind, (soft, hard))


RLIM_MAX = (1 << 63) - 1  # rlim_t as Python passes it


def _cpu_seconds() -> float:
    import resource

    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _portable_error(error: BaseException) -> BaseException:
    """``error`` if it survives pickling, else a RuntimeError that says what it was."""
    try:
        pickle.loads(pickle.dumps(error, _PICKLE))
        return error
    except Exception:  # noqa: BLE001 - any exception type can fail to pickle
        return RuntimeError(f"{type(error).__name__}: {error}")


def _serve(requests: int, replies: int) -> None:
    """Set the steps up, then apply them to one record after another until the parent goes."""
    import resource

    signal.signal(signal.SIGXCPU, signal.SIG_DFL)  # the CPU budget ends the process
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # and leaves no core file
    try:
        steps, seconds, memory_mb = pickle.loads(_read_exact(requests, _FRAME.unpack(_read_exact(requests, 8))[0]))
        for step in steps:
            step.setup()
    except EOFError:
        return
    except Exception as error:  # noqa: BLE001 - reported to the parent, which fails the run
        _write_reply(replies, ("setup_failed", f"{type(error).__name__}: {error}"))
        return
    baseline = _address_space()
    if baseline is not None:
        _limit(resource.RLIMIT_AS, baseline + (memory_mb << 20))
    _write_reply(replies, ("ready", None))
    while True:
        try:
            header = _read_exact(requests, _FRAME.size)
        except EOFError:
            return  # the parent closed the pipe or died
        _limit(resource.RLIMIT_CPU, math.ceil(_cpu_seconds() + seconds))
        try:
            index, record = pickle.loads(_read_exact(requests, _FRAME.unpack(header)[0]))
            reply: tuple[str, Any] | bytes = pickle.dumps(("ok", steps[index].apply(record)), _PICKLE)
        except MemoryError as error:
            record = reply = None
            _reply_or_leave(replies, ("memory", f"{type(error).__name__}: {error}"))
            return  # its heap may be in pieces: the parent starts another child
        except Exception as error:  # noqa: BLE001 - the step's own error, raised again in the parent
            reply = ("error", _portable_error(error))
        record = None
        if not _reply_or_leave(replies, reply):
            return


def _reply_or_leave(replies: int, reply: tuple[str, Any] | bytes) -> bool:
    """Send a reply; False when the parent is gone (it died while the record was worked on)."""
    try:
        _write_reply(replies, reply)
    except (BrokenPipeError, ConnectionResetError):
        return False
    return True


if __name__ == "__main__":
    _serve(int(sys.argv[1]), int(sys.argv[2]))
