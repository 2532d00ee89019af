"""Bytes to records: decompression with caps, UTF-8 chunks, lines and JSON rows.

Every reader goes through :func:`decompressed_chunks`, so a decompression bomb or an endless
line fails its unit with a counted reason (:class:`~redpajama.core.errors.LimitExceeded`)
instead of taking the worker down.
"""

from __future__ import annotations

import bz2
import codecs
import json
import lzma
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO

import zstandard
from redpajama.core import storage
from redpajama.core.errors import LimitExceeded, SourceError, failure_reason
from redpajama.core.records import Failure
from redpajama.core.storage import READ_CHUNK


def iter_chunks(stream: BinaryIO, chunk_size: int = READ_CHUNK) -> Iterator[bytes]:
    while chunk := stream.read(chunk_size):
        yield chunk


def utf8_chunks(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """Re-encode a byte stream as UTF-8 when it starts with a UTF-16 or UTF-8 byte-order mark."""
    chunks = iter(chunks)
    first = b""
    for chunk in chunks:
        first += chunk
        if len(first) >= 4:
            break
    if first.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        decoder = codecs.getincrementaldecoder("utf-16")(errors="strict")
        yield decoder.decode(first).encode("utf-8")
        for chunk in chunks:
            yield decoder.decode(chunk).encode("utf-8")
        yield decoder.decode(b"", final=True).encode("utf-8")
        return
    yield first.removeprefix(codecs.BOM_UTF8)
    yield from chunks


def iter_lines(chunks: Iterable[bytes], max_line: int | None = None) -> Iterator[tuple[int, bytes]]:
    """``(byte offset, line)`` for each line of a chunked byte stream (newline removed).

    A line longer than ``max_line`` bytes raises :class:`LimitExceeded` (``record_too_large``)
    before it is held whole.
    """
    offset = 0
    parts: list[bytes] = []  # the line under way, chunk by chunk: joined once, when it ends
    held = 0
    for chunk in chunks:
        if b"\n" not in chunk:
            if chunk:
                parts.append(chunk)
                held += len(chunk)
                _check_line(held, max_line, offset)
            continue
        lines = chunk.split(b"\n")
        if parts:
            parts.append(lines[0])
            lines[0] = b"".join(parts)
        tail = lines.pop()
        parts, held = ([tail], len(tail)) if tail else ([], 0)
        for line in lines:
            _check_line(len(line), max_line, offset)
            yield offset, line
            offset += len(line) + 1
        _check_line(held, max_line, offset)
    if parts:
        yield offset, b"".join(parts)


def _check_line(size: int, max_line: int | None, offset: int) -> None:
    if max_line is not None and size > max_line:
        raise LimitExceeded("record_too_large", f"line at byte {offset} is longer than {max_line >> 20} MB")


@dataclass(frozen=True)
class Limits:
    """What one input may expand to: a bomb fails its unit instead of the worker.

    ``max_record_bytes`` bounds one line, page or record; ``max_expansion`` the decompressed
    bytes per compressed byte over a whole input, once past ``EXPANSION_FLOOR`` (real text
    compresses 3-10x; zeros 1,000x and more).
    """

    max_record_bytes: int = 64 << 20
    max_expansion: float = 100.0


DEFAULT_LIMITS = Limits()
EXPANSION_FLOOR = 64 << 20
ZSTD_PIECE = 1 << 10  # zstd decompresses without an output bound: feed it this much at a time


class _Codec:
    """One compressed stream after another (multistream bz2, multi-member gzip), output bounded."""

    def __init__(self, name: str):
        lower = name.lower()
        self.kind = next((kind for kind in (".bz2", ".xz", ".gz", ".zst") if lower.endswith(kind)), None)
        self.decompressor = self._new()
        self.fed = False

    def _new(self):
        if self.kind == ".bz2":
            return bz2.BZ2Decompressor()
        if self.kind == ".xz":
            return lzma.LZMADecompressor()
        if self.kind == ".gz":
            return zlib.decompressobj(wbits=47)
        return zstandard.ZstdDecompressor().decompressobj()

    def feed(self, raw: bytes, limit: int) -> Iterator[bytes]:
        """Decompressed output of ``raw`` in pieces of at most about ``limit`` bytes."""
        if self.kind == ".zst":
            for start in range(0, len(raw), ZSTD_PIECE):
                yield from self._zstd(raw[start : start + ZSTD_PIECE])
            return
        while raw:
            self.fed = True
            if self.kind == ".gz":
                data = self.decompressor.decompress(raw, limit)
                raw = self.decompressor.unconsumed_tail
            else:
                data = self.decompressor.decompress(raw, limit)
                raw = b""
                while not self.decompressor.eof and not self.decompressor.needs_input:
                    if data:
                        yield data
                    data = self.decompressor.decompress(b"", limit)
            if data:
                yield data
            if self.decompressor.eof:  # zlib's unconsumed_tail then repeats unused_data: take it once
                raw = self.decompressor.unused_data if self.kind == ".gz" else self.decompressor.unused_data + raw
                self.decompressor, self.fed = self._new(), False

    def _zstd(self, raw: bytes) -> Iterator[bytes]:
        while raw:
            self.fed = True
            data = self.decompressor.decompress(raw)
            if data:
                yield data
            if not self.decompressor.eof:
                return
            raw = self.decompressor.unused_data
            self.decompressor, self.fed = self._new(), False

    @property
    def truncated(self) -> bool:
        return self.fed and not self.decompressor.eof


def is_compressed(name: str) -> bool:
    return name.lower().endswith((".bz2", ".xz", ".gz", ".zst"))


def decompressed_chunks(
    stream: BinaryIO, name: str, chunk_size: int = READ_CHUNK, limits: Limits = DEFAULT_LIMITS
) -> Iterator[bytes]:
    """Decompressed bytes of ``stream`` as they become available (codec from ``name``).

    Concatenated streams (multistream bz2, multi-member gzip) are followed. Output comes in
    bounded pieces, and an input that expands more than ``limits.max_expansion`` times raises
    :class:`LimitExceeded` (``decompression_bomb``). Everything decodable before a truncation
    or corruption is yielded first; then ``EOFError`` (input ended mid-stream) or the codec's
    own error is raised.
    """
    if not is_compressed(name):
        yield from iter_chunks(stream, chunk_size)
        return
    codec = _Codec(name)
    consumed = produced = 0
    for raw in iter_chunks(stream, chunk_size):
        consumed += len(raw)
        for data in codec.feed(raw, chunk_size):
            produced += len(data)
            if produced > EXPANSION_FLOOR and produced > consumed * limits.max_expansion:
                raise LimitExceeded(
                    "decompression_bomb",
                    f"{name}: {produced >> 20} MB from {consumed >> 10} KB, more than {limits.max_expansion:g}x",
                )
            yield data
    if codec.truncated:
        raise EOFError(f"{name}: compressed input ended before the end of the stream")


DECOMPRESSION_ERRORS = (EOFError, OSError, lzma.LZMAError, zlib.error, zstandard.ZstdError)


MAX_JSON_DEPTH = 100  # rows are flat; far deeper values break pickling (Python's stack) between stages


def json_row(line: bytes) -> Any:
    """One JSON line; raises ValueError for invalid JSON, for values nested deeper than
    ``MAX_JSON_DEPTH`` and for lone surrogates (``"\\udc80"`` escapes), which no UTF-8 output,
    and no Beam coder, can carry."""
    try:
        row = json.loads(line)
    except RecursionError:
        raise ValueError(f"nested deeper than {MAX_JSON_DEPTH} levels") from None
    if line.count(b"[") + line.count(b"{") > MAX_JSON_DEPTH and _depth(row) > MAX_JSON_DEPTH:
        raise ValueError(f"nested deeper than {MAX_JSON_DEPTH} levels")
    if b"\\ud" in line or b"\\uD" in line:
        _refuse_surrogates(row)
    return row


def _depth(value: Any) -> int:
    """How deep lists and objects nest in ``value`` (a scalar: 0), without recursion."""
    deepest, level = 0, [(value, 1)]
    while level:
        item, depth = level.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else None
        if children is not None:
            deepest = max(deepest, depth)
            level.extend((child, depth + 1) for child in children)
    return deepest


def _refuse_surrogates(value: Any) -> None:
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as error:
            raise ValueError(f"a lone surrogate ({value[error.start]!r}) cannot be written as UTF-8") from None
    elif isinstance(value, dict):
        for key, item in value.items():
            _refuse_surrogates(key)
            _refuse_surrogates(item)
    elif isinstance(value, list):
        for item in value:
            _refuse_surrogates(item)


def numbered_lines(source: str, limits: Limits = Limits()) -> Iterator[tuple[int, bytes] | Failure]:
    """Non-empty lines of a text file (compressed by its extension) with their 0-based numbers.

    A file that cannot be opened, or the rest of one after a corrupt or truncated stretch, a
    line over ``limits.max_record_bytes`` or a decompression bomb, becomes one
    :class:`Failure`; every line before it is still yielded.
    """
    number = -1
    try:
        with storage.open_range(source) as stream:
            chunks = decompressed_chunks(stream, source, limits=limits)
            for number, (_, line) in enumerate(iter_lines(chunks, limits.max_record_bytes)):
                if line.strip():
                    yield number, line
    except SourceError as error:
        yield Failure(source, f"after line {number + 1}", failure_reason(error), str(error))
    except DECOMPRESSION_ERRORS as error:
        yield Failure(source, f"after line {number + 1}", "corrupt_compression", f"{type(error).__name__}: {error}")
