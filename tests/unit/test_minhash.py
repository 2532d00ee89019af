"""MinHash pieces: shingles, signatures, LSH shape, bucket caps and connected components by shuffle."""

import apache_beam as beam
import numpy as np
from apache_beam.runners.portability.fn_api_runner import FnApiRunner
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to
from redpajama.core.records import NearDedupStep
from redpajama.dedup import minhash
from redpajama.pipelines.beam import shuffles


def test_shingles_ignore_case_and_punctuation_and_need_enough_words():
    a = minhash.shingle_hashes("The quick brown fox jumps over the lazy dog.")
    b = minhash.shingle_hashes("the QUICK, brown fox -- jumps over the lazy dog")
    assert len(a) == 5 and np.array_equal(a, b)
    assert len(minhash.shingle_hashes("too few words here")) == 0


def test_signature_estimates_jaccard():
    words = [f"w{i}" for i in range(3000)]
    a = minhash.shingle_hashes(" ".join(words))
    b = minhash.shingle_hashes(" ".join(words[:2400] + [f"x{i}" for i in range(600)]))
    exact = minhash.jaccard(np.unique(a), np.unique(b))
    estimate = np.mean(minhash.signature(a, 256, 1) == minhash.signature(b, 256, 1))
    assert abs(exact - 2396 / 3596) < 1e-9 and abs(estimate - exact) < 0.08


def test_lsh_shape_favours_recall_when_pairs_are_checked():
    checked = minhash.lsh_shape(NearDedupStep("n", text=str, threshold=0.8, verify=True))
    unchecked = minhash.lsh_shape(NearDedupStep("n", text=str, threshold=0.8, verify=False))
    assert checked == (16, 8) and unchecked == (9, 13)
    assert minhash.collision_probability(0.8, *checked) > 0.94 > minhash.collision_probability(0.8, *unchecked)
    keys = minhash.band_keys(np.arange(128, dtype=np.uint32), *checked)
    assert len(keys) == 16 and len(set(keys)) == 16 and keys == minhash.band_keys(np.arange(128, dtype=np.uint32), 16, 8)


class _Count:
    def __init__(self):
        self.seen = {}

    def inc(self, name, value=1):
        self.seen[name] = self.seen.get(name, 0) + value


def test_buckets_give_star_edges_and_are_capped():
    counters = _Count()
    edges = list(minhash.bucket_edges((b"k", ["d", "b", "e", "a", "c"]), counters, cap=3))
    assert edges == [("a", "b"), ("a", "c")] and counters.seen == {"capped_buckets": 1, "capped_members": 2}


def test_connected_components_by_min_label_propagation():
    edges = [("c", "d"), ("b", "c"), ("a", "b"), ("x", "y"), ("d", "e")]  # a chain of five and a pair
    with TestPipeline(runner=FnApiRunner()) as pipeline:
        roots = shuffles._components(pipeline | beam.Create(edges), rounds=5)
        assert_that(roots, equal_to([("a", "a"), ("b", "a"), ("c", "a"), ("d", "a"), ("e", "a"),
                                     ("x", "x"), ("y", "x")]))


def _text(record):
    return record["text"]


def test_near_duplicates_decide_the_same_with_records_and_shingles_spilled(tmp_path):
    words = [f"w{i}" for i in range(400)]
    base = " ".join(words)
    records = [
        ("a", {"text": base, "meta": {"id": "a"}}),
        ("b", {"text": base.replace("w7 ", "x7 "), "meta": {"id": "b"}}),  # one word changed: a near copy of a
        ("c", {"text": " ".join(reversed(words)), "meta": {"id": "c", "_unit": "u"}}),
        ("d", {"text": "too short", "meta": {"id": "d"}}),
    ]
    step = NearDedupStep(name="near", text=_text, threshold=0.8, num_perm=64, ngram=5)
    for spill in (None, str(tmp_path / "spill")):
        with TestPipeline(runner=FnApiRunner()) as pipeline:
            kept, dropped = pipeline | beam.Create(records) | shuffles.NearDuplicates("books", step, spill)
            assert_that(kept | beam.Map(lambda kv: (kv[0], kv[1]["meta"])), equal_to([
                ("a", {"id": "a", "cluster_size": 2}), ("c", {"id": "c", "_unit": "u", "cluster_size": 1}),
                ("d", {"id": "d", "cluster_size": 1})]), label="kept")
            assert_that(dropped | beam.Map(lambda kv: (kv[0], kv[1]["meta"]["cluster"], kv[1]["text"][:6])),
                        equal_to([("b", "a", "w0 w1 ")]), label="dropped")
    assert sorted(p.name for p in (tmp_path / "spill").iterdir())  # the records did wait on disk
