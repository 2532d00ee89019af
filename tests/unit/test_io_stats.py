import json

import apache_beam as beam
import pytest
import zstandard
from apache_beam.runners.portability.fn_api_runner import FnApiRunner
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to
from redpajama.pipelines.beam import sinks
from redpajama.pipelines.runs import sink
from redpajama.pipelines.runs.stats import AccountingError, build_stats, check_identity


def test_stable_shard_and_encoding():
    assert sink.stable_shard("wikipedia/en/12", 7) == sink.stable_shard("wikipedia/en/12", 7)
    assert {sink.stable_shard(f"id{i}", 4) for i in range(100)} == {0, 1, 2, 3}
    line = sink.encode_record({"text": "é", "meta": {"id": "x", "_internal": 1}})
    assert json.loads(line) == {"text": "é", "meta": {"id": "x"}}
    assert sink.shard_name("wiki", 3, 12, True) == "wiki-00003-of-00012.jsonl.zst"


def test_write_sorted_shards_is_complete_and_sorted(tmp_path):
    items = [("t", f"id{i}", f"{i:03d}", f'{{"n": {i}}}'.encode()) for i in reversed(range(40))]
    with TestPipeline(runner=FnApiRunner()) as pipeline:
        paths = pipeline | beam.Create(items) | sinks.WriteSortedShards(str(tmp_path), 1, num_shards=3)
        assert_that(paths | beam.Map(lambda p: p.rsplit("/", 1)[1]),
                    equal_to([f"t-0000{i}-of-00003.jsonl.zst" for i in range(3)]))
    numbers = []
    for shard in sorted(tmp_path.iterdir()):
        lines = zstandard.ZstdDecompressor().stream_reader(shard.open("rb")).read().decode().splitlines()
        values = [json.loads(line)["n"] for line in lines]
        assert values == sorted(values)
        numbers += values
    assert sorted(numbers) == list(range(40))


@pytest.mark.parametrize("num_shards", [1, 3])
def test_spilled_and_in_memory_sinks_write_the_same_bytes_with_ties_ordered_by_line(tmp_path, num_shards):
    # Keys repeat (ties go by the lines' bytes), lines differ in length, one name has a single line.
    items = [("t", f"id{i}", f"{i % 7:02d}", f'{{"n": {(i * 37) % 50}, "pad": "{"x" * (i % 5)}"}}'.encode())
             for i in range(50)] + [("u", "only", "00", b'{"n": 0}')]
    written = {}
    for spill in (None, str(tmp_path / "spill")):
        out = tmp_path / ("spilled" if spill else "memory")
        with TestPipeline(runner=FnApiRunner()) as pipeline:
            _ = pipeline | beam.Create(items) | sinks.WriteSortedShards(str(out), 1, num_shards=num_shards, spill=spill)
        written[spill is not None] = {p.name: p.read_bytes() for p in out.iterdir()}
    assert written[True] == written[False] and len(written[True]) == 2 * num_shards
    lines = [line for name in sorted(written[True]) if name.startswith("t-")
             for line in zstandard.ZstdDecompressor().stream_reader(written[True][name]).read().splitlines()]
    assert sorted(lines) == sorted(line for name, _, _, line in items if name == "t")
    if num_shards == 1:
        assert lines == [line for _, line in sorted((key, line) for name, _, key, line in items if name == "t")]


def test_empty_input_still_writes_one_empty_shard(tmp_path):
    with TestPipeline(runner=FnApiRunner()) as pipeline:
        paths = pipeline | beam.Create([]) | sinks.WriteSortedShards(str(tmp_path), 1 << 20, compressed=False, always=("t",))
        assert_that(paths | beam.Map(lambda p: p.rsplit("/", 1)[1]), equal_to(["t-00000-of-00001.jsonl"]))
    assert (tmp_path / "t-00000-of-00001.jsonl").read_bytes() == b""


def test_partitions_get_their_own_folders_and_shard_counts(tmp_path):
    big = [("2019-30/en_head", f"h{i}", f"{i:03d}", b"x" * 100) for i in range(30)]
    small = [("2020-05/en_middle", "m0", "000", b"y")]
    with TestPipeline(runner=FnApiRunner()) as pipeline:
        paths = pipeline | beam.Create(big + small) | sinks.WriteSortedShards(str(tmp_path), 1000)
        assert_that(paths | beam.Map(lambda p: p[len(str(tmp_path)) + 1 :]), equal_to(
            [f"2019-30/en_head-0000{i}-of-00004.jsonl.zst" for i in range(4)]
            + ["2020-05/en_middle-00000-of-00001.jsonl.zst"]))


