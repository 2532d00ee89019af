"""Beam's file systems (local, gs://, s3://, ...) behind :mod:`redpajama.core.storage`, and the
settings workers read requester-pays S3 buckets with (:mod:`redpajama.core.s3`)."""

from __future__ import annotations

import warnings
from typing import BinaryIO

from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems
from redpajama.core import s3
from redpajama.core.storage import FileInfo


class BeamFiles:
    """Every non-HTTP path through Beam's ``FileSystems``: what workers on any runner can read."""

    def exists(self, path: str) -> bool:
        _options_for(path)
        return FileSystems.exists(path)

    def match(self, pattern: str) -> list[FileInfo]:
        _options_for(pattern)
        with warnings.catch_warnings():  # "[[]" is no nested set (see delete)
            warnings.simplefilter("ignore", FutureWarning)
            found = FileSystems.match([pattern])[0].metadata_list
        return [FileInfo(m.path, m.size_in_bytes, m.last_updated_in_seconds) for m in found]

    def open(self, path: str) -> BinaryIO:
        _options_for(path)
        return FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED)

    def create(self, path: str) -> BinaryIO:
        _options_for(path)
        return FileSystems.create(path, compression_type=CompressionTypes.UNCOMPRESSED)

    def rename(self, source: str, target: str) -> None:
        _options_for(source)
        FileSystems.rename([source], [target])

    def delete(self, path: str) -> None:
        _options_for(path)
        if not path.startswith(PATTERN_DELETES) or not any(char in path for char in GLOB_CHARS):
            FileSystems.delete([path])
            return
        with warnings.catch_warnings():  # Python's regex warns of "[[]" as a possible nested set; it is not one
            warnings.simplefilter("ignore", FutureWarning)
            FileSystems.delete([literal_pattern(path)])


GLOB_CHARS = "[*?"
PATTERN_DELETES = ("gs://",)  # file systems whose delete matches its argument as a pattern (Beam's GCS)


def literal_pattern(path: str) -> str:
    """``path`` as a Beam match pattern that matches only itself: Beam's patterns have no escape
    character, but a one-character class has (``[[]``, ``[*]``, ``[?]``)."""
    return "".join(f"[{char}]" if char in GLOB_CHARS else char for char in path)


def _options_for(path: str) -> None:
    """Beam's S3 file system refuses to work without pipeline options, which a launcher has only
    once it builds a pipeline: before that (expanding s3:// inputs) it gets the defaults, so boto3's
    own settings (``AWS_*`` variables, profiles) apply."""
    if path.startswith("s3://") and FileSystems._pipeline_options is None:
        from apache_beam.options.pipeline_options import PipelineOptions

        FileSystems.set_options(PipelineOptions([]))


def configure_storage(requester_pays: bool) -> None:
    """On a worker: requester pays for every s3:// path if the run said so, and boto3 gets the
    run's ``--aws_*``/``--s3_*`` options (credentials, endpoint, region) as Beam's S3 file system does."""
    s3.pay_for_all(requester_pays)
    options = FileSystems._pipeline_options  # set by the SDK harness on workers; None on the launcher
    if options is None:
        return
    try:
        from apache_beam.io.aws.clients.client_options import get_client_kwargs
        from apache_beam.options.pipeline_options import S3Options
    except ImportError:  # Beam without its aws extra: boto3's own settings
        return
    s3.use_client_settings(get_client_kwargs(options, S3Options))
