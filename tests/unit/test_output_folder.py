"""The slice folder's ownership rules and the commit, locally and on an object store.

The object store is a Beam file system kept in memory (``memfs://``): no folders, no links,
and a delete that matches its argument as a pattern, as Beam's GCS file system does.
"""

from __future__ import annotations

import io as stdio
import json
import os
import re

import pytest
from apache_beam.io.filesystem import FileMetadata, FileSystem
from redpajama.core.errors import UsageError
from redpajama.pipelines.beam import filesystems
from redpajama.pipelines.runs import output_folder
from redpajama.pipelines.runs.output_folder import SliceFolder, check_inputs_outside, check_slice_folder, own_name


class MemoryStore(FileSystem):
    objects: dict[str, bytes] = {}

    @classmethod
    def scheme(cls) -> str:
        return "memfs"

    def join(self, basepath, *paths):
        return "/".join([basepath.rstrip("/"), *paths])

    def split(self, path):
        head, _, tail = path.rpartition("/")
        return head, tail

    def mkdirs(self, path):
        pass

    def has_dirs(self):
        return False

    def _list(self, dir_or_prefix):
        for path in sorted(self.objects):
            if path.startswith(dir_or_prefix):
                yield FileMetadata(path, len(self.objects[path]), 0.0)

    def create(self, path, mime_type="application/octet-stream", compression_type=None):
        store = self.objects

        class Writer(stdio.BytesIO):
            def close(self):
                store[path] = self.getvalue()
                super().close()

        return Writer()

    def open(self, path, mime_type="application/octet-stream", compression_type=None):
        return stdio.BytesIO(self.objects[path])

    def copy(self, source_file_names, destination_file_names):
        for source, destination in zip(source_file_names, destination_file_names, strict=True):
            self.objects[destination] = self.objects[source]

    def rename(self, source_file_names, destination_file_names):
        for source, destination in zip(source_file_names, destination_file_names, strict=True):
            self.objects[destination] = self.objects.pop(source)

    def exists(self, path):
        return path in self.objects

    def size(self, path):
        return len(self.objects[path])

    def last_updated(self, path):
        return 0.0

    def checksum(self, path):
        return str(len(self.objects[path]))

    def metadata(self, path):
        return FileMetadata(path, len(self.objects[path]), 0.0)

    def delete(self, paths):
        for pattern in paths:  # a pattern, as Beam's GCS file system takes it
            for found in self.match([pattern])[0].metadata_list:
                del self.objects[found.path]


@pytest.fixture
def store(monkeypatch):
    MemoryStore.objects = {}
    monkeypatch.setattr(filesystems, "PATTERN_DELETES", ("gs://", "memfs://"))
    return MemoryStore.objects


def test_own_names():
    for name in ("_SUCCESS", "stats.json", "_LOCK", "_temporary", "_temporary/anything/at/all",
                 "c4-00000-of-00001.jsonl.zst", "_errors/errors-00000-of-00001.jsonl", "2019-30/en_head-00003-of-00010.jsonl.zst",
                 "_dropped/near_duplicate-00000-of-00001.jsonl.zst", "wikiref-counts-00000-of-00001.txt",
                 ".write-test-abc123_x", ".stats.json.partial"):
        assert own_name(name), name
    for name in ("README.md", "notes/IMPORTANT.txt", "input.json", "c4-train.00000-of-01024.json.gz",
                 "a/b/c4-00000-of-00001.jsonl.zst", "c4-0000-of-00001.jsonl.zst", "stats.json.bak", "_errors"):
        assert not own_name(name), name


@pytest.mark.filterwarnings("ignore:Possible nested set:FutureWarning")
def test_literal_patterns_match_only_themselves():
    for path in ("gs://b/out[1]/c4/x-00000-of-00001.jsonl.zst", "gs://b/o*/c4/_SUCCESS", "gs://b/o?t/[ab]/x"):
        regex = re.compile(FileSystem.translate_pattern(filesystems.literal_pattern(path)))
        assert regex.match(path)
        assert not regex.match(path.replace("[1]", "1").replace("*", "ther").replace("?", "u").replace("[ab]", "a"))


