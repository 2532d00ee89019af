"""Keep-first dedup decided on (key, order key) pairs at the sink: the same output and counts as a join."""

import json
from pathlib import Path

from redpajama.core.records import Drop, KeepFirstStep, Step
from redpajama.pipelines.beam.executor import BeamExecutor
from redpajama.pipelines.runs.recipe import as_join
from redpajama.pipelines.runs.run import run_slice
from redpajama.pipelines.runs.runner_config import RunnerConfig
from redpajama.slices.base import Slice, WorkUnit

from tests.integration.helpers import output_bytes


class DropMarked(Step):
    name = "select"

    def apply(self, record):
        return Drop("marked") if "drop" in record["text"] else record


class Shout(Step):
    name = "shout"

    def apply(self, record):
        if "boom" in record["text"]:
            raise RuntimeError("boom")
        record["text"] = record["text"].upper() + "!"
        return record


class Rows(Slice):
    """JSON rows ``{"text", "k", "p"}``: ``k`` the dedup key (may be null), ``p`` the partition; a text
    saying "unwritable" gets meta the JSON writer refuses."""

    name = "rows"
    summary = "JSON rows"
    shard_name = "rows"

    def read(self, unit: WorkUnit):
        for number, line in enumerate(Path(unit.source).read_text().splitlines()):
            row = json.loads(line)
            meta = {"id": f"{unit.source}/{number}", "k": row["k"], "p": row["p"]}
            if "unwritable" in row["text"]:
                meta["tags"] = {"a set is no JSON"}
            yield f"{Path(unit.source).name}|{number:04d}", {"text": row["text"], "meta": meta}

    def steps(self):
        return [KeepFirstStep("dedup", key=lambda record: record["meta"]["k"], reason="duplicate"), DropMarked(),
                Shout()]

    def partition(self, record):
        return record["meta"]["p"]

    def always_written(self):
        return ()


class RowsJoined(Rows):
    """The same recipe with the dedup step run as a join of the records."""

    def steps(self):
        dedup, *later = super().steps()
        return [as_join(dedup), *later]


ROWS = [
    ("no key at all", None, "a"), ("no key either", None, "b"),
    ("first of k1 is dropped by a later step: drop", "k1", "a"), ("second of k1", "k1", "a"),
    ("first of k2 fails later: boom", "k2", "a"), ("second of k2", "k2", "b"),
    ("first of k3 is unwritable", "k3", "a"), ("second of k3", "k3", "a"),
    ("first of k4", "k4", "a"), ("second of k4 fails later: boom", "k4", "b"),
    ("third of k4 is unwritable", "k4", "a"), ("fourth of k4, alone in its partition", "k4", "lonely"),
    *((f"row {n} with a key of its own, long enough to spread over shards", f"u{n}", "a") for n in range(40)),
    *((f"a later copy of row {n}", f"u{n}", "a") for n in range(0, 40, 3)),
]


def _run(slc, folder: Path, inputs: list[str]):
    outcome = run_slice(slc, inputs, str(folder), BeamExecutor(RunnerConfig(workers=1)), shard_bytes=400)
    stats = {key: value for key, value in outcome.stats.items() if key not in ("wall_seconds", "shuffles")}
    return output_bytes(outcome.slice_dir), stats, set(outcome.stats["shuffles"])


def test_keep_first_at_the_sink_writes_and_counts_what_a_join_does(tmp_path):
    halves = [ROWS[: len(ROWS) // 2], ROWS[len(ROWS) // 2 :]]
    inputs = []
    for index, half in enumerate(halves):
        path = tmp_path / f"rows-{index}.jsonl"
        path.write_text("".join(json.dumps({"text": t, "k": k, "p": p}) + "\n" for t, k, p in half))
        inputs.append(str(path))
    at_sink, counted, shuffles = _run(Rows(), tmp_path / "sink", inputs)
    joined, expected, _ = _run(RowsJoined(), tmp_path / "join", inputs)
    assert "dedup:pairs" in shuffles  # decided on pairs, not in a join
    assert counted == expected  # the shuffles differ: pairs at the sink, records in the join
    assert at_sink == joined
    steps = {step["name"]: step for step in counted["steps"]}
    assert steps["dedup"]["dropped"] == {"duplicate": 3 + 1 + 1 + 1 + 14}
    assert steps["shout"]["failed"] == 1 and counted["failed"] == 2  # k2's first; k3's first cannot be written
    assert not any(name.startswith("lonely") for name in at_sink)  # its one line was a duplicate
    assert len([name for name in at_sink if name.startswith("a-")]) > 2  # shards counted without duplicates
