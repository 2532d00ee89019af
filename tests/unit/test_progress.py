"""Progress a person can trust: whole lines from every worker, documents counted one by one,
time left from the bytes read, and lines for the long phases of ``models build``."""

import os
import re
import stat
import subprocess
import sys
import time

from redpajama.core import storage
from redpajama.models import lm_training
from redpajama.pipelines.beam import reading
from redpajama.pipelines.runs import progress
from redpajama.pipelines.runs.progress import BatchSizer, Phase, UnitProgress
from redpajama.slices.base import RunContext, WorkUnit


def test_a_line_goes_out_in_one_write(monkeypatch):
    read_end, write_end = os.pipe()
    writes = []
    real_write = os.write
    monkeypatch.setattr(os, "write", lambda fd, data: writes.append((fd, data)) or real_write(fd, data))
    with os.fdopen(write_end, "w") as stream:
        monkeypatch.setattr(sys, "stderr", stream)
        progress.emit("  wikipedia: 1,234 documents")
        progress.emit("x" * 10_000)
    assert writes[0] == (write_end, b"  wikipedia: 1,234 documents\n")
    assert len(writes) == 2 and len(writes[1][1]) == progress.select.PIPE_BUF and writes[1][1].endswith(b"x\n")
    os.close(read_end)


def test_two_workers_sharing_a_pipe_never_run_their_lines_together():
    read_end, write_end = os.pipe()
    script = ("import sys; from redpajama.pipelines.runs.progress import emit\n"
              "for i in range(3000): emit(f'  worker {sys.argv[1]}: {i:,} documents, ' + 'x' * 60)")
    workers = [subprocess.Popen([sys.executable, "-u", "-c", script, str(n)], stderr=write_end) for n in (1, 2)]
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        lines = pipe.read().decode().splitlines()
    assert all(worker.wait() == 0 for worker in workers)
    whole = re.compile(r"^  worker [12]: [\d,]+ documents, x{60}$")
    assert len(lines) == 6000 and all(whole.match(line) for line in lines), [x for x in lines if not whole.match(x)][:3]


def test_batches_shrink_to_what_the_steps_do_in_half_a_second_and_grow_back():
    sizer = BatchSizer(256)
    assert sizer.limit == 16
    for _ in range(6):
        sizer.handed_on(sizer.limit, 0.001)
    assert sizer.limit == 256
    sizer.handed_on(256, 25.6)  # 0.1 s per document behind the reader
    assert sizer.limit == 5
    sizer.handed_on(5, 50.0)
    assert sizer.limit == 1
    sizer.handed_on(1, 0.0)
    assert sizer.limit == 2


class SlowSteps:
    """A reader's slice of 200 documents; the test plays the steps behind it on a fake clock."""

    name = "wikipedia"
    context = RunContext()

    def read(self, unit):
        for number in range(200):
            yield f"{number:05d}", {"text": "page", "meta": {}}


def test_a_reader_hands_on_documents_in_batches_the_steps_finish_in_half_a_second(monkeypatch):
    now = [0.0]
    monkeypatch.setattr(reading.time, "monotonic", lambda: now[0])
    reader = reading.ReadUnits(SlowSteps())
    reader.setup()
    sizes = []
    for batch in reader.process(WorkUnit("dump.xml", context={})):
        sizes.append(len(batch))
        now[0] += 0.1 * len(batch)  # each document takes the steps 0.1 s
    assert sum(sizes) == 200
    assert sizes[:3] == [16, 5, 5] and set(sizes[1:-1]) == {5}


def test_time_left_comes_from_the_bytes_read_and_the_end_says_what_it_waits_for(tmp_path):
    data = tmp_path / "input"
    data.write_bytes(b"x" * (3 * storage.READ_CHUNK))
    total = 3 * storage.READ_CHUNK + 10
    with UnitProgress("c4: reading input", total, interval=3600) as unit:
        with storage.open_range(str(data)) as stream:
            stream.read(storage.READ_CHUNK)
            first = unit.line()  # the documents of this chunk may all be ahead: no estimate yet
            stream.read(storage.READ_CHUNK)
            unit.documents = 17
            middle = unit.line()
            stream.read()
            near_end = unit.line()
        with storage.open_range(str(tmp_path / "input")) as stream:  # the last 10 bytes
            stream.read(10)
            end = unit.line()
    assert re.search(r": 0 documents, 1\.0 of 3\.1 MB read, [\d.,]+ MB/s, \d+s so far$", first)
    assert re.search(r": 17 documents, 2\.1 of 3\.1 MB read, [\d.,]+ MB/s, \d+s so far, about \d+s left$", middle)
    assert re.search(r"3\.1 of 3\.1 MB read, .* about \d+s left$", near_end)  # ten bytes to go: the last chunk counts
    assert end.endswith(", all of it read, finishing its documents")


def test_a_phase_says_when_it_starts_what_it_is_at_and_when_it_ends():
    said = []
    with Phase("models: building KenLM", say=said.append, interval=0.01) as phase:
        phase.update("45% compiled")
        deadline = time.monotonic() + 60
        while not any("45% compiled" in line for line in said[1:]) and time.monotonic() < deadline:
            time.sleep(0.01)
    assert said[0] == "models: building KenLM ..."
    assert any(re.fullmatch(r"models: building KenLM: 45% compiled, \d+s so far", line) for line in said[1:-1])
    assert re.fullmatch(r"models: building KenLM: done in \d+s \(45% compiled\)", said[-1])


def test_make_and_lmplz_output_become_progress_details():
    assert lm_training.make_progress("[ 45%] Building CXX object lm/CMakeFiles/kenlm.dir/vocab.cc.o") == "45% compiled"
    assert lm_training.make_progress("[100%] Built target lmplz") == "100% compiled"
    assert lm_training.make_progress("Scanning dependencies of target kenlm") is None
    assert lm_training.lmplz_progress("=== 2/5 Calculating and sorting adjusted counts ===") == \
        "step 2/5: calculating and sorting adjusted counts"
    assert lm_training.lmplz_progress("****************************************************************") is None


def test_the_kenlm_build_reports_its_progress_as_make_prints_it(tmp_path, monkeypatch):
    tools = tmp_path / "tools"
    tools.mkdir()
    programs = "\n".join(f"mkdir -p bin && echo built > bin/{p}" for p in lm_training.KENLM_PROGRAMS)
    fakes = {"cmake": "#!/bin/sh\necho '-- Configuring done'\n",
             "make": f"#!/bin/sh\nfor p in 12 50 100; do echo \"[ $p%] Building CXX object x.o\"; done\n{programs}\n"}
    for name, body in fakes.items():
        (tools / name).write_text(body)
        (tools / name).chmod(stat.S_IRWXU)
    monkeypatch.setenv("PATH", f"{tools}:{os.environ['PATH']}")
    source = tmp_path / "kenlm"
    source.mkdir()
    details = []
    lm_training.compile_kenlm(source, tmp_path / "bin", details.append)
    assert details == ["configuring (cmake)", "0% compiled", "12% compiled", "50% compiled", "100% compiled"]
    assert (tmp_path / "bin" / "lmplz").read_text() == "built\n"


def test_a_failing_program_is_a_training_error_with_its_last_lines(tmp_path):
    import pytest

    script = "import sys\nfor n in range(8): print(f'line {n}', file=sys.stderr)\nsys.exit(3)"
    with pytest.raises(lm_training.TrainingError) as failure:
        lm_training._run([sys.executable, "-c", script], "build KenLM")
    assert str(failure.value).endswith(": line 3 | line 4 | line 5 | line 6 | line 7")
    assert "apt-get install" in str(failure.value)
