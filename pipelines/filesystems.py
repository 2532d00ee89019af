"""Beam's file systems (local, gs://, s3://, ...) behind :mod:`redpajama.core.storage`."""

from __future__ import annotations

from typing import BinaryIO

from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems
from redpajama.core.storage import FileInfo


class BeamFiles:
    """Every non-HTTP path through Beam's ``FileSystems``: what workers on any runner can read."""

    def exists(self, path: str) -> bool:
        return FileSystems.exists(path)

    def match(self, pattern: str) -> list[FileInfo]:
        found = FileSystems.match([pattern])[0].metadata_list
        return [FileInfo(m.path, m.size_in_bytes, m.last_updated_in_seconds) for m in found]

    def open(self, path: str) -> BinaryIO:
        return FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED)
