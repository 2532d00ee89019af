"""Hostile and unlucky inputs beyond the reliability tests, on the pieces that must hold: the
output folder's rules and lock, fingerprints, HTTP reads, the per-document budget, citations
and LaTeX. Every input is generated; bounds are generous guards, not measurements."""

from __future__ import annotations

from redpajama.pipelines.output_folder import SliceFolder, own_name


def test_an_input_list_left_by_a_run_is_its_own_file(tmp_path):
    """Earlier versions published ``_inputs.txt``; a commit cut short could leave it unlisted."""
    assert own_name("_inputs.txt")
    folder = tmp_path / "c4"
    folder.mkdir()
    (folder / "_inputs.txt").write_text("/data/c4-train.00000-of-01024.json.gz\n")
    (folder / "c4-00000-of-00001.jsonl.zst").write_bytes(b"")
    found = SliceFolder.read(str(folder))
    assert found.foreign() == [] and found.stale() == ["_inputs.txt", "c4-00000-of-00001.jsonl.zst"]
