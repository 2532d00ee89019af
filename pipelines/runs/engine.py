"""Runs in a supervised engine process, so that Ctrl-C and SIGTERM end a run cleanly.

An executor's work (a local Beam run, or a launch to Dataflow or a job service) runs in a forked child
that leads a session of its own: the terminal's Ctrl-C reaches only the launcher, which then
ends the child's whole process group (Beam's SDK worker processes included) at once, leaves
``_temporary/`` for the rerun and reports one line. Whatever the child is doing (staging
files inside Beam's retry loops, submitting a job, waiting for it), the launcher is only
reading a pipe, so a signal ends it at once. The child dies with the launcher
(``PR_SET_PDEATHSIG``) even when the launcher is killed outright, and its temporary files
(Beam's ``beam-pipeline-temp*``) live in a folder the launcher removes; folders left by a
launcher that was killed are removed by the next run. What the child learns on the way (a
submitted job's id) it leaves with :func:`note`, for the launcher's ``on_interrupt``.
"""

from __future__ import annotations

import ctypes
import json
import os
import pickle
import shutil
import signal
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

TEMP_PREFIX = "redpajama-run-"
GRACE_SECONDS = 3.0
PR_SET_PDEATHSIG = 1
NOTES = "notes.json"
NOTES_VARIABLE = "REDPAJAMA_ENGINE_NOTES"


class Interrupted(BaseException):
    """The launcher got SIGINT or SIGTERM; the run was ended and ``_temporary/`` kept.

    A ``BaseException``, like ``KeyboardInterrupt``: retry loops that catch ``Exception``
    (Beam's, around every cloud call) let it through instead of trying again.
    """

    def __init__(self, signum: int, detail: str = ""):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum
        self.detail = detail
        self.exit_code = 128 + signum

    def __str__(self) -> str:
        return signal.Signals(self.signum).name + (f"; {self.detail}" if self.detail else "")


class EngineFailed(RuntimeError):
    """The pipeline raised in the engine process; the message carries its error."""


def run_supervised(work: Callable[[], Any], close_in_child: tuple[int, ...] = (),
                   on_interrupt: Callable[[dict[str, Any]], str] | None = None) -> Any:
    """``work()`` in a forked engine process; its result (pickled) or its error, raised here.

    On SIGINT/SIGTERM the engine's process group is ended and :class:`Interrupted` raised;
    ``on_interrupt(notes)`` first gets what the engine left with :func:`note` and returns a
    few words for the user's line (say, that a submitted job was cancelled).
    """
    remove_stale_temp_folders()
    temp = tempfile.mkdtemp(prefix=f"{TEMP_PREFIX}{os.getpid()}-")
    read_end, write_end = os.pipe()
    launcher = os.getpid()
    pid = os.fork()
    if pid == 0:
        os.close(read_end)
        for fd in close_in_child:
            os.close(fd)
        _engine(work, write_end, temp, launcher)
    os.close(write_end)
    handlers = {sig: signal.signal(sig, _raise_interrupted) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        payload = _read_all(read_end)
        os.waitpid(pid, 0)
    except Interrupted as stop:
        end_group(pid)
        if on_interrupt:
            stop.detail = on_interrupt(_read_notes(temp))
        raise
    except BaseException:  # anything else that stops the launcher waiting
        end_group(pid)
        raise
    finally:
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
        os.close(read_end)
        shutil.rmtree(temp, ignore_errors=True)
    if not payload:
        raise EngineFailed("the engine process ended without a result (killed?)")
    status, value = pickle.loads(payload)
    if status != "ok":
        raise EngineFailed(value)
    return value


MALLOC_SETTINGS = {"MALLOC_ARENA_MAX": 2, "MALLOC_TRIM_THRESHOLD_": 128 << 10}
M_TRIM_THRESHOLD, M_ARENA_MAX = -1, -8  # glibc's mallopt parameters


def _tame_malloc() -> None:
    """Fewer glibc malloc arenas, and freed memory given back sooner, in the engine and (through
    the environment they start with) its SDK workers. Lines are allocated and freed by several
    threads, and with glibc's defaults the local run's peak memory grew with the input (C4 at 8x:
    1.70x of 1x; with these: 1.32x). A user's own MALLOC_* settings are kept."""
    for name, value in MALLOC_SETTINGS.items():
        os.environ.setdefault(name, str(value))
    try:
        libc = ctypes.CDLL(None)
        libc.mallopt(M_ARENA_MAX, int(os.environ["MALLOC_ARENA_MAX"]))
        libc.mallopt(M_TRIM_THRESHOLD, int(os.environ["MALLOC_TRIM_THRESHOLD_"]))
    except (OSError, AttributeError, ValueError):  # not glibc, or a setting that is not a number
        pass


def _engine(work: Callable[[], Any], write_end: int, temp: str, launcher: int) -> None:
    """The child: its own session, dies with the launcher, temp files in ``temp``; never returns."""
    os.setsid()
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, lambda *_: os.killpg(0, signal.SIGKILL))  # take the SDK workers along
    _die_with(launcher)
    _tame_malloc()
    os.environ["TMPDIR"] = tempfile.tempdir = temp
    os.environ[NOTES_VARIABLE] = os.path.join(temp, NOTES)
    try:
        payload = pickle.dumps(("ok", work()))
    except BaseException as error:  # reported to the launcher, which decides how to say it
        detail = f"{type(error).__name__}: {error}"
        if os.environ.get("REDPAJAMA_DEBUG"):
            detail += "\n" + traceback.format_exc()
        else:
            detail = one_line(detail)
        payload = pickle.dumps(("error", detail))
    try:
        with os.fdopen(write_end, "wb") as pipe:
            pipe.write(payload)
        sys.stdout.flush()
        sys.stderr.flush()
    finally:
        os._exit(0)


