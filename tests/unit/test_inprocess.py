"""The in-process executor on small hand-made slices: every kind of step and its corner cases
(a key that raises, a join's orphans, an unreadable reference, a chain of near-duplicates longer
than the propagation's rounds, a unit that is empty, a record no line can hold) give the Beam
executor's files and counts; and it never loads Beam."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from pathlib import Path

import pytest
from redpajama.core.records import Drop, Failure, JoinStep, KeepFirstStep, NearDedupStep, ReferenceStep, Step
from redpajama.pipelines.beam.executor import BeamExecutor
from redpajama.pipelines.inprocess.executor import InProcessExecutor
from redpajama.pipelines.runs.run import run_slice
from redpajama.pipelines.runs.runner_config import RunnerConfig
from redpajama.slices.base import Slice, WorkUnit

from tests.integration.helpers import output_bytes
from tests.unit.test_keep_dropped import Rows, _rows

NOT_COUNTS = ("wall_seconds", "shuffles")


class Tag(Step):
    def __init__(self, name: str = "tag"):
        self.name = name

    def apply(self, record):
        if "fail" in record["text"]:
            raise ValueError("a record this step cannot take")
        if "skip" in record["text"]:
            return Drop("skipped", scores={"length": len(record["text"])})
        record["meta"]["tagged"] = True
        if "odd" in record["text"]:
            record["meta"]["odd"] = {1, 2}  # no JSON line can hold a set: the record fails at the writer
        return record


def _merge(parents, children):
    for parent in parents:
        parent = dict(parent, text=parent["text"] + "".join("\n" + child["text"] for child in children))
        yield parent
    for child in children:
        yield child if not parents else Drop("merged", record=child)


def _key(record):
    if "badkey" in record["text"]:
        raise KeyError("no key")
    return record["meta"]["k"]


def _listed(path: str):
    for line in Path(path).read_text().splitlines():
        yield Failure(path, line, "bad_reference_line") if line.startswith("!") else line


class Threads(Slice):
    """Rows of a thread (``q`` parents, ``a`` children): a per-record step, a join, a reference
    lookup, near-duplicates over a chain of edits, keep-first decided at the sink, a last step."""

    name = "threads"
    summary = "threads"

    def __init__(self, reference: str = "", key_may_fail: bool = True, **options):
        super().__init__(**options)
        self.reference = reference
        self.key_may_fail = key_may_fail  # a key that raises fails its record where keep-first is decided at the sink

    def read(self, unit: WorkUnit):
        for number, line in enumerate(Path(unit.source).read_text().splitlines()):
            if line == "broken":
                yield Failure(unit.source, str(number), "unparsable_row")
                continue
            row = json.loads(line)
            meta = {"id": f"threads/{row['id']}", "k": row.get("k"), "kind": row["kind"], "parent": row.get("parent"),
                    "url": row.get("url", "")}
            yield f"{Path(unit.source).name}|{number:04d}", {"text": row["text"], "meta": meta}

    def steps(self):
        return [
            Tag(),
            JoinStep("thread", parent_key=lambda r: r["meta"]["id"] if r["meta"]["kind"] == "q" else None,
                     child_key=lambda r: f"threads/{r['meta']['parent']}" if r["meta"]["kind"] == "a" else None,
                     join=_merge),
            ReferenceStep("listed", (self.reference,), _listed, lambda r: r["meta"]["url"] or None,
                          lambda r, found: Drop("listed") if found else r),
            NearDedupStep("near", text=lambda r: r["text"], threshold=0.5, num_perm=64, rounds=1, ngram=2),
            KeepFirstStep("first", key=_key if self.key_may_fail else lambda r: r["meta"]["k"], reason="same_key"),
            Tag("tag_again"),
        ]

    def always_written(self):
        return ()


def _threads(tmp_path: Path) -> tuple[list[str], str]:
    base = " ".join(f"w{i}" for i in range(40))
    chain = [base.replace(f"w{i} ", "") for i in range(0, 12, 3)]  # each close to the next, far from the last
    rows = [{"id": "q1", "kind": "q", "text": "question one about beer", "k": "a", "url": "https://x/1"},
            {"id": "a1", "kind": "a", "parent": "q1", "text": "an answer", "k": "b"},
            {"id": "a2", "kind": "a", "parent": "q9", "text": "an orphan answer", "k": "c"},
            {"id": "q2", "kind": "q", "text": "listed question", "k": "d", "url": "https://x/listed"},
            {"id": "f1", "kind": "x", "text": "fail here", "k": "e"},
            {"id": "s1", "kind": "x", "text": "skip this", "k": "f"},
            {"id": "b1", "kind": "x", "text": "badkey record", "k": "g"},
            {"id": "d1", "kind": "x", "text": "same key one", "k": "h"},
            {"id": "d2", "kind": "x", "text": "same key two", "k": "h"},
            {"id": "u1", "kind": "x", "text": "lone surrogate \udc80", "k": "i"},
            {"id": "o1", "kind": "x", "text": "an odd one", "k": "j"},
            *({"id": f"c{n}", "kind": "x", "text": text, "k": f"c{n}"} for n, text in enumerate(chain))]
    inputs = []
    for index in range(2):
        path = tmp_path / f"threads-{index}.jsonl"
        lines = [json.dumps(row) for row in rows[index::2]] + (["broken"] if index else [])
        path.write_text("\n".join(lines) + "\n")
        inputs.append(str(path))
    empty = tmp_path / "threads-2.jsonl"
    empty.write_text("")
    reference = tmp_path / "listed.txt"
    reference.write_text("https://x/listed\n!not a url\n")
    return [*inputs, str(empty)], str(reference)


def _both(slc, inputs: list[str], tmp_path: Path, **kwargs) -> dict:
    beam = run_slice(slc, inputs, str(tmp_path / "beam"), BeamExecutor(RunnerConfig(workers=1)), shard_bytes=300, **kwargs)
    local = run_slice(slc, inputs, str(tmp_path / "local"), InProcessExecutor(), shard_bytes=300, **kwargs)
    assert output_bytes(local.slice_dir) == output_bytes(beam.slice_dir)
    counts = {key: value for key, value in beam.stats.items() if key not in NOT_COUNTS}
    assert {key: value for key, value in local.stats.items() if key not in NOT_COUNTS} == counts
    return beam.stats


@pytest.mark.parametrize("keep_dropped", [None, 1.0])
def test_every_kind_of_step_and_its_corner_cases(tmp_path, keep_dropped):
    inputs, reference = _threads(tmp_path)
    # With --keep-dropped keep-first runs as a join, where a key that raises stops the run (either executor).
    stats = _both(Threads(reference, key_may_fail=keep_dropped is None), inputs, tmp_path, keep_dropped=keep_dropped)
    steps = {step["name"]: step for step in stats["steps"]}
    assert steps["thread"]["dropped"] == {"merged": 1} and steps["listed"]["dropped"] == {"listed": 1}
    assert steps["near"]["dropped"]  # the chain of edits: some of it near-duplicates
    assert {"empty_input", "unparsable_row", "invalid_record", "tag_failed", "write_failed"} <= set(
        stats["failed_by_reason"])


def test_the_keep_dropped_rows_slice(tmp_path):
    inputs, reference = _rows(tmp_path)
    _both(Rows(reference), inputs, tmp_path, keep_dropped=0.5)


def test_the_in_process_executor_never_loads_beam(tmp_path):
    rows = tmp_path / "c4-train.00000-of-01024.json.gz"
    rows.write_bytes(gzip.compress(b"".join(
        json.dumps({"text": f"page {n}", "url": f"https://x/{n}", "timestamp": "t"}).encode() + b"\n" for n in range(5))))
    probe = (
        "import sys\n"
        "from redpajama.pipelines.inprocess.executor import InProcessExecutor\n"
        "from redpajama.pipelines.runs.run import run_slice\n"
        "from redpajama.slices.c4 import C4\n"
        f"outcome = run_slice(C4(), [{str(rows)!r}], {str(tmp_path / 'out')!r}, InProcessExecutor())\n"
        "print(outcome.stats['kept'], 'apache_beam' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split()[-2:] == ["5", "False"]
