"""Readers against hostile bytes: bombs, endless lines, cut and corrupt archives (no pipeline)."""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import zlib

import pytest
import zstandard
from redpajama.core import storage, streams
from redpajama.core.errors import LimitExceeded, NotRegularFile
from redpajama.core.records import Failure
from redpajama.formats.warc_records import RawDocument
from redpajama.formats.webarchive import read_archive
from redpajama.pipelines.runs.progress import UnitProgress

from tests.conftest import CC_WET, need

ZEROS = b"\0" * (64 << 20)


def bomb(compress, copies: int = 16) -> bytes:
    """``copies`` x 64 MB of zeros as concatenated streams: a few KB that expand to a GB."""
    return compress(ZEROS) * copies


@pytest.mark.parametrize("name, compress", [
    ("b.gz", gzip.compress), ("b.bz2", bz2.compress), ("b.xz", lzma.compress),
    ("b.zst", zstandard.ZstdCompressor().compress),
])
def test_bombs_raise_after_a_bounded_amount_in_bounded_pieces(name, compress):
    data = bomb(compress)
    produced = 0
    with pytest.raises(LimitExceeded) as raised:
        for piece in streams.decompressed_chunks(io.BytesIO(data), name, 1 << 20):
            assert len(piece) <= 1 << 20 or name.endswith(".zst") and len(piece) <= 64 << 20
            produced += len(piece)
    # stopped once past 64 MB and 100x what was read (1 MB at a time)
    assert raised.value.reason == "decompression_bomb" and produced <= 128 << 20