def test_stats_from_counters_and_the_identity():
    counters = {
        "s/read/out": 10, "s/read/failed": 1, "s/plan/failed": 1,
        "s/a/in": 10, "s/a/out": 7, "s/a/dropped:short": 3,
        "s/b/in": 7, "s/b/out": 5, "s/b/failed": 1, "s/b/dropped:short": 1,
        "s/write/out": 5,
    }
    stats = build_stats("s", ["a", "b"], counters, 1.0)
    assert (stats["read"], stats["kept"], stats["dropped"], stats["failed"]) == (12, 5, {"short": 4}, 3)
    assert [step["dropped"] for step in stats["steps"]] == [{"short": 3}, {"short": 1}]
    check_identity(stats)
    stats["kept"] -= 1
    with pytest.raises(AccountingError):
        check_identity(stats)


def test_input_roots_and_relative_names(tmp_path):
    from redpajama.core.storage import input_root
    from redpajama.pipelines.runs.run import input_roots
    from redpajama.slices.base import RunContext
    from redpajama.slices.books import Books

    assert input_root("data/books/**/*.txt") == "data/books"
    assert input_root("data/books/x.txt") == "data/books"
    assert input_root(str(tmp_path)) == str(tmp_path)
    assert input_root("gs://bucket/pg19/*.jsonl") == "gs://bucket/pg19"
    assert input_roots([], ["/a/b/c.txt", "/a/d/e.txt"]) == ("/a",)
    slc = Books(context=RunContext(input_roots=("/data", "/data/books")))
    assert slc.relative_name("/data/books/x/y.txt") == "x/y.txt"
    assert slc.relative_name("/elsewhere/z.txt") == "z.txt"


class _Parts:
    """A slice whose plan cuts each input into units at the starts its context names."""

    @staticmethod
    def make():
        from redpajama.slices.base import Slice, WorkUnit

        class Parts(Slice):
            name = "parts"
            summary = "texts by unit"
            KEPT = {0: ["a"], 9: ["bb", "bb"], 10: ["ccc", "ccc", "ccc"]}

            def plan(self, source):
                for start, texts in self.KEPT.items():
                    yield WorkUnit(source, start, start + 1, {"texts": texts})

            def read(self, unit):
                for index, text in enumerate(unit.context["texts"]):
                    yield f"{unit.start:03d}|{index}", {"text": text, "meta": {"id": f"{unit.start}/{index}"}}

            def steps(self):
                return []

        return Parts()


def test_unit_yields_name_each_unit_by_its_input_and_start(tmp_path):
    """Kept documents and bytes per unit, in the units' order (input, then start), and per input,
    whatever the input's name holds; the bookkeeping is not output."""
    from redpajama.pipelines.beam.executor import BeamExecutor
    from redpajama.pipelines.runs.run import run_slice
    from redpajama.pipelines.runs.runner_config import RunnerConfig

    inputs = [tmp_path / "in" / "odd#@name.txt", tmp_path / "in" / "plain.txt"]
    for path in inputs:
        path.parent.mkdir(exist_ok=True)
        path.write_text("-")
    executor = BeamExecutor(RunnerConfig(workers=1))
    outcome = run_slice(_Parts.make(), [str(path) for path in inputs], str(tmp_path / "out"), executor)
    assert outcome.stats["unit_yields"] == {
        "per_unit": [[1, 1], [2, 4], [3, 9]] * 2, "per_input": [[6, 14], [6, 14]], "unattributed": [0, 0]}
    assert not [path for path in (tmp_path / "out").rglob("*") if "yield" in path.name]


def test_relative_names_do_not_depend_on_how_an_argument_spells_its_folder(tmp_path, monkeypatch):
    """Ids of books are their names relative to the argument's folder: a relative glob with a wildcard
    in its first folder names them from the current folder, and a folder named with glob characters
    is that folder, so two books of one name in two folders keep two ids."""
    from redpajama.pipelines.runs.run import input_roots, resolve_inputs
    from redpajama.slices.base import RunContext
    from redpajama.slices.books import Books

    for name in ("a/1.txt", "b/1.txt", "run[1]/x.txt", "run1/x.txt"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("text\n")
    monkeypatch.chdir(tmp_path)

    def names(argument: str) -> list[str]:
        files = resolve_inputs([argument], None)
        slc = Books(context=RunContext(input_roots=input_roots([argument], files)))
        return sorted(slc.relative_name(path) for path in files)

    assert names("**/1.txt") == names("*/1.txt") == names("./*/1.txt") == names(f"{tmp_path}/*/1.txt") == ["a/1.txt", "b/1.txt"]
    assert names("run[1]") == names(str(tmp_path / "run[1]")) == names("run[1]/") == names("run1") == ["x.txt"]
