"""A deadline on every read of an HTTP exchange made with ``requests``.

A socket timeout bounds one read, not a response: a server that sends a byte every few seconds
never trips it, in its headers or its body. Sessions passed to :func:`with_deadlines` read
through sockets that, inside ``with deadline(at):``, wait for no byte past ``at`` (a
``time.monotonic()`` value); a read past it raises ``TimeoutError``, which ``requests`` and
``urllib3`` report as a read timeout. Outside such a block, and for the connect phase (bounded
by the request's connect timeout), they behave as before.
"""

from __future__ import annotations

import io
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import requests
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

_LOCAL = threading.local()


@contextmanager
def deadline(at: float | None) -> Iterator[None]:
    """Every read of this thread's deadline-aware sessions ends by ``at`` (None: no deadline;
    nested blocks keep the earlier of the two)."""
    previous = getattr(_LOCAL, "at", None)
    _LOCAL.at = previous if at is None else at if previous is None else min(at, previous)
    try:
        yield
    finally:
        _LOCAL.at = previous


def remaining() -> float | None:
    """Seconds left before this thread's deadline (None: no deadline)."""
    at = getattr(_LOCAL, "at", None)
    return None if at is None else at - time.monotonic()


class _DeadlineReader(socket.SocketIO):
    """The socket's reading side, each read waiting no longer than the thread's deadline allows."""

    def __init__(self, sock: socket.socket, owner: _DeadlineSocket):
        super().__init__(sock, "rb")
        self._owner = owner

    def readinto(self, buffer) -> int | None:
        timeout = self._owner.timeout
        left = remaining()
        if left is not None:
            if left <= 0:
                raise TimeoutError("the deadline of this HTTP exchange has passed")
            timeout = left if timeout is None else min(timeout, left)
        self._sock.settimeout(timeout)
        return super().readinto(buffer)


class _DeadlineSocket:
    """A connected socket whose reading file (what ``http.client`` reads responses from) keeps
    the thread's deadline; everything else goes to the socket itself."""

    def __init__(self, sock: socket.socket):
        self._sock = sock
        self.timeout = sock.gettimeout()

    def settimeout(self, value: float | None) -> None:
        self.timeout = value
        self._sock.settimeout(value)

    def gettimeout(self) -> float | None:
        return self.timeout

    def makefile(self, mode: str = "r", buffering: int | None = None, **kwargs):
        if mode != "rb":
            return self._sock.makefile(mode, buffering, **kwargs)
        self._sock._io_refs += 1  # as socket.makefile: the socket stays open while the file does
        return io.BufferedReader(_DeadlineReader(self._sock, self), buffering or io.DEFAULT_BUFFER_SIZE)

    def __getattr__(self, name: str):
        return getattr(self._sock, name)


class _HTTPConnection(HTTPConnection):
    def connect(self) -> None:
        super().connect()
        self.sock = _DeadlineSocket(self.sock)


class _HTTPSConnection(HTTPSConnection):
    def connect(self) -> None:
        super().connect()
        self.sock = _DeadlineSocket(self.sock)


class _HTTPPool(HTTPConnectionPool):
    ConnectionCls = _HTTPConnection


class _HTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _HTTPSConnection


class DeadlineAdapter(requests.adapters.HTTPAdapter):
    """``requests``' adapter with connections that keep the thread's :func:`deadline`."""

    def init_poolmanager(self, *args, **kwargs) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _HTTPPool, "https": _HTTPSPool}


def with_deadlines(session: requests.Session) -> requests.Session:
    """``session``, its http(s) requests now keeping the thread's :func:`deadline`."""
    adapter = DeadlineAdapter()
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session
