import py7zr
import pytest
from redpajama.formats.archives import ArchiveError, is_safe_member, stream_member


def test_safe_member_names():
    assert is_safe_member("Posts.xml") and is_safe_member("site/Posts.xml")
    for name in ("../Posts.xml", "a/../../Posts.xml", "/etc/Posts.xml", "C:\\x\\Posts.xml", "..\\Posts.xml"):
        assert not is_safe_member(name), name


def make_archive(path, members):
    with py7zr.SevenZipFile(path, "w") as archive:
        for name, data in members:
            archive._writestr(data, name)  # the public writestr refuses hostile names


def test_streams_wanted_member_and_refuses_escapes(tmp_path):
    archive = tmp_path / "a.7z"
    make_archive(archive, [("Posts.xml", b"<posts/>\n" * 1000), ("../../escape/Posts.xml", b"evil")])
    got = []
    with pytest.raises(ArchiveError) as error:
        for name, chunks in stream_member(str(archive), lambda n: n.endswith("Posts.xml"), 1 << 20):
            got.append((name, b"".join(chunks)))
    assert error.value.reason == "unsafe_member"
    assert got == [("Posts.xml", b"<posts/>\n" * 1000)]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.7z"]
    assert not (tmp_path.parent.parent / "escape").exists()


def test_size_cap_and_corrupt_archive(tmp_path):
    archive = tmp_path / "a.7z"
    make_archive(archive, [("Posts.xml", b"x" * 5000)])
    with pytest.raises(ArchiveError) as error:
        list(stream_member(str(archive), lambda n: True, 100))
    assert error.value.reason == "member_too_large"
    (tmp_path / "bad.7z").write_bytes(archive.read_bytes()[:40])
    with pytest.raises(ArchiveError) as error:
        list(stream_member(str(tmp_path / "bad.7z"), lambda n: True, 1 << 20))
    assert error.value.reason == "corrupt_archive"
