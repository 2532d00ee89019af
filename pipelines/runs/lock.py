"""One run at a time per slice output folder.

Locally the lock is ``<slice>/_LOCK`` held with ``flock`` for the whole run: the kernel drops
it when the run's process ends, however it ends, so a killed run never leaves a stale lock
(the file stays after a kill, unlocked, and the next run takes it). It is opened without
following links. A run that ends removes the file: one that opened it just before and then
locked it holds a file no longer there, so it checks and takes the one at the path instead.
On object stores (``gs://``) there is no such primitive: the file is a marker written at the
start and removed at the end, and a run that was killed leaves it behind for the user to
remove (the message says so).
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import socket
import stat
import time

from redpajama.core import storage
from redpajama.core.errors import UsageError
from redpajama.pipelines.runs import output_folder

LOCK = "_LOCK"


class OutputBusy(Exception):
    """Another run is writing this output; the message is one line for the user."""


class OutputLock:
    def __init__(self, slice_dir: str):
        self.slice_dir = slice_dir
        self.path = f"{slice_dir.rstrip('/')}/{LOCK}"
        self.local = "://" not in slice_dir
        self.fd: int | None = None

    def __enter__(self) -> OutputLock:
        holder = {"pid": os.getpid(), "host": socket.gethostname(), "started": time.strftime("%Y-%m-%d %H:%M:%S")}
        if self.local:
            os.makedirs(self.slice_dir, exist_ok=True)
            while not self._lock_local():  # the file was removed by a run that ended meanwhile: take the new one
                pass
            os.ftruncate(self.fd, 0)
            os.pwrite(self.fd, json.dumps(holder).encode(), 0)
            return self
        if storage.exists(self.path):
            with storage.open_range(self.path) as handle:
                other = _describe(handle.read())
            raise OutputBusy(f"{self.slice_dir} is being written by another run ({other}); if that run is gone, "
                             f"delete {self.path}")
        with storage.create(self.path) as handle:
            handle.write(json.dumps(holder).encode())
        return self

    def _lock_local(self) -> bool:
        """Open and lock ``_LOCK``; False when the file locked is no longer the one at the path (a
        run that ended removed it between our open and our lock: another run may lock a new one)."""
        try:  # never through a link: the lock file is truncated and written
            self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK, 0o644)
        except OSError as error:
            if error.errno != errno.ELOOP:
                raise
            raise UsageError(f"--output: {self.path} is a symbolic link; a run never writes through one: "
                             "choose another --output") from None
        if not stat.S_ISREG(os.fstat(self.fd).st_mode):
            self._close()
            raise UsageError(f"--output: {self.path} is not a regular file; choose another --output")
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            other = _describe(os.pread(self.fd, 4096, 0))
            self._close()
            raise OutputBusy(f"{self.slice_dir} is being written by another run ({other}); "
                             "wait for it to finish or choose another --output") from None
        held = os.fstat(self.fd)
        try:
            current = os.stat(self.path, follow_symlinks=False)
        except FileNotFoundError:
            current = None
        if current is None or (current.st_dev, current.st_ino) != (held.st_dev, held.st_ino):
            self._close()
            return False
        return True

    def _close(self) -> None:
        os.close(self.fd)
        self.fd = None

    @property
    def fds(self) -> tuple[int, ...]:
        """Descriptors a forked engine must close, so that only the launcher holds the lock."""
        return (self.fd,) if self.fd is not None else ()

    def __exit__(self, *exc) -> None:
        if self.local and self.fd is not None:
            try:
                os.unlink(self.path)
            except FileNotFoundError:
                pass
            os.close(self.fd)
            self.fd = None
        elif not self.local and storage.exists(self.path):
            output_folder.delete_file(self.path)


def _describe(data: bytes) -> str:
    try:
        holder = json.loads(data.decode("utf-8"))
        return f"pid {holder['pid']} on {holder['host']}, started {holder['started']}"
    except (ValueError, KeyError, UnicodeDecodeError):
        return "started by another process"