@pytest.mark.parametrize("name, compress", [
    ("t.gz", gzip.compress), ("t.bz2", bz2.compress), ("t.xz", lzma.compress),
    ("t.zst", zstandard.ZstdCompressor().compress),
])
def test_concatenated_streams_and_truncation(name, compress):
    text = b"".join(b"line %d\n" % i for i in range(100_000))
    data = compress(text) + compress(b"tail\n")
    assert b"".join(streams.decompressed_chunks(io.BytesIO(data), name, 4096)) == text + b"tail\n"
    with pytest.raises(EOFError):
        b"".join(streams.decompressed_chunks(io.BytesIO(data[: len(data) // 2]), name))


def test_an_endless_line_is_refused_before_it_is_held():
    chunks = (b"x" * 1000 for _ in range(10_000))
    lines = streams.iter_lines(chunks, max_line=1 << 20)
    with pytest.raises(LimitExceeded) as raised:
        list(lines)
    assert raised.value.reason == "record_too_large"


def test_special_files_are_never_opened(tmp_path):
    import os

    fifo = tmp_path / "x.txt"
    os.mkfifo(fifo)
    with pytest.raises(NotRegularFile):  # opening would block until a writer came
        storage.open_range(str(fifo))


# --- WET / WARC ---------------------------------------------------------------------------------


def wet_bytes() -> bytes:
    return need(CC_WET[0]).read_bytes()


def members(data: bytes) -> list[int]:
    starts, position = [], 0
    while position < len(data):
        decompressor = zlib.decompressobj(31)
        decompressor.decompress(data[position:])
        starts.append(position)
        position = len(data) - len(decompressor.unused_data)
    return starts


def read(data: bytes) -> tuple[int, list[str]]:
    documents, reasons = 0, []
    for item in read_archive(lambda offset: io.BytesIO(data[offset:]), "x.warc.wet.gz"):
        if isinstance(item, RawDocument):
            documents += 1
        elif isinstance(item, Failure):
            reasons.append(item.reason)
    return documents, reasons


def test_a_cut_wet_file_counts_one_failure_and_keeps_every_complete_record():
    data = wet_bytes()
    starts = members(data)  # a warcinfo member, then one conversion record per member
    assert read(data) == (len(starts) - 1, [])
    member = starts[100]
    for cut in (1, 5, 11, 40, 200, starts[101] - member - 8, starts[101] - member - 1):
        assert read(data[: member + cut]) == (99, ["truncated_archive"]), cut
    assert read(data[: starts[101]]) == (100, [])  # cut between members: nothing is missing


def test_reading_resumes_after_a_malformed_or_corrupt_record():
    data = wet_bytes()
    starts = members(data)
    total = len(starts) - 1
    garbage = gzip.compress(b"<!doctype html><p>not a record</p>")
    assert read(data[: starts[50]] + garbage + data[starts[51] :]) == (total - 1, ["unreadable_record"])
    corrupt = bytearray(data)
    corrupt[starts[50] + 40] ^= 0xFF
    corrupt[starts[50] + 41] ^= 0x55
    assert read(bytes(corrupt)) == (total - 1, ["corrupt_member"])


def test_uncompressed_warc_resumes_at_the_next_warc_line_and_refuses_cut_headers():
    data = wet_bytes()
    starts = members(data)
    plain = b"".join(zlib.decompressobj(31).decompress(data[a:b]) for a, b in zip(starts, starts[1:] + [len(data)], strict=True))
    lines = [i for i in range(len(plain)) if plain.startswith(b"WARC/1.0\r\n", i)]
    broken = plain[: lines[50]] + b"WARC/1.0\r\nWARC-Type: conversion\r\nContent-Length 12\r\n\r\n" + plain[lines[51] :]
    assert read(broken) == (len(lines) - 2, ["truncated_record"])  # no Content-Length: the next record is whole
    # A record whose Content-Length is a word is read as empty and fails alone; its neighbour is whole.
    oops = plain[: lines[50]] + b"WARC/1.0\r\nWARC-Type: conversion\r\nContent-Length: oops\r\n\r\n" + plain[lines[50]:]
    assert read(oops) == (len(lines) - 1, ["invalid_content_length"])
    for cut in (50, 150, 400, 1200):  # inside the headers or the body of record 100
        assert read(plain[: lines[100] + cut]) == (99, ["truncated_record"]), cut


def test_a_gzip_bomb_member_fails_without_holding_it():
    data = wet_bytes()
    header = data[: members(data)[1]]
    record = zlib.compressobj(9, zlib.DEFLATED, 31)
    bomb_member = record.compress(b"WARC/1.0\r\nWARC-Type: conversion\r\nContent-Length: 4000000000\r\n\r\n")
    bomb_member += b"".join(record.compress(b"\0" * (1 << 20)) for _ in range(400)) + record.flush()
    assert read(header + bomb_member) == (0, ["decompression_bomb"])


def test_progress_lines_say_documents_megabytes_rate_and_time_left(capsys, tmp_path):
    import time

    dump = tmp_path / "dump.xml"
    dump.write_bytes(b"<page/>" * 200_000)
    with UnitProgress("wikipedia: reading dump.xml", total_bytes=10_000_000, interval=0.05) as progress:
        with storage.open_range(str(dump)) as stream:
            stream.read(1_200_000)  # more than the one chunk a reader may be ahead of its documents
        progress.documents = 1234
        line = progress.line()
        err, deadline = "", time.monotonic() + 60
        while "\n" not in err and time.monotonic() < deadline:  # the ticker prints one on its own
            time.sleep(0.05)
            err += capsys.readouterr().err
    assert line.startswith("  wikipedia: reading dump.xml: 1,234 documents, 1.2 of 10.0 MB read, ")
    assert "MB/s" in line and line.endswith(" left")
    assert err.startswith("  wikipedia: reading dump.xml: 1,234 documents, 1.2 of 10.0 MB read")


def test_a_record_whose_content_length_is_wrong_is_not_taken_as_a_document():
    data = wet_bytes()
    starts = members(data)
    record = zlib.decompressobj(31).decompress(data[starts[50]: starts[51]])
    head, _, body = record.partition(b"\r\n\r\n")
    length = int(next(line for line in head.split(b"\r\n") if line.startswith(b"Content-Length:")).split(b":")[1])
    short = head.replace(f"Content-Length: {length}".encode(), f"Content-Length: {length - 30}".encode())
    short = b"\r\n".join(line for line in short.split(b"\r\n") if b"-Digest:" not in line)
    member = gzip.compress(short + b"\r\n\r\n" + body)
    documents, reasons = read(data[: starts[50]] + member + data[starts[51]:])
    assert documents == len(starts) - 2 and reasons[0] == "invalid_content_length"
