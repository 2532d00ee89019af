"""Line dedup as cc_net runs it: key arrays per unit, shared keys per group, units read twice."""

import apache_beam as beam
import numpy as np
import pytest
from apache_beam.runners.portability.fn_api_runner import FnApiRunner
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to
from redpajama.core.records import Drop, Failure, Step
from redpajama.dedup import exact
from redpajama.dedup.shared_keys import (
    SharedKeyCounter,
    as_keys,
    held_shared,
    key_set,
    record_keys,
    unit_keys,
)
from redpajama.pipelines.beam.group_keys import ReadTwice
from redpajama.pipelines.beam.steps import FAILURES
from redpajama.slices.base import Slice, WorkUnit
from redpajama.slices.commoncrawl import line_dedup_step


def packed(*keys: int) -> bytes:
    return np.array(keys, dtype="<u8").tobytes()


def test_unit_keys_count_each_record_once():
    records = [packed(1, 2), packed(2, 3), packed(3), packed(9)]
    held, twice = unit_keys(records)
    assert held.tolist() == [1, 2, 3, 9] and twice.tolist() == [2, 3]
    assert record_keys([b"a" * 8, b"b" * 8, b"a" * 8]) in (b"a" * 8 + b"b" * 8, b"b" * 8 + b"a" * 8)
    with pytest.raises(ValueError):
        record_keys([b"short"])
    assert key_set(packed(5, 6)) == {packed(5), packed(6)}


def test_shared_key_counter_across_units_and_merges():
    rng = np.random.default_rng(3)
    units = [np.unique(rng.integers(0, 3_000_000, 400_000, dtype=np.uint64)) for _ in range(8)]
    counter = SharedKeyCounter()
    for index, held in enumerate(units):
        counter.add(held, held[:5] if index == 0 else np.zeros(0, dtype=np.uint64))
    keys, counts = np.unique(np.concatenate(units), return_counts=True)
    expected = np.union1d(keys[counts > 1], units[0][:5])
    assert np.array_equal(counter.shared(), expected)
    assert counter.distinct() == len(keys)
    assert np.array_equal(held_shared(units[1], expected), np.intersect1d(units[1], expected))
    assert held_shared(as_keys(b""), expected).size == 0


class Documents(Slice):
    """Documents listed in each unit's context; a unit with ``broken`` set fails after its documents."""

    name = "toy"
    summary = "documents from the unit's context"

    def read(self, unit: WorkUnit):
        for index, (group, text) in enumerate(unit.context["docs"]):
            yield f"{unit.source}|{index:03d}", {"text": text, "meta": {"_scope": group}}
        if unit.context.get("broken"):
            yield Failure(unit.source, "end", "truncated_archive", "cut")


class SkipMarked(Step):
    """Drops documents starting with "skip": they hold no lines in either read."""

    name = "select"

    def apply(self, record):
        return Drop("skipped") if record["text"].startswith("skip") else record


def _unit(name, docs, **context):
    return WorkUnit(name, context={"docs": docs, **context})


@pytest.mark.parametrize("parked", [False, True], ids=["read twice", "first read parked (local runs)"])
def test_line_dedup_over_two_reads_keeps_cc_net_semantics(parked, tmp_path):
    units = [
        _unit("f1", [("g", "Cookie banner\nAlpha story\nAlpha story"),  # a repeat inside one document: first kept
                     ("g", "skip me\nGamma story"),  # dropped before the step: holds nothing
                     ("g", "Only here\nOnly here\nDelta")]),
        _unit("f2", [("g", "cookie banner!\nBeta story"),  # ASCII punctuation counts: not the banner
                     ("g", "Cookie Banner\nGamma story"),  # the banner, normalised: shared across files
                     ("g", "COOKIE BANNER"),  # nothing left: dropped
                     ("h", "Cookie banner\nOwn group")]),  # another group: the banner is not shared there
        _unit("f3", [("h", "Own group\nEpsilon")], broken=True),  # "Own group" shared with f2's group-h document
        _unit("f4", []),  # no documents: a counted empty input
    ]
    with TestPipeline(runner=FnApiRunner()) as pipeline:
        spill = str(tmp_path / "spill") if parked else None
        read = pipeline | beam.Create(units) | ReadTwice(Documents(), [SkipMarked()], line_dedup_step(), spill)
        texts = (read["records"] | beam.FlatMap(lambda batch: batch)
                 | beam.Map(lambda item: (item[0], item[1]["text"], item[1]["meta"]["nlines"])))
        assert_that(texts, equal_to([
            ("f1|000", "Alpha story", 1),
            ("f1|002", "Only here\nDelta", 2),
            ("f2|000", "cookie banner!\nBeta story", 2),
            ("f2|001", "Gamma story", 1),
            ("f2|003", "Cookie banner", 1),
            ("f3|000", "Epsilon", 1),
        ]), label="records")
        reasons = read[FAILURES] | beam.Map(lambda failure: (failure.source, failure.reason))
        assert_that(reasons, equal_to([("f3", "truncated_archive"), ("f4", "empty_input")]), label="failures")


def test_line_dedup_matches_a_set_in_memory_on_random_documents():
    """The shuffle version against the plain two-pass algorithm, over files and groups."""
    rng = np.random.default_rng(11)
    vocabulary = [f"line {n}" for n in range(60)]
    units, everything = [], []
    for file in range(6):
        docs = []
        for _ in range(int(rng.integers(0, 12))):
            lines = [vocabulary[int(i)] for i in rng.integers(0, 60, int(rng.integers(1, 7)))]
            docs.append((f"g{file % 2}", "\n".join(lines)))
        units.append(_unit(f"f{file}", docs))
        everything += [(f"f{file}|{index:03d}", group, text) for index, (group, text) in enumerate(docs)]
    holders: dict = {}
    for _, group, text in everything:
        for digest in set(exact.line_hashes(text)):
            holders[(group, digest)] = holders.get((group, digest), 0) + 1
    expected = []
    for key, group, text in everything:
        shared = {digest for (g, digest), count in holders.items() if g == group and count > 1}
        kept, lines = exact.remove_lines(text, exact.line_hashes(text), shared)
        if lines:
            expected.append((key, kept))
    with TestPipeline(runner=FnApiRunner()) as pipeline:
        read = pipeline | beam.Create(units) | ReadTwice(Documents(), [], line_dedup_step())
        texts = read["records"] | beam.FlatMap(lambda batch: batch) | beam.Map(lambda item: (item[0], item[1]["text"]))
        assert_that(texts, equal_to(expected))
