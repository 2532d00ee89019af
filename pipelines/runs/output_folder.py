"""What a run may do in its slice folder: write there, and remove only what a run of this project wrote.

A run owns, in its slice folder, the files an earlier run's ``_SUCCESS`` lists and this
project's own names: shards ``<name>-SSSSS-of-NNNNN.jsonl.zst`` (and ``.jsonl``, ``.txt``) at
the top or one folder down (CommonCrawl's snapshots, ``_errors/``, ``_dropped/``), rejects in
``_dropped/<step>/<reason>/``,
``stats.json``, ``_SUCCESS``, ``_LOCK`` and the staging folder ``_temporary/``. Anything else
(a user's notes, a repository, an input) makes a run that would write refuse before any work,
``--overwrite`` or not. Links are never followed, written through or removed: a link in the
slice folder, or a slice folder that is a link, is refused too. Locally entries are read with
``lstat``; object stores (gs://) have no links, and their objects are listed with the path
taken literally.

A run writes under ``_temporary/`` with the final names; a run that dies leaves only that folder
behind. Once the executor is done, :func:`commit` moves the shards into place, writes
``stats.json`` and then the ``_SUCCESS`` marker, which records the run's settings so that a rerun
with the same settings does no work. Everything goes through :mod:`redpajama.core.storage`: local
folders, and whatever file systems the executor installed there.
"""

from __future__ import annotations

import json
import os
import posixpath
import re
import shutil
import stat
from dataclasses import dataclass, field
from typing import Any

from redpajama.core import storage
from redpajama.core.errors import SourceError, UsageError

TEMPORARY = "_temporary"
ERRORS = "_errors"
DROPPED = "_dropped"
UNIT_YIELDS = "_unit_yields"  # under _temporary: kept documents and bytes per unit, read into stats.json, never output
MARKER = "_SUCCESS"
LOCK = "_LOCK"  # held by a running run (see redpajama.pipelines.runs.lock)
STATS = "stats.json"

join = storage.join
list_files = storage.list_files
delete_file = storage.delete


SHARD = re.compile(r"(?:[^/]+/|_dropped/[^/]+/[^/]+/)?[^/]+-\d{5}-of-\d{5}\.(?:jsonl\.zst|jsonl|txt)")
SCRATCH = re.compile(r"\.write-test-\w+|\.(?:stats\.json|_SUCCESS)\.partial")  # left by a run cut short
INPUT_LIST = "_inputs.txt"  # a long input list, written for the workers to read (see build.input_list)
OWN_FILES = frozenset({STATS, MARKER, LOCK, INPUT_LIST})
LISTED = 3  # foreign names a refusal shows


def own_name(relative: str) -> bool:
    """Whether a run of this project writes files of this name (relative to the slice folder)."""
    return relative in OWN_FILES or staging(relative) or bool(SHARD.fullmatch(relative) or SCRATCH.fullmatch(relative))


def staging(relative: str) -> bool:
    """Whether the name is the staging folder or inside it."""
    return relative == TEMPORARY or relative.startswith(TEMPORARY + "/")