def one_line(message: str) -> str:
    """A runner's many-line failure (a job service's traceback in the message) as one line: its
    first line and, if there are more, its last (where the innermost error is)."""
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    if len(lines) <= 1:
        return lines[0] if lines else message
    return f"{lines[0]} ... {lines[-1]}"


def note(**values: Any) -> None:
    """Leave ``values`` (JSON) for the launcher; nothing outside an engine process."""
    path = os.environ.get(NOTES_VARIABLE)
    if not path:
        return
    notes = _read_notes(os.path.dirname(path))
    notes.update(values)
    with open(path + ".new", "w", encoding="utf-8") as handle:
        json.dump(notes, handle)
    os.replace(path + ".new", path)


def _read_notes(folder: str) -> dict[str, Any]:
    try:
        with open(os.path.join(folder, NOTES), encoding="utf-8") as handle:
            return json.load(handle)
    except (OSError, ValueError):
        return {}


def _die_with(launcher: int) -> None:
    """Ask Linux for SIGTERM when the launcher dies (elsewhere: best effort)."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):
        pass
    if os.getppid() != launcher:  # it died before the request took effect
        os.killpg(0, signal.SIGKILL)


def _raise_interrupted(signum, frame) -> None:
    raise Interrupted(signum)


def _read_all(fd: int) -> bytes:
    parts = []
    while chunk := os.read(fd, 1 << 16):
        parts.append(chunk)
    return b"".join(parts)


def end_group(pid: int, wait: float = GRACE_SECONDS) -> None:
    """End the engine's whole process group at once (SIGKILL: nothing is left to save, and the
    SDK workers would otherwise print their dying threads' tracebacks), then reap the engine."""
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done:
            return
        time.sleep(0.02)


def remove_stale_temp_folders() -> None:
    """Remove temp folders of runs whose launcher is gone."""
    for folder in Path(tempfile.gettempdir()).glob(f"{TEMP_PREFIX}*"):
        try:
            owner = int(folder.name[len(TEMP_PREFIX) :].split("-", 1)[0])
        except ValueError:
            continue
        if not _alive(owner):
            shutil.rmtree(folder, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
