"""Hostile and unlucky cases beyond the reliability tests: what a run leaves in its output
folder, what it writes through, when a finished run is taken as done, and commands run on
outputs that are not what they should be. Every input here is generated and small."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from redpajama.pipelines.beam import build
from redpajama.pipelines.runs import run as run_module
from redpajama.slices.c4 import C4

from tests.guards import alarm
from tests.integration.helpers import records, run

GUARD_SECONDS = 240  # turns a hang into a failure; not a measurement
C4_NAME = "c4-train.{:05d}-of-01024.json.gz"


def c4_inputs(folder: Path, files: int = 2, rows: int = 3) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for number in range(files):
        lines = [json.dumps({"text": f"document {number}.{i}: " + "words of the page " * 5,
                             "url": f"https://x/{number}/{i}", "timestamp": "t"}) for i in range(rows)]
        path = folder / C4_NAME.format(number)
        path.write_bytes(gzip.compress(("\n".join(lines) + "\n").encode()))
        paths.append(path)
    return paths


def cli(*args: str, timeout: float = GUARD_SECONDS) -> tuple[int, str]:
    done = subprocess.run([sys.executable, "-m", "redpajama.pipelines.commands.cli", *args], capture_output=True, text=True,
                          timeout=timeout)
    return done.returncode, done.stdout + done.stderr


# --- the output folder holds only output -------------------------------------------------------------


def test_the_input_list_of_a_run_with_many_inputs_is_not_output(tmp_path, monkeypatch):
    """A run whose input names pass the inline limit hands its workers a list file in
    ``_temporary/``; the commit must not publish it (``show`` took its lines for documents, and a
    commit cut short left a file no run claims, which blocked every rerun)."""
    monkeypatch.setattr(build, "INLINE_INPUT_BYTES", 0)
    inputs = c4_inputs(tmp_path / "in")
    with alarm(GUARD_SECONDS):
        outcome = run(C4(), inputs, tmp_path / "out", workers=1, executor="beam")
    folder = Path(outcome.slice_dir)
    assert outcome.stats["kept"] == 6 and len(records(folder)) == 6
    assert not (folder / "_inputs.txt").exists()
    marker = json.loads((folder / "_SUCCESS").read_text())
    assert "_inputs.txt" not in marker["files"]
    code, out = cli("show", str(folder), "--n", "10")
    assert code == 0 and "_inputs.txt" not in out and str(inputs[0]) not in out


def test_a_link_made_in_the_slice_folder_while_the_run_runs_is_never_written_through(tmp_path, monkeypatch):
    """A folder the commit moves files into (``_errors/``) that became a link to elsewhere during
    the run: the commit refuses instead of writing the dead letters through it."""
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "errors-00000-of-00001.jsonl").write_text("precious\n")
    out = tmp_path / "out"
    taken = run_module.take_unit_yields

    def link_appears(folder: str):
        (out / "c4" / "_errors").symlink_to(victim)
        return taken(folder)

    monkeypatch.setattr(run_module, "take_unit_yields", link_appears)
    with alarm(GUARD_SECONDS), pytest.raises(run_module.UsageError, match=r"symbolic link \(_errors\).*while the run"):
        run(C4(), c4_inputs(tmp_path / "in"), out, workers=1)
    assert sorted(os.listdir(victim)) == ["errors-00000-of-00001.jsonl"]
    assert (victim / "errors-00000-of-00001.jsonl").read_text() == "precious\n"
    assert not (out / "c4" / "_SUCCESS").exists()
    assert (out / "c4" / "_temporary" / "c4-00000-of-00001.jsonl.zst").exists()  # the work is kept for a look


def _can_bind_mount() -> bool:
    try:
        return subprocess.run(["unshare", "-m", "true"], capture_output=True, timeout=30).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


@pytest.mark.skipif(not _can_bind_mount(), reason="needs a private mount namespace (unshare -m)")
def test_an_output_that_is_the_inputs_folder_under_another_name_is_refused(tmp_path):
    """The input's folder reached by another path that no link explains (a bind mount here; a
    case-insensitive file system does the same with ``Data`` for ``data``): names differ, the
    folder is one. An input named like a shard was deleted by the commit."""
    data, mirror = tmp_path / "data", tmp_path / "mirror"
    (data / "c4").mkdir(parents=True)
    mirror.mkdir()
    source = data / "c4" / "c4-00000-of-00001.jsonl"
    source.write_text("".join(json.dumps({"text": f"document {i}: " + "words " * 9, "url": f"https://x/{i}",
                                          "timestamp": "t"}) + "\n" for i in range(4)))
    before = source.read_bytes()
    command = [sys.executable, "-m", "redpajama.pipelines.commands.cli", "run", "c4", "--input", str(source),
               "--output", str(mirror), "--executor", "inprocess", "--count-tokens", "off"]
    script = f"mount --bind {data} {mirror} && exec \"$@\""
    done = subprocess.run(["unshare", "-m", "sh", "-c", script, "sh", *command], capture_output=True, text=True,
                          timeout=GUARD_SECONDS)
    out = done.stdout + done.stderr
    assert done.returncode == 2 and "holds an input" in out and len(out.strip().splitlines()) == 1, out
    assert sorted(os.listdir(data / "c4")) == ["c4-00000-of-00001.jsonl"] and source.read_bytes() == before


# --- report and sample on outputs that are not what they should be -----------------------------------


def test_what_report_and_sample_read_of_a_shard_with_an_endless_line_names_it_in_bounded_memory(tmp_path, monkeypatch):
    """A shard whose one line never ends (here: 40 MB against a bound lowered to 8 MB) was read
    whole into memory by report and sample (a 200 MB line: 1 GB; a 1 GB line: out of memory);
    ``show`` stopped at its bound. Now they fail with one line naming the file."""
    from redpajama.core.errors import SourceError
    from redpajama.pipelines.runs import tokens

    monkeypatch.setattr(tokens, "MAX_LINE_BYTES", 8 << 20)
    shard = tmp_path / "out" / "c4" / "c4-00000-of-00001.jsonl"
    shard.parent.mkdir(parents=True)
    with shard.open("wb") as handle:
        handle.write(b'{"text": "')
        for _ in range(40):
            handle.write(b"x" * (1 << 20))
    with pytest.raises(SourceError, match=r"c4-00000-of-00001\.jsonl.*longer than 8 MB"):
        list(tokens.read_records(str(shard)))
    with pytest.raises(SourceError, match=r"c4-00000-of-00001\.jsonl.*longer than 8 MB"):
        tokens.count_files([str(shard)], None, eod=True)


def test_a_sample_into_a_slice_folder_is_refused_instead_of_reading_itself_forever(tmp_path):
    """``sample out --dest out/c4``: the sample file is one of the slice's record files, so the
    sample read what it was writing (fraction 1: without end, until the disk filled)."""
    out = tmp_path / "out"
    with alarm(GUARD_SECONDS):
        run(C4(), c4_inputs(tmp_path / "in", files=2, rows=400), out, workers=1)
    before = sorted(os.listdir(out / "c4"))
    for dest in (out / "c4", out / "c4" / "samples"):
        code, text = cli("sample", str(out), "--fraction", "1", "--dest", str(dest), timeout=120)
        assert code == 2 and "inside the slice folder" in text and len(text.strip().splitlines()) == 1, text
    assert sorted(os.listdir(out / "c4")) == before
    code, text = cli("sample", str(out), "--fraction", "1", "--dest", str(out / "sample"), timeout=120)
    assert code == 0 and "800 of 800 documents" in text, text
