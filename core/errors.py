"""The errors every layer raises: a user's mistake, and an input that cannot be read."""

from __future__ import annotations


class UsageError(Exception):
    """A user's mistake (bad option, missing input or model): reported as one line."""


class SourceError(Exception):
    """An input could not be opened or read (missing, unreachable, unreadable)."""


class NotRegularFile(SourceError):
    """A FIFO, device or socket: reading it could block forever, so it is never opened."""

    reason = "not_regular_file"


class LimitExceeded(SourceError):
    """An input breaks a :class:`Limits` cap; ``reason`` is the failure's stable code."""

    def __init__(self, reason: str, detail: str):
        super().__init__(detail)
        self.reason = reason

    def __reduce__(self):  # rebuilt whole after a trip through pickle (a step's child process)
        return type(self), (self.reason, str(self))


def failure_reason(error: SourceError) -> str:
    """The stable failure code of an input error."""
    return getattr(error, "reason", None) or "unreadable_input"
