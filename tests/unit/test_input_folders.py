"""A folder given as input means the same with or without a trailing slash (as shells complete
it): one unit for a slice that reads folders (repositories, paper folders), else the files in it."""

import glob
import warnings

import pytest
from redpajama.core import storage
from redpajama.pipelines.beam.filesystems import BeamFiles
from redpajama.pipelines.beam.reading import ExpandInputs
from redpajama.pipelines.runs.run import resolve_inputs
from redpajama.slices.c4 import C4
from redpajama.slices.github import GitHub


@pytest.fixture(params=["local", "beam"])
def file_systems(request):
    """Both file systems core can read through: its own local one and Beam's."""
    saved = storage._FILESYSTEMS[0]
    storage.use_filesystems(BeamFiles() if request.param == "beam" else storage.LocalFiles())
    yield
    storage.use_filesystems(saved)


@pytest.fixture
def repo(tmp_path):
    (tmp_path / "repo" / "src").mkdir(parents=True)
    (tmp_path / "repo" / "b.json").write_text("{}\n")
    (tmp_path / "repo" / "a.json").write_text("{}\n")
    (tmp_path / "repo" / "src" / "c.py").write_text("x = 1\n")
    return tmp_path / "repo"


def test_a_folder_is_one_input_for_a_slice_that_reads_folders(repo, file_systems):
    for argument in (str(repo), f"{repo}/", f"{repo}//"):
        assert storage.expand(argument, folders=True) == [str(repo)]
        assert resolve_inputs([argument], None, folders=GitHub.reads_folders) == [str(repo)]


def test_a_folder_is_the_files_in_it_for_a_slice_that_reads_files(repo, file_systems):
    files = [str(repo / "a.json"), str(repo / "b.json")]
    for argument in (str(repo), f"{repo}/"):
        assert storage.expand(argument) == files
        assert resolve_inputs([argument], None, folders=C4.reads_folders) == files


def test_workers_expand_a_folder_as_the_launcher_does(repo, file_systems):
    expand = ExpandInputs(GitHub())
    expand.setup()
    assert list(expand.process(f"{repo}/")) == [str(repo)]


def test_a_folder_name_with_glob_characters_is_literal(tmp_path, file_systems):
    folder = tmp_path / "run[1]"
    folder.mkdir()
    (folder / "x.json").write_text("{}\n")
    assert storage.expand(str(folder)) == [str(folder / "x.json")]
    assert storage.expand(f"{folder}/", folders=True) == [str(folder)]


def test_patterns_name_the_same_files_on_either_file_system(tmp_path, monkeypatch):
    """`redpajama run --executor inprocess` matches local patterns without Beam: what it reads must be
    what a Beam run reads, special files (counted later as not regular) and hidden names included."""
    import os

    for name in ("a.txt", ".hidden.txt", "b.gz", "sub/c.txt", "sub/deep/d.txt", "sub/.e.gz", "x[1].txt"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(name)
    os.mkfifo(tmp_path / "pipe.txt")
    (tmp_path / "folder.txt").mkdir()
    (tmp_path / "broken.txt").symlink_to(tmp_path / "nowhere")
    (tmp_path / "linked").symlink_to(tmp_path / "sub", target_is_directory=True)
    patterns = ["*.txt", "**", "**.txt", "*/*.txt", "sub/**/*.txt", "?.txt", "[ab].*", "[!a]*", "x[[]1].txt",
                "a.txt", "pipe.txt", "sub", "nothing*", "linked/*", "s*/c.txt", "sub/", "*/", "s*/", "sub/**/", "*/c.txt",
                "**/d.txt", "x[[]1].txt/"]
    beam, local = BeamFiles(), storage.LocalFiles()
    monkeypatch.chdir(tmp_path)
    for base in (str(tmp_path) + "/", "./", ""):
        for pattern in patterns:
            found = sorted(info.path for info in local.match(base + pattern))
            assert found == sorted(info.path for info in beam.match(base + pattern)), pattern
    assert sorted(info.path for info in local.match(f"{tmp_path}/*.txt")) == [
        f"{tmp_path}/{name}" for name in (".hidden.txt", "a.txt", "pipe.txt", "x[1].txt")]


def test_a_pattern_without_a_folder_names_files_in_the_current_one(tmp_path, monkeypatch, file_systems):
    (tmp_path / "c4-train.00000-of-01024.json.gz").write_bytes(b"")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "c4-train.00001-of-01024.json.gz").write_bytes(b"")
    monkeypatch.chdir(tmp_path)
    assert storage.expand("c4-*.json.gz") == ["c4-train.00000-of-01024.json.gz"]
    assert storage.expand("**.json.gz") == ["c4-train.00000-of-01024.json.gz", "sub/c4-train.00001-of-01024.json.gz"]
    assert storage.expand("sub/*.gz") == ["sub/c4-train.00001-of-01024.json.gz"]