@dataclass
class SliceFolder:
    """A slice folder as a run finds it: its entries (relative name -> ``file``, ``link`` or
    ``special``; ``_temporary`` stands for the staging folder as a whole) and the finished run's
    marker, if a regular ``_SUCCESS`` that parses is there."""

    path: str
    entries: dict[str, str] = field(default_factory=dict)
    marker: dict[str, Any] | None = None

    @classmethod
    def read(cls, path: str) -> SliceFolder:
        folder = cls(path, _entries(path))
        if folder.entries.get(MARKER) == "file":
            folder.marker = read_marker(path)
        return folder

    @property
    def listed(self) -> frozenset[str]:
        """What the finished run's marker says it wrote; only a marker with a run's fingerprint
        (every ``_SUCCESS`` this project wrote has one) names files a run may remove."""
        if not isinstance((self.marker or {}).get("fingerprint"), dict):
            return frozenset()
        files = self.marker.get("files")
        return frozenset(name for name in files if isinstance(name, str)) if isinstance(files, list) else frozenset()

    def owned(self, relative: str) -> bool:
        kind = self.entries.get(relative)
        if relative == TEMPORARY:
            return kind == "staging"  # a file of that name is not the staging folder
        return kind == "file" and (own_name(relative) or relative in self.listed)

    def foreign(self) -> list[str]:
        """Entries no run of this project wrote (links and special files included), sorted."""
        return sorted(name for name in self.entries if not self.owned(name))

    def stale(self) -> list[str]:
        """The owned files a commit replaces: all but the staging folder and the lock."""
        return sorted(name for name in self.entries
                      if self.owned(name) and name != LOCK and not staging(name))

    @property
    def interrupted(self) -> bool:
        """An earlier run left unfinished work in ``_temporary/``."""
        return any(staging(name) for name in self.entries)

    def check_links(self, when: str = "") -> None:
        """Refuse (one line) a folder that holds a symbolic link: a commit would move files through it."""
        links = sorted(name for name, kind in self.entries.items() if kind == "link")
        if links:
            raise UsageError(f"--output: {self.path} holds a symbolic link ({_names(links)}){when}; a run never "
                             "follows, writes through or removes one: choose another --output")

    def check_writable(self) -> None:
        """Refuse (one line) a folder that holds what no run of this project wrote."""
        self.check_links()
        foreign = self.foreign()
        if foreign:
            raise UsageError(f"--output: {self.path} holds files this tool did not write ({_names(foreign)}); "
                             "a run removes only its own files: move them or choose another --output")

    def read_stats(self) -> dict[str, Any] | None:
        """The finished run's ``stats.json``, or None when it is missing, a link or broken."""
        if self.entries.get(STATS) != "file":
            return None
        try:
            with storage.open_range(join(self.path, STATS)) as handle:
                stats = json.loads(handle.read().decode("utf-8"))
        except (SourceError, OSError, UnicodeDecodeError, ValueError):
            return None
        return stats if isinstance(stats, dict) else None


def _names(names: list[str]) -> str:
    shown = ", ".join(names[:LISTED])
    return shown + (f" and {len(names) - LISTED} more" if len(names) > LISTED else "")


def _entries(path: str) -> dict[str, str]:
    if "://" in path:
        prefix = path.rstrip("/") + "/"
        return {name[len(prefix):]: "file" for name in list_files(path) if name.startswith(prefix)}
    found: dict[str, str] = {}
    if os.path.isdir(path) and not os.path.islink(path):
        _walk(path, "", found)
    return found


def _walk(folder: str, prefix: str, found: dict[str, str]) -> None:
    """Entries below ``folder`` by ``lstat``: links are recorded, never entered. Iterative, so a
    foreign tree of any depth is listed (and refused) rather than overflowing the stack."""
    waiting = [(folder, prefix)]
    while waiting:
        here, above = waiting.pop()
        with os.scandir(here) as entries:
            for entry in entries:
                relative = above + entry.name
                if entry.is_symlink():
                    found[relative] = "link"
                elif entry.is_dir(follow_symlinks=False):
                    if relative == TEMPORARY:
                        found[relative] = "staging"  # removed whole by the run (links inside are unlinked)
                    else:
                        waiting.append((entry.path, relative + "/"))
                else:
                    found[relative] = "file" if entry.is_file(follow_symlinks=False) else "special"


# --- before any work ------------------------------------------------------------------------


def check_slice_folder(slice_dir: str) -> None:
    """A slice folder that is a link is refused: a run would write through it."""
    if "://" not in slice_dir and os.path.islink(slice_dir.rstrip("/")):
        raise UsageError(f"--output: {slice_dir} is a symbolic link; a run never writes through one: "
                         "give the folder it points to, or another one, as --output")


def check_inputs_outside(slice_dir: str, inputs: list[str]) -> None:
    """Refuse a slice folder that holds an input or lies inside an input folder: the run would
    replace what it reads, or read what it wrote on the next run. Locally folders are also
    compared by device and inode, so that one folder reached by two names (a bind mount, a
    case-insensitive file system) is found too."""
    folders = _places(slice_dir)
    chains: dict[str, frozenset] = {}
    local = "://" not in slice_dir
    slice_id = _identity(slice_dir) if local else None
    above_slice = _chain(os.path.realpath(slice_dir), chains) if local else frozenset()
    for item in inputs:
        if storage.is_url(item):
            continue
        places = _places(item)
        local_input = local and "://" not in item
        holders = _chain(os.path.dirname(os.path.realpath(item)), chains) if local_input else frozenset()
        if any(_within(place, folder) for place in places for folder in folders) or slice_id in holders:
            raise UsageError(f"--output: the slice folder {slice_dir} holds an input ({item}); "
                             "choose an --output folder apart from the inputs")
        if _is_folder(item) and (any(_within(folder, place) for place in places for folder in folders)
                                 or _identity(item) in above_slice):
            raise UsageError(f"--output: the slice folder {slice_dir} is inside an input ({item}); "
                             "choose an --output folder apart from the inputs")


