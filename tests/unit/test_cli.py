import pytest
from redpajama.pipelines.commands.cli import main


def run(capsys, *argv):
    with pytest.raises(SystemExit) as exit_info:
        raise SystemExit(main(list(argv)))
    captured = capsys.readouterr()
    return exit_info.value.code, captured.out, captured.err


def test_slice_typo_is_one_line_with_a_suggestion(capsys):
    code, _, err = run(capsys, "run", "wikipdia", "--output", "x")
    assert code == 2
    assert err.count("\n") == 1 and "did you mean 'wikipedia'" in err


def test_missing_input_is_one_line(capsys, tmp_path):
    code, _, err = run(capsys, "run", "wikipedia", "--input", str(tmp_path / "nope*.xml"), "--output", str(tmp_path))
    assert code == 2 and err.strip() == f"redpajama: error: no input matches '{tmp_path}/nope*.xml'"


def test_missing_model_is_one_line(capsys, tmp_path):
    (tmp_path / "Posts.xml").write_text("<posts>\n</posts>\n")
    code, _, err = run(capsys, "run", "stackexchange", "--input", str(tmp_path / "Posts.xml"),
                       "--output", str(tmp_path / "o"), "--lid-model", str(tmp_path / "none.ftz"))
    assert code == 2 and err.count("\n") == 1 and "no file at" in err


def test_bad_number_and_slices_listing(capsys):
    code, _, err = run(capsys, "run", "wikipedia", "--output", "x", "--limit", "zero")
    assert code == 2 and "expected a whole number" in err and err.count("\n") == 1
    code, out, _ = run(capsys, "slices")
    assert code == 0 and "wikipedia:" in out and "2. clean_wikitext" in out and "join_answers" in out


def test_commoncrawl_model_mistakes_are_one_line(capsys, tmp_path):
    wet = tmp_path / "x.warc.wet.gz"
    wet.write_bytes(b"")
    model = tmp_path / "my.bin"
    model.write_bytes(b"x")
    base = ["run", "commoncrawl", "--input", str(wet), "--output", str(tmp_path / "o")]
    code, _, err = run(capsys, *base, "--sp-model", str(model), "--lm-model", str(model))
    assert code == 2 and err.count("\n") == 1 and "--cutoffs is needed" in err
    code, _, err = run(capsys, *base, "--models-dir", str(tmp_path))
    assert code == 2 and err.count("\n") == 1 and "no models.json" in err
    code, _, err = run(capsys, *base, "--snapshot", "2023")
    assert code == 2 and err.count("\n") == 1 and "YYYY-WW" in err


def test_models_build_with_missing_wikipedia_output_is_one_line(capsys, tmp_path):
    code, _, err = run(capsys, "models", "build", "--wikipedia", str(tmp_path / "none"),
                       "--commoncrawl", str(tmp_path / "none.wet.gz"), "--output", str(tmp_path / "m"))
    assert code == 2 and err.count("\n") == 1


def test_tokenizer_locations():
    from redpajama.models import catalog

    hub = "https://huggingface.co/EleutherAI/gpt-neox-20b/resolve/main/tokenizer.json"
    assert catalog.tokenizer_location("EleutherAI/gpt-neox-20b") == hub
    assert catalog.tokenizer_location("gs://bucket/tok.json") == "gs://bucket/tok.json"


def test_sample_and_report_mistakes_are_one_line(capsys, tmp_path):
    code, _, err = run(capsys, "sample", str(tmp_path), "--dest", str(tmp_path / "d"), "--fraction", "0")
    assert code == 2 and err.count("\n") == 1 and "fraction in (0, 1]" in err
    code, _, err = run(capsys, "sample", str(tmp_path), "--dest", str(tmp_path / "d"), "--fraction", "0.1")
    assert code == 2 and err.count("\n") == 1 and "no slice output found" in err


def test_unreachable_published_models_are_one_line(capsys, tmp_path):
    wet = tmp_path / "x.warc.wet.gz"
    wet.write_bytes(b"")
    dead = "http://127.0.0.1:9/models"
    code, _, err = run(capsys, "run", "commoncrawl", "--input", str(wet), "--output", str(tmp_path / "o"),
                       "--sp-model", f"{dead}/en.sp.model", "--lm-model", f"{dead}/en.arpa.bin", "--cutoffs", "ccnet",
                       "--wikiref-model", f"{dead}/wikiref.bin")
    assert code == 2 and err.count("\n") == 1 and "cannot reach http://127.0.0.1:9/models/en.sp.model" in err


def _a_finished_c4_run(capsys, tmp_path, monkeypatch, beam_files: bool) -> tuple:
    """A one-row C4 input and a finished run's output folder; then only local files, read by this
    package's own file system or by Beam's."""
    import gzip
    import json

    from redpajama.core import storage
    from redpajama.pipelines.beam.filesystems import BeamFiles

    rows = tmp_path / "c4-train.00000-of-01024.json.gz"
    rows.write_bytes(gzip.compress(json.dumps({"text": "a page of words", "url": "https://x/1", "timestamp": "t"}).encode()))
    out = str(tmp_path / "out")
    assert run(capsys, "run", "c4", "--input", str(rows), "--output", out, "--executor", "inprocess",
               "--count-tokens", "off")[0] == 0
    monkeypatch.setattr(storage, "_FILESYSTEMS", [BeamFiles() if beam_files else storage.LocalFiles()])
    return rows, out


@pytest.mark.parametrize("beam_files", [False, True])
def test_an_http_address_to_write_or_list_is_one_line(capsys, tmp_path, monkeypatch, beam_files):
    """http(s) inputs are read one file at a time: an http(s) output, folder to show or sample
    destination is the user's mistake, told as such (not as a missing file system to import)."""
    rows, out = _a_finished_c4_run(capsys, tmp_path, monkeypatch, beam_files)
    for executor in ("inprocess", "beam"):
        code, _, err = run(capsys, "run", "c4", "--input", str(rows), "--output", "https://example.invalid/out",
                           "--executor", executor, "--workers", "1")
        assert code == 2 and err.count("\n") == 1 and "http(s)" in err, err
    for argv in (["show", "https://example.invalid/out/c4"], ["report", "https://example.invalid/out"],
                 ["sample", out, "--dest", "https://example.invalid/sample", "--fraction", "0.5"]):
        code, _, err = run(capsys, *argv)
        assert code == 2 and err.count("\n") == 1 and "http(s) address" in err, err
        assert "import redpajama" not in err and "apache-beam" not in err, err


@pytest.mark.parametrize("beam_files", [False, True])
def test_a_file_uri_is_one_line_naming_the_local_path(capsys, tmp_path, monkeypatch, beam_files):
    """No file system here reads file:// (Beam's neither): the user is told to drop it, not to install one."""
    rows, out = _a_finished_c4_run(capsys, tmp_path, monkeypatch, beam_files)
    for argv in (["run", "c4", "--input", f"file://{rows}", "--output", str(tmp_path / "o1"), "--executor", "inprocess"],
                 ["run", "c4", "--input", str(rows), "--output", f"file://{tmp_path}/o2", "--executor", "inprocess"],
                 ["show", f"file://{out}/c4"], ["report", f"file://{out}"]):
        code, _, err = run(capsys, *argv)
        assert code == 2 and err.count("\n") == 1 and "without file://" in err, err