def test_a_pattern_ending_in_a_separator_names_the_files_in_the_folders_it_matches(tmp_path, file_systems):
    for name in ("data-1/a.json", "data-2/b.json", "data-2/deep/c.json", "data-3.json"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("{}\n")
    assert storage.expand(f"{tmp_path}/data-*/") == [f"{tmp_path}/data-1/a.json", f"{tmp_path}/data-2/b.json"]
    assert storage.expand(f"{tmp_path}/data-2/**/") == [f"{tmp_path}/data-2/deep/c.json"]


def test_a_relative_pattern_with_a_wildcard_in_its_first_folder_names_files_below_the_current_one(
        tmp_path, monkeypatch, file_systems):
    for name in ("run[1]/x.json", "part-a/y.json", "part-b/deep/z.json"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("{}\n")
    monkeypatch.chdir(tmp_path)
    assert storage.expand("run[1]") == ["run[1]/x.json"]
    assert storage.expand("part-*/*.json") == ["part-a/y.json"]
    assert storage.expand("**/*.json") == ["part-a/y.json", "part-b/deep/z.json", "run[1]/x.json"]
    assert storage.expand("part-?/") == ["part-a/y.json"]


def test_a_file_named_with_glob_characters_is_itself_when_expanded_again(tmp_path, monkeypatch, file_systems):
    """Workers expand the files the launcher listed once more: a listed name is never read as a pattern."""
    for name in ("d[1]/c4-train.00000-of-01024.json.gz", "d1/c4-train.00000-of-01024.json.gz", "x*.json"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("{}\n")
    monkeypatch.chdir(tmp_path)
    for argument in (str(tmp_path / "d[1]"), "d[1]", "d[[]1]/*", "x[*].json"):
        files = resolve_inputs([argument], None)
        assert len(files) == 1 and glob.has_magic(files[0])
        assert [storage.expand(path) for path in files] == [files]


def test_an_escaped_folder_name_matches_without_a_warning(tmp_path, file_systems):
    (tmp_path / "run[1]").mkdir()
    (tmp_path / "run[1]" / "x.json").write_text("{}\n")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert storage.expand(glob.escape(str(tmp_path / "run[1]")) + "/*") == [str(tmp_path / "run[1]" / "x.json")]


def test_a_file_named_several_ways_is_read_once(tmp_path, monkeypatch, file_systems):
    """x, ./x, its absolute path, a link to it and overlapping globs name one file: one input."""
    (tmp_path / "c4-train.00000-of-01024.json.gz").write_text("{}\n")
    (tmp_path / "c4-train.00001-of-01024.json.gz").symlink_to(tmp_path / "c4-train.00000-of-01024.json.gz")
    (tmp_path / "other.json.gz").write_text("{}\n")
    monkeypatch.chdir(tmp_path)
    arguments = ["c4-*.json.gz", "./c4-*.json.gz", str(tmp_path / "c4-train.00000-of-01024.json.gz"), "*.gz"]
    assert resolve_inputs(arguments, None) == ["./c4-train.00000-of-01024.json.gz", "other.json.gz"]  # the first name


def test_file_systems_met_by_two_threads_at_once_are_installed_once_for_both():
    """The first path with a scheme installs the file systems for it; a second thread meeting one
    meanwhile waits for that install instead of reading through the local file system."""
    import threading

    class Remote(storage.LocalFiles):
        def exists(self, path: str) -> bool:
            return path == "mem://bucket/x"

    started, release, installs = threading.Event(), threading.Event(), []

    def install():
        installs.append(1)
        started.set()
        release.wait(60)
        storage.use_filesystems(Remote())

    saved = storage._FILESYSTEMS[0]
    storage.use_filesystems(storage.LocalFiles())
    storage.use_filesystems_for_schemes(install)
    answers = []
    try:
        first = threading.Thread(target=lambda: answers.append(storage.filesystems().exists("mem://bucket/x")))
        first.start()
        assert started.wait(60)
        second = threading.Thread(target=lambda: answers.append(storage.filesystems().exists("mem://bucket/x")))
        second.start()
        release.set()
        first.join(60)
        second.join(60)
    finally:
        storage.use_filesystems(saved)
    assert answers == [True, True] and installs == [1]
