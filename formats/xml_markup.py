"""Tags of an XML byte stream found by the language's lexical rules, in bounded memory.

In XML a ``<`` starts markup everywhere except inside a comment, a CDATA section, a
processing instruction or a declaration (the DOCTYPE), and neither text nor an attribute
value can hold a literal ``<``. :class:`MarkupScanner` finds the tags a reader names and
skips those four constructs whole, so text that only looks like markup (a CDATA section
holding ``</page><page>``) is never taken for a tag. Readers cut elements at the tags found
and parse each with lxml on its own, so a malformed element fails alone and a byte offset
is known for every element (which lxml's incremental parser does not report).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator

SKIPPED_UNTIL = {b"<!--": b"-->", b"<![CDATA[": b"]]>", b"<?": b"?>"}
LOOKAHEAD = 16  # longer than any token matched at the end of what has been read
DECLARATION_TOKEN = re.compile(rb"[\"'\[\]>]")


class HoldTooLong(Exception):
    """What a reader holds (an element being cut) grew past the scanner's ``max_hold``."""

    def __init__(self, offset: int):
        super().__init__(offset)
        self.offset = offset


class MarkupScanner:
    """Yields ``(offset, name)`` for each tag named by ``names`` (a regex alternation such as
    ``rb"page|/page"``: an end tag's name starts with ``/``), at its absolute byte offset.

    A reader that needs the bytes of an element sets :attr:`hold` to the offset of its first
    byte and reads them with :meth:`slice`; everything before ``hold`` and the scan position
    is dropped as reading goes on. Holding more than ``max_hold`` bytes raises :class:`HoldTooLong`.
    """

    def __init__(self, chunks: Iterable[bytes], names: bytes, base_offset: int = 0, max_hold: int = 1 << 30):
        self._chunks = iter(chunks)
        self._pattern = re.compile(rb"<(?:!--|!\[CDATA\[|\?|!|(" + names + rb")(?=[\s/>]))")
        self._buffer = bytearray()
        self.start = base_offset  # absolute offset of the buffer's first byte
        self.position = base_offset  # where the scan goes on
        self.hold: int | None = None
        self.max_hold = max_hold
        self.ended = False
        self.saw_content = False  # anything but white space so far
        self.unterminated: int | None = None  # where a comment, CDATA section... that never ends began

    # --- reading ---------------------------------------------------------------------------
    def _more(self) -> bool:
        """Read on, dropping what is no longer needed; False once the input has ended."""
        if self.ended:
            return False
        chunk = next(self._chunks, None)
        if chunk is None:
            self.ended = True
            return False
        keep = self.position if self.hold is None else min(self.hold, self.position)
        if keep > self.start:
            del self._buffer[: keep - self.start]  # bytearray drops its head without copying the rest
            self.start = keep
        self._buffer += chunk
        self.saw_content = self.saw_content or (bool(chunk) and not chunk.isspace())
        if self.hold is not None and self.start + len(self._buffer) - self.hold > self.max_hold:
            raise HoldTooLong(self.hold)
        return True

    @property
    def end(self) -> int:
        """Absolute offset just past what has been read."""
        return self.start + len(self._buffer)

    def slice(self, start: int, end: int) -> bytes:
        return bytes(self._buffer[start - self.start : end - self.start])

    # --- scanning --------------------------------------------------------------------------
    def __iter__(self) -> Iterator[tuple[int, bytes]]:
        while True:
            match = self._pattern.search(self._buffer, self.position - self.start)
            if match is None or (match.start() + LOOKAHEAD > len(self._buffer) and not self.ended):
                self.position = max(self.position, self.end - LOOKAHEAD)
                if match is not None:
                    self.position = min(self.position, self.start + match.start())
                if not self._more():
                    if match is None:
                        return
                continue
            offset = self.start + match.start()
            if match.group(1) is None:  # a comment, CDATA section, processing instruction or declaration
                self._skip(offset, match.group(0))
                continue
            self.position = self.start + match.end()
            yield offset, bytes(match.group(1))

    def _skip(self, offset: int, opening: bytes) -> None:
        terminator = SKIPPED_UNTIL.get(opening)
        if terminator is None:
            self._skip_declaration(offset)
            return
        search_from = offset + len(opening)
        while True:
            found = self._buffer.find(terminator, search_from - self.start)
            if found >= 0:
                self.position = self.start + found + len(terminator)
                return
            search_from = max(search_from, self.end - len(terminator) + 1)
            self.position = search_from
            if not self._more():
                self.unterminated = offset  # nothing after it is markup
                self.position = self.end
                return

    def _skip_declaration(self, offset: int) -> None:
        """``<!DOCTYPE ...>``: quoted strings and an internal subset (``[...]``) may hold '>' and
        '<'. Any other ``<!`` is no markup the readers know: the scan goes on after it."""
        while self.end - offset < len(b"<!DOCTYPE") and self._more():
            pass
        if self.slice(offset, offset + len(b"<!DOCTYPE")) != b"<!DOCTYPE":
            self.position = offset + 2
            return
        index, depth = offset + 2, 0
        while True:
            token = DECLARATION_TOKEN.search(self._buffer, index - self.start)
            if token is None:
                self.position = index = max(index, self.end)
                if not self._more():
                    self.unterminated = offset
                    return
                continue
            char = token.group(0)[:1]
            if char in b"\"'":
                close = self._buffer.find(char, token.start() + 1)
                if close < 0:  # the string goes on past what has been read
                    index = self.start + token.start()
                    self.position = index
                    if not self._more():
                        self.unterminated = offset
                        return
                    continue
                index = self.start + close + 1
                continue
            index = self.start + token.end()
            if char == b"[":
                depth += 1
            elif char == b"]":
                depth = max(0, depth - 1)
            elif depth == 0:
                self.position = index
                return

    def tag_end(self, offset: int, max_tag: int) -> int | None:
        """The end of the start tag at ``offset``: its last ``>`` before the next ``<`` (no
        attribute value holds a ``<``), or None when there is none. What it holds is not
        checked here: the reader's parser fails a malformed tag alone. Raises
        :class:`HoldTooLong` past ``max_tag`` bytes."""
        while True:
            following = self._buffer.find(b"<", offset - self.start + 1)
            if following < 0 and not self.ended:
                if self.end - offset > max_tag:
                    raise HoldTooLong(offset)
                held, self.hold = self.hold, offset if self.hold is None else min(self.hold, offset)
                try:
                    self._more()
                finally:
                    self.hold = held
                continue
            close = self._buffer.rfind(b">", offset - self.start, following if following >= 0 else len(self._buffer))
            if close < 0:
                return None
            if self.start + close + 1 - offset > max_tag:
                raise HoldTooLong(offset)
            return self.start + close + 1

    def end_tag_end(self, offset: int) -> int | None:
        """The end of the end tag at ``offset`` (just past its ``>``), or None if it never closes."""
        while True:
            found = self._buffer.find(b">", offset - self.start)
            if found >= 0:
                return self.start + found + 1
            held, self.hold = self.hold, offset if self.hold is None else min(self.hold, offset)
            try:
                if not self._more():
                    return None
            finally:
                self.hold = held

    def skip_to_next_tag(self, after: int) -> None:
        """Go on at the next ``<`` after ``after`` (past a malformed or oversized tag), holding nothing."""
        self.position = after + 1
        while True:
            found = self._buffer.find(b"<", self.position - self.start)
            if found >= 0:
                self.position = self.start + found
                return
            self.position = self.end
            if not self._more():
                return
