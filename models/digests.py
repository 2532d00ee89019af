"""What a model is, by content: a run's fingerprint holds this, not where the model lives.

A local model file (a path, ``package:`` or ``cache:`` location) is named by the SHA-256 of
its bytes, remembered per (path, size, modification and change time, inode) in the model cache
so that a large KenLM binary is read once per version, not once per run. A remote model (URL, gs://) is
named by what its server says of it (ETag, size, date), read without downloading it; ``None``
when that cannot be read. A location that is neither (cc_net's built-in cutoff table) is its
own name.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from redpajama.core import storage
from redpajama.models import catalog

DIGESTS = ".digests.json"  # in the model cache: "path|size|mtime_ns|inode|ctime_ns" -> sha256
REMEMBERED = 256


def digests(models: dict[str, str]) -> dict[str, str | None]:
    """Each named model's content digest (see the module docstring)."""
    return {name: digest(location) for name, location in sorted(models.items())}


def digest(location: str) -> str | None:
    path = catalog.local_file(location)
    if path is not None:
        return "sha256:" + file_digest(path)
    if "://" in location:
        state = storage.input_states([location])[0]
        return None if state is None else f"remote:{state}"
    if location.startswith((catalog.PACKAGED, catalog.CACHED)) or os.sep in location:
        return "missing"
    return f"name:{location}"


def file_digest(path: Path) -> str:
    """SHA-256 of a file, from the cache while its path, size and times are the same: its
    modification time, which a copy can set back (``cp -p``, ``touch -r``), and its inode and
    change time, which no one sets (a write or a replacement changes them)."""
    info = path.stat()
    key = f"{path.resolve()}|{info.st_size}|{info.st_mtime_ns}|{info.st_ino}|{info.st_ctime_ns}"
    known = _load()
    if key in known:
        return known[key]
    with open(path, "rb") as handle:
        value = hashlib.file_digest(handle, "sha256").hexdigest()
    known = _load()  # another process may have added some meanwhile
    known[key] = value
    _save(dict(list(known.items())[-REMEMBERED:]))
    return value


def _cache_file() -> Path:
    return catalog.cache_dir() / DIGESTS


def _load() -> dict[str, str]:
    try:
        data = json.loads(_cache_file().read_text("utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _save(known: dict[str, str]) -> None:
    """Write the cache through a temporary name; a cache that cannot be written only costs time."""
    target = _cache_file()
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(f"{target.name}.{os.getpid()}.partial")
        partial.write_text(json.dumps(known), "utf-8")
        os.replace(partial, target)
    except OSError:
        pass
