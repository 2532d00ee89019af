"""MinHash near-dedup quality on the real Gutenberg sample plus planted near-duplicates.

The Books slice runs on all of it; its clusters (kept book + ``_dropped/`` members) are
compared pair by pair with the clusters that exact word 5-gram Jaccard gives at the same
threshold. Targets: precision and recall >= 0.95.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

import zstandard
from redpajama.pipelines.beam.executor import BeamExecutor
from redpajama.pipelines.runs.run import run_slice
from redpajama.pipelines.runs.runner_config import RunnerConfig
from redpajama.slices.books import DEFAULT_THRESHOLD, Books

from bench.books_sample import GUTENBERG, components, ground_truth, pair_scores, plant, sample_books
from bench.results_io import machine, publish


def _lines(folder: Path) -> list[dict]:
    out = []
    for shard in sorted(folder.glob("*.jsonl.zst")):
        with shard.open("rb") as handle:
            out += [json.loads(x) for x in zstandard.ZstdDecompressor().stream_reader(handle).read().splitlines()]
    return out


def predicted_clusters(slice_dir: Path) -> dict[str, str]:
    """Book path -> the order key of the book its cluster kept."""
    clusters = {}
    for record in _lines(slice_dir):
        path = record["meta"]["id"].removeprefix("gutenberg/")
        clusters["/" + path] = f"gutenberg|{path}|{0:09d}"
    for record in _lines(slice_dir / "_dropped"):
        clusters["/" + record["meta"]["id"].removeprefix("gutenberg/")] = record["meta"]["cluster"]
    return clusters


def evaluate(threshold: float = DEFAULT_THRESHOLD, verify: bool = True) -> dict:
    with tempfile.TemporaryDirectory() as scratch:
        planted_dir = Path(scratch) / "planted"
        plant(planted_dir)
        paths = sample_books() + sorted(planted_dir.glob("*.txt"))
        truth_pairs = ground_truth(paths)
        nodes = [str(p) for p in paths]
        truth = components(truth_pairs, threshold, nodes)
        outcome = run_slice(Books(threshold=threshold, no_verify=not verify), nodes, str(Path(scratch) / "out"),
                            BeamExecutor(RunnerConfig(workers=2)), quiet=True)
        predicted = predicted_clusters(Path(outcome.slice_dir))
    predicted = {node: predicted[node if node.startswith("/") else "/" + node] for node in nodes}
    precision, recall, found, wanted = pair_scores(predicted, truth)
    near = sum(1 for value in truth_pairs.values() if threshold - 0.1 <= value < threshold + 0.1)
    return {
        "benchmark": "minhash_quality" + ("" if verify else "_unverified"),
        "books": len(nodes),
        "threshold": threshold,
        "true_duplicate_pairs": wanted,
        "found_pairs": found,
        "pairs_within_0.1_of_threshold": near,
        "precision": round(precision, 4),
        "recall": round(recall, 4),
        "target": 0.95,
        "kept": outcome.stats["kept"],
        "true_clusters": len(set(truth.values())),
        "machine": machine(),
    }


def main() -> list[dict]:
    if not GUTENBERG.exists():
        sys.exit(f"bench/minhash_quality: {GUTENBERG} not found")
    return [publish("minhash_quality", evaluate()), publish("minhash_quality_unverified", evaluate(verify=False))]


if __name__ == "__main__":
    main()