def _identity(path: str) -> tuple[int, int] | None:
    """A local folder's device and inode (None when it does not exist)."""
    try:
        info = os.stat(path)
    except OSError:
        return None
    return (info.st_dev, info.st_ino) if stat.S_ISDIR(info.st_mode) else None


def _chain(folder: str, chains: dict[str, frozenset]) -> frozenset:
    """The identities of ``folder`` (an absolute path, links resolved) and of every folder above it."""
    if folder not in chains:
        parent = os.path.dirname(folder)
        above = _chain(parent, chains) if parent != folder else frozenset()
        identity = _identity(folder)
        chains[folder] = above | {identity} if identity else above
    return chains[folder]


def _places(path: str) -> set[str]:
    """Where ``path`` is: as written (absolute) and with links resolved."""
    if "://" in path:
        return {path.rstrip("/")}
    return {os.path.abspath(path), os.path.realpath(path)}


def _within(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip("/") + "/")


def _is_folder(path: str) -> bool:
    return "://" not in path and os.path.isdir(path)


# --- the commit (after the executor is done) ------------------------------------------------


def read_marker(slice_dir: str) -> dict[str, Any] | None:
    """The ``_SUCCESS`` marker of a finished run, or None (none, or not a marker this project wrote)."""
    path = join(slice_dir, MARKER)
    if not storage.exists(path):
        return None
    with storage.open_range(path) as handle:
        try:
            marker = json.loads(handle.read().decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            return None
    return marker if isinstance(marker, dict) else None


def write_json(path: str, data: dict[str, Any]) -> None:
    """Write ``data`` as JSON; locally through a temporary name renamed into place, so that a
    link at ``path`` is replaced, never written through, and a reader never sees half a file."""
    encoded = (json.dumps(data, indent=2, sort_keys=False) + "\n").encode("utf-8")
    if "://" in path:
        with storage.create(path) as handle:
            handle.write(encoded)
        return
    os.makedirs(posixpath.dirname(path) or ".", exist_ok=True)
    partial = posixpath.join(posixpath.dirname(path), f".{posixpath.basename(path)}.partial")
    descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o644)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(encoded)
    os.replace(partial, path)


def clear(directory: str) -> None:
    """Remove a directory tree if it exists (locally, links inside it are removed, never followed)."""
    if "://" in directory:
        for path in list_files(directory):
            delete_file(path)
    elif os.path.isdir(directory) and not os.path.islink(directory):
        shutil.rmtree(directory)


def commit(slice_dir: str, stats: dict[str, Any], marker: dict[str, Any], stale: list[str]) -> list[str]:
    """Replace the files ``stale`` names (relative to ``slice_dir``: an earlier run's, each one this
    project wrote) with the run's files from ``_temporary``, then write stats and the marker.

    The old marker goes first, so that a commit cut short is never taken as a finished run.
    """
    temporary = join(slice_dir, TEMPORARY)
    staged = list_files(temporary)
    for relative in sorted(stale, key=lambda name: name != MARKER):
        delete_file(join(slice_dir, relative))
    if "://" not in slice_dir:
        _remove_emptied_folders(slice_dir, stale)
    finals = []
    for path in staged:
        final = join(slice_dir, path[len(temporary) :].lstrip("/"))
        if "://" not in final:  # object stores have no directories to make
            os.makedirs(posixpath.dirname(final), exist_ok=True)
        storage.rename(path, final)
        finals.append(final)
    clear(temporary)
    write_json(join(slice_dir, STATS), stats)
    write_json(join(slice_dir, MARKER), marker)
    return finals


def _remove_emptied_folders(slice_dir: str, removed: list[str]) -> None:
    """Remove the folders that held removed files and are empty now, deepest first."""
    folders = {"/".join(relative.split("/")[:depth]) for relative in removed for depth in range(1, relative.count("/") + 1)}
    for folder in sorted(folders, key=lambda name: -name.count("/")):
        try:
            os.rmdir(posixpath.join(slice_dir, folder))
        except OSError:  # not empty: something else lives there
            pass