def test_a_remote_commit_removes_only_own_files_and_takes_names_literally(store):
    folder = "memfs://bucket/out[1]/c4"
    sibling = "memfs://bucket/out1/c4/c4-00000-of-00001.jsonl.zst"  # what the folder's name matches as a glob
    store.update({
        sibling: b"another run's output",
        f"{folder}/c4-00000-of-00002.jsonl.zst": b"old", f"{folder}/c4-00001-of-00002.jsonl.zst": b"old",
        f"{folder}/listed-by-the-marker.bin": b"old", f"{folder}/stats.json": b"{}",
        f"{folder}/_SUCCESS": json.dumps({"fingerprint": {}, "files": ["listed-by-the-marker.bin"]}).encode(),
        f"{folder}/_temporary/c4-00000-of-00001.jsonl.zst": b"new",
        f"{folder}/_temporary/_errors/errors-00000-of-00001.jsonl": b"",
    })
    found = SliceFolder.read(folder)
    assert found.foreign() == [] and found.interrupted
    store[f"{folder}/README.md"] = b"added while the run ran"
    stale = SliceFolder.read(folder).stale()
    assert stale == ["_SUCCESS", "c4-00000-of-00002.jsonl.zst", "c4-00001-of-00002.jsonl.zst",
                     "listed-by-the-marker.bin", "stats.json"]
    output_folder.commit(folder, {"read": 1}, {"fingerprint": {"x": 1}, "files": ["c4-00000-of-00001.jsonl.zst"]}, stale)
    assert sorted(store) == sorted([
        sibling, f"{folder}/README.md", f"{folder}/_SUCCESS", f"{folder}/stats.json",
        f"{folder}/c4-00000-of-00001.jsonl.zst", f"{folder}/_errors/errors-00000-of-00001.jsonl"])
    assert store[sibling] == b"another run's output" and store[f"{folder}/c4-00000-of-00001.jsonl.zst"] == b"new"
    with pytest.raises(UsageError, match="did not write .*README.md"):
        SliceFolder.read(folder).check_writable()


def test_remote_inputs_inside_the_slice_folder_are_refused():
    with pytest.raises(UsageError, match="holds an input"):
        check_inputs_outside("gs://b/data/c4", ["gs://b/data/c4/c4-train.00000-of-01024.json.gz"])
    check_inputs_outside("gs://b/data/c4", ["gs://b/data/c4x/input.json", "https://host/data/c4/input.json"])


def test_local_links_and_special_files_are_never_owned(tmp_path):
    folder = tmp_path / "c4"
    (folder / "_errors").mkdir(parents=True)
    (folder / "c4-00000-of-00001.jsonl.zst").write_bytes(b"ours")
    (folder / "_errors" / "errors-00000-of-00001.jsonl").write_bytes(b"")
    (folder / "stats.json").symlink_to(tmp_path / "elsewhere.json")
    (folder / "_temporary").write_text("a file where the staging folder goes")
    os.mkfifo(folder / "c4-00001-of-00002.jsonl.zst")
    found = SliceFolder.read(str(folder))
    assert found.entries["stats.json"] == "link" and found.entries["c4-00001-of-00002.jsonl.zst"] == "special"
    assert found.foreign() == ["_temporary", "c4-00001-of-00002.jsonl.zst", "stats.json"]
    assert found.stale() == ["_errors/errors-00000-of-00001.jsonl", "c4-00000-of-00001.jsonl.zst"]
    with pytest.raises(UsageError, match="symbolic link .*stats.json"):
        found.check_writable()
    link = tmp_path / "linked"
    link.symlink_to(folder)
    with pytest.raises(UsageError, match="is a symbolic link"):
        check_slice_folder(str(link))


def test_a_local_commit_keeps_what_appeared_meanwhile_and_removes_emptied_folders(tmp_path):
    folder = tmp_path / "common_crawl"
    (folder / "2019-30").mkdir(parents=True)
    (folder / "2019-30" / "en_head-00000-of-00001.jsonl.zst").write_bytes(b"old")
    (folder / "_temporary" / "2023-06").mkdir(parents=True)
    (folder / "_temporary" / "2023-06" / "en_head-00000-of-00001.jsonl.zst").write_bytes(b"new")
    stale = SliceFolder.read(str(folder)).stale()
    (folder / "notes.txt").write_text("added during the run")
    output_folder.commit(str(folder), {"read": 1}, {"files": []}, stale)
    assert sorted(str(p.relative_to(folder)) for p in folder.rglob("*")) == [
        "2023-06", "2023-06/en_head-00000-of-00001.jsonl.zst", "_SUCCESS", "notes.txt", "stats.json"]


def test_a_foreign_tree_of_any_depth_is_listed_not_overflowing(tmp_path):
    """A folder nested deeper than Python's recursion limit is found foreign, not a crash (the
    limit is lowered for the scan, so the tree stays shallow enough for anything to remove)."""
    import sys

    from redpajama.pipelines.runs.output_folder import SliceFolder

    deep = tmp_path / "slice"
    path = deep.joinpath(*["d"] * 300)
    path.mkdir(parents=True)
    (path / "notes.txt").write_text("mine\n")
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(150)
    try:
        foreign = SliceFolder.read(str(deep)).foreign()
    finally:
        sys.setrecursionlimit(limit)
    assert len(foreign) == 1 and foreign[0].endswith("/notes.txt")
