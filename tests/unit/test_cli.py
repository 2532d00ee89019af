import pytest
from redpajama.pipelines.cli import main


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
