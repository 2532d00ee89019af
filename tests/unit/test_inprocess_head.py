"""The head of a recipe (``inprocess.head.run_through``): a slice's steps up to and including a
named one, its records in memory, are exactly what a run of those steps writes."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import zstandard
from redpajama.pipelines.inprocess.executor import InProcessExecutor
from redpajama.pipelines.inprocess.head import READ, run_through
from redpajama.pipelines.runs.recipe import WRITE, failure_line, to_line
from redpajama.pipelines.runs.run import run_slice
from redpajama.slices.commoncrawl import CommonCrawl

from tests.conftest import CC_WET, need
from tests.unit.test_inprocess import Tag, Threads, _threads

STEPS = [step.name for step in Threads().steps()]


class Through(Threads):
    """Threads whose recipe ends after one of its steps."""

    def __init__(self, reference: str, last: str):
        super().__init__(reference)
        self.last = last

    def steps(self):
        steps = super().steps()
        return steps[: [step.name for step in steps].index(self.last) + 1]


def _written_lines(slice_dir: str) -> list[bytes]:
    lines = []
    for path in sorted(Path(slice_dir).glob("*.jsonl.zst")):
        lines += zstandard.ZstdDecompressor().stream_reader(path.open("rb")).read().splitlines()
    return lines


@pytest.mark.parametrize("last", STEPS)
def test_the_records_after_a_step_are_those_a_run_of_the_steps_up_to_it_writes(tmp_path, last):
    inputs, reference = _threads(tmp_path)
    head = run_through(Threads(reference), inputs, last)
    assert head.steps == tuple(STEPS[: STEPS.index(last) + 1])
    assert [key for key, _ in head.records] == sorted(key for key, _ in head.records)
    run = run_slice(Through(reference, last), inputs, str(tmp_path / "run"), InProcessExecutor(), quiet=True)
    lines, unwritable = [], 0
    for item in head.records:
        try:
            lines.append(to_line(item, Threads()).line)
        except (TypeError, ValueError):
            unwritable += 1  # no line can hold it: the run fails it at its writer
    assert sorted(lines) == sorted(_written_lines(run.slice_dir)) and lines
    assert run.stats["kept"] == len(lines)
    assert head.kept_after(READ) == 8 + 6  # the rows of the two files, less a broken row and a lone surrogate
    errors = [json.loads(line) for path in sorted(Path(run.slice_dir, "_errors").glob("*.jsonl"))
              for line in path.read_text().splitlines()]
    assert sorted(failure_line(f).line for f in head.failures) == sorted(
        json.dumps(error, ensure_ascii=False).encode() for error in errors if error["step"] != WRITE)
    assert sum(error["step"] == WRITE for error in errors) == unwritable  # no line holds them: failed at the writer
    assert head.kept_after(last) == len(head.records)
    assert set(head.seconds) == {READ, *head.steps} and min(head.seconds.values()) >= 0


class Slow(Tag):
    """A per-record step that takes at least ``PAUSE`` seconds per record."""

    def apply(self, record):
        time.sleep(PAUSE)
        return super().apply(record)


PAUSE = 0.02


class SlowThreads(Threads):
    def steps(self):
        return [Slow(), *super().steps()[1:]]


def test_where_the_time_goes_counts_each_steps_own_time(tmp_path):
    inputs, reference = _threads(tmp_path)
    head = run_through(SlowThreads(reference), inputs, "tag")
    tagged = head.counters["threads/tag/in"]
    assert tagged > 5 and head.seconds["tag"] >= tagged * PAUSE  # sleep never returns early


def test_where_the_time_goes_with_a_group_key_step_read_twice():
    head = run_through(CommonCrawl(), [str(need(CC_WET[0]))], "line_dedup")
    assert head.steps == ("parse", "line_dedup") and head.kept_after("line_dedup") > 100
    assert set(head.seconds) == {READ, "parse", "line_dedup"} and min(head.seconds.values()) > 0


def test_a_step_the_recipe_lacks_is_one_clear_error(tmp_path):
    inputs, reference = _threads(tmp_path)
    with pytest.raises(ValueError, match=r"no step 'nope' in the recipe \(its steps: tag, thread, listed"):
        run_through(Threads(reference), inputs, "nope")
    head = run_through(Threads(reference), inputs, "tag")
    with pytest.raises(KeyError, match="not one of the steps run"):
        head.kept_after("near")


def test_commoncrawl_line_dedup_scope_all_is_one_group_across_snapshots():
    slc = CommonCrawl(dedup_scope="all")
    units = [unit for path in ("CC-MAIN-2019-30-a.warc.wet.gz", "CC-MAIN-2023-06-b.warc.wet.gz")
             for unit in slc.plan(path)]
    assert [unit.context for unit in units] == [{"snapshot": "2019-30", "scope": "all"},
                                                {"snapshot": "2023-06", "scope": "all"}]
    per_snapshot = [unit.context["scope"] for path in ("CC-MAIN-2019-30-a.warc.wet.gz", "CC-MAIN-2023-06-b.warc.wet.gz")
                    for unit in CommonCrawl().plan(path)]
    assert per_snapshot == ["2019-30", "2023-06"]
