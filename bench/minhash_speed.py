"""MinHash speed: signature MB/s per core including shingling, and memory as the corpus doubles.

1. On the real Gutenberg sample, the same word 5-gram shingle hashes go into rensa's
   R-MinHash (what the pipeline uses) and into datasketch's MinHash: MB of text per second
   on one core for each, shingling included. Target: >= 10 MB/s.
2. The Books slice (exact + MinHash dedup, two local worker processes) on the sample, then
   on 2x and 4x the sample (copies with 1 % of words changed, so they reach the MinHash
   stage): peak RSS of the largest worker must stay flat. The launcher's own RSS is shown
   too: the local runner keeps its shuffles in the launcher's memory.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from redpajama.dedup.minhash import shingle_hashes, signature
from redpajama.slices.books import decode_book

from bench.books_sample import sample_books
from bench.results_io import machine, publish

NUM_PERM = 128


def signature_speed() -> dict:
    from datasketch import MinHash

    texts = [decode_book(p.read_bytes()) for p in sample_books()]
    megabytes = sum(len(t.encode("utf-8")) for t in texts) / 1e6
    started = time.perf_counter()
    for text in texts:
        signature(shingle_hashes(text), NUM_PERM, 1)
    rensa_seconds = time.perf_counter() - started
    started = time.perf_counter()
    for text in texts:
        minhash = MinHash(num_perm=NUM_PERM, seed=1, hashfunc=int)
        minhash.update_batch((shingle_hashes(text) & np.uint64(0xFFFFFFFF)).tolist())
    datasketch_seconds = time.perf_counter() - started
    return {
        "books": len(texts),
        "mb": round(megabytes, 1),
        "rensa_mb_per_s": round(megabytes / rensa_seconds, 1),
        "datasketch_mb_per_s": round(megabytes / datasketch_seconds, 1),
        "target_mb_per_s": 10,
    }


_RUN = """
import json, resource, sys
from redpajama.pipelines.beam.executor import BeamExecutor
from redpajama.pipelines.runs.runner_config import RunnerConfig
from redpajama.pipelines.runs.run import run_slice
from redpajama.slices.books import Books
stats = run_slice(Books(), sys.argv[2:], sys.argv[1], BeamExecutor(RunnerConfig(workers=2)), quiet=True).stats
print(json.dumps({"read": stats["read"], "kept": stats["kept"],
                  "worker_peak_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
                  "launcher_peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def memory_as_corpus_doubles(scales=(1, 2, 4)) -> list[dict]:
    from bench.books_sample import _edited

    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        books = sample_books()
        for scale in scales:
            inputs = [str(p) for p in books]
            for copy in range(1, scale):
                for number, path in enumerate(books):
                    target = Path(scratch) / f"copy{copy}" / f"{number:02d}-{path.name}"
                    target.parent.mkdir(exist_ok=True)
                    if not target.exists():
                        target.write_text(_edited(decode_book(path.read_bytes()), 0.01, copy * 100 + number))
                    inputs.append(str(target))
            output = Path(scratch) / f"out{scale}"
            result = subprocess.run([sys.executable, "-c", _RUN, str(output), *inputs],
                                    capture_output=True, text=True, check=True)
            figures = json.loads(result.stdout.strip().splitlines()[-1])
            rows.append({"scale": scale, "books": figures["read"], "kept": figures["kept"],
                         "worker_peak_mb": round(figures["worker_peak_mb"], 1),
                         "launcher_peak_mb": round(figures["launcher_peak_mb"], 1)})
    return rows


def main() -> dict:
    figures = {"benchmark": "minhash_speed", **signature_speed(), "memory": memory_as_corpus_doubles(),
               "machine": machine()}
    return publish("minhash_speed", figures)


if __name__ == "__main__":
    main()
