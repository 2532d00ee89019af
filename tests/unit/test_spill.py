"""Spill files: values written by one writer are read back exactly; references survive a shuffle's tuple."""

import pytest
from redpajama.pipelines.beam.spill import Spilled, SpillReader, SpillWriter


def test_values_come_back_exactly_and_other_values_pass_through(tmp_path):
    writer = SpillWriter(str(tmp_path / "spill"))
    first = writer.put(b"abc")
    record = {"text": "é\n", "meta": {"id": "x", "_unit": "u", "n": 3}}
    second = writer.put_object(record)
    third = writer.put(b"")
    reader = SpillReader()
    try:  # read while the writer is still open: every put is on disk at once
        assert reader.read(first) == b"abc" and reader.read_object(second) == record and reader.read(third) == b""
        assert reader.read(tuple(first)) == b"abc"  # a shuffle may hand back a plain tuple
        assert reader.read(b"bytes") == b"bytes" and reader.read_object(record) is record
    finally:
        writer.close()
        reader.close()
    assert first == Spilled(first.path, 0, 3) and second.offset == 3 and len(list((tmp_path / "spill").iterdir())) == 1


def test_a_spill_file_cut_short_is_an_error_not_a_short_value(tmp_path):
    writer = SpillWriter(str(tmp_path))
    reference = writer.put(b"0123456789")
    writer.close()
    with open(reference.path, "r+b") as handle:
        handle.truncate(4)
    reader = SpillReader()
    with pytest.raises(OSError, match="ended at 4, before 10"):
        reader.read(reference)
    reader.close()
