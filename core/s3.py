"""Amazon S3 buckets whose requester pays (arXiv's bulk sources on ``s3://arxiv/``).

Beam's S3 file system sends no ``RequestPayer``, so such buckets refuse it. Paths in them are
listed and read here with boto3, AWS's own client, every request saying
``RequestPayer=requester``. ``s3://arxiv`` always is such a bucket; :func:`pay_for_all` (the
run's ``--requester-pays``) makes every ``s3://`` path one. Credentials, region and endpoint are
boto3's usual ones (``AWS_ACCESS_KEY_ID``/``AWS_PROFILE``, ``AWS_ENDPOINT_URL``, ...), with
settings a caller gives through :func:`use_client_settings` (Beam's ``--aws_*`` options on
workers) taking precedence.
"""

from __future__ import annotations

import fnmatch
import io
import time
from typing import Any, BinaryIO

from redpajama.core.errors import SourceError

REQUESTER_PAYS_BUCKETS = frozenset({"arxiv"})
RETRIES = 5
GLOB_CHARS = "*?["
_STATE: dict[str, Any] = {"all": False, "settings": {}, "client": None}


def pay_for_all(enabled: bool = True) -> None:
    """Read every ``s3://`` path with ``RequestPayer=requester`` (the user agreed to pay)."""
    _STATE["all"] = bool(enabled)


def use_client_settings(settings: dict[str, Any]) -> None:
    """boto3 client arguments (credentials, ``endpoint_url``, ``region_name``) for the reads here."""
    cleaned = {key: value for key, value in settings.items() if value not in (None, "")}
    if cleaned != _STATE["settings"]:
        _STATE["settings"], _STATE["client"] = cleaned, None


def requester_pays(path: str) -> bool:
    """Whether ``path`` is read here: an ``s3://`` path in a requester-pays bucket."""
    if not path.startswith("s3://"):
        return False
    return _STATE["all"] or split(path)[0] in REQUESTER_PAYS_BUCKETS


def split(path: str) -> tuple[str, str]:
    bucket, _, key = path[len("s3://") :].partition("/")
    return bucket, key


def client():
    if _STATE["client"] is None:
        try:
            import boto3
        except ImportError:
            raise SourceError("s3:// inputs need boto3: pip install 'apache-beam[aws]' "
                              "(in this repository: pip install -e '.[aws]')") from None
        _STATE["client"] = boto3.session.Session().client("s3", **_STATE["settings"])
    return _STATE["client"]


def _refused(path: str, error: Exception) -> SourceError:
    return SourceError(f"{path}: {type(error).__name__}: {error}")


class RequesterPaysFiles:
    """The :class:`~redpajama.core.storage.FileSystems` calls for requester-pays ``s3://`` paths."""

    def exists(self, path: str) -> bool:
        return bool(self.match(path))

    def match(self, pattern: str) -> list:
        from redpajama.core.storage import FileInfo

        bucket, key = split(pattern)
        wild = min((key.find(c) for c in GLOB_CHARS if c in key), default=-1)
        try:
            if wild < 0:
                try:
                    head = client().head_object(Bucket=bucket, Key=key, RequestPayer="requester")
                except Exception as error:
                    if _status(error) == 404:
                        return []
                    raise
                return [FileInfo(pattern, head["ContentLength"], head["LastModified"].timestamp())]
            found = []
            pages = client().get_paginator("list_objects_v2").paginate(
                Bucket=bucket, Prefix=key[:wild], RequestPayer="requester")
            for page in pages:
                for item in page.get("Contents", []):
                    if fnmatch.fnmatchcase(item["Key"], key):
                        found.append(FileInfo(f"s3://{bucket}/{item['Key']}", item["Size"],
                                              item["LastModified"].timestamp()))
            return found
        except SourceError:
            raise
        except Exception as error:
            raise _refused(pattern, error) from error

    def open(self, path: str) -> BinaryIO:
        return io.BufferedReader(_ObjectStream(path), 1 << 20)


def _status(error: Exception) -> int | None:
    response = getattr(error, "response", None) or {}
    return response.get("ResponseMetadata", {}).get("HTTPStatusCode")


class _ObjectStream(io.RawIOBase):
    """An object's bytes from a position on, resuming with a Range request after a dropped
    connection (bounded retries with back-off); ``seek`` moves the next request's start."""

    def __init__(self, path: str):
        self._path = path
        self._bucket, self._key = split(path)
        self._position = 0
        self._body = None

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        if whence != io.SEEK_SET:
            raise io.UnsupportedOperation("only absolute seeks")
        if offset != self._position:
            self._drop()
            self._position = offset
        return self._position

    def tell(self) -> int:
        return self._position

    def _drop(self) -> None:
        if self._body is not None:
            self._body.close()
            self._body = None

    def _connect(self) -> None:
        response = client().get_object(Bucket=self._bucket, Key=self._key, Range=f"bytes={self._position}-",
                                       RequestPayer="requester")
        self._body = response["Body"]

    def readinto(self, buffer) -> int:
        last: Exception | None = None
        for attempt in range(RETRIES):
            try:
                if self._body is None:
                    self._connect()
                data = self._body.read(len(buffer))
            except Exception as error:
                status = _status(error)
                if status == 416:  # a range that starts at the end: nothing is left
                    return 0
                if status is not None and status < 500 and status != 429:
                    raise _refused(self._path, error) from error
                last = error
                self._drop()
                time.sleep(min(30.0, 0.5 * 2**attempt))
                continue
            buffer[: len(data)] = data
            self._position += len(data)
            return len(data)
        raise SourceError(f"{self._path}: gave up after {RETRIES} attempts: {last}")

    def close(self) -> None:
        self._drop()
        super().close()
