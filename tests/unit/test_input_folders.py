"""A folder given as input means the same with or without a trailing slash (as shells complete
it): one unit for a slice that reads folders (repositories, paper folders), else the files in it."""

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
