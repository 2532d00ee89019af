"""Wikipedia: pages per second per core through the Beam pipeline vs the cleaning alone.

Both sides process the same real pages (the Latgalian dump and the English excerpt) on
one core: the pipeline with one local worker (read, select, clean, sort, write), the
"kernel" as the same reader and steps in a plain loop. Ratio target: >= 0.7.
"""

from __future__ import annotations

import os
import resource
import sys
import tempfile
import time
from pathlib import Path

from redpajama.pipelines.options import RunnerConfig
from redpajama.pipelines.run import run_slice
from redpajama.slices.base import WorkUnit
from redpajama.slices.wikipedia import Wikipedia

from bench.results_io import machine, publish

SHARED = Path(os.environ.get("REDPAJAMA_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
INPUTS = [
    SHARED / "wikipedia/ltg/dumpster-dive-ltgwiki-latest-pages-articles.xml.bz2",
    SHARED / "wikipedia/en/gensim-enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2",
]


def kernel(slc: Wikipedia) -> tuple[int, float]:
    steps = slc.steps()
    for step in steps:
        step.setup()
    started = time.perf_counter()
    pages = 0
    for path in INPUTS:
        for item in slc.read(WorkUnit(str(path))):
            pages += 1
            record = item[1]
            for step in steps:
                record = step.apply(record)
                if not isinstance(record, dict):
                    break
    return pages, time.perf_counter() - started


def pipeline(slc: Wikipedia) -> tuple[int, float]:
    with tempfile.TemporaryDirectory() as output:
        started = time.perf_counter()
        outcome = run_slice(slc, [str(p) for p in INPUTS], output, RunnerConfig(workers=1), quiet=True)
        return outcome.stats["read"], time.perf_counter() - started


def main() -> dict:
    missing = [str(p) for p in INPUTS if not p.exists()]
    if missing:
        sys.exit(f"bench/wikipedia: sample data not found: {missing}")
    slc = Wikipedia()
    kernel_pages, kernel_seconds = kernel(slc)
    pipeline_pages, pipeline_seconds = pipeline(slc)
    figures = {
        "benchmark": "wikipedia",
        "pages": pipeline_pages,
        "kernel_pages_per_s": round(kernel_pages / kernel_seconds, 1),
        "pipeline_pages_per_s_per_core": round(pipeline_pages / pipeline_seconds, 1),
        "ratio": round((pipeline_pages / pipeline_seconds) / (kernel_pages / kernel_seconds), 3),
        "target_ratio": 0.7,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "machine": machine(),
    }
    return publish("wikipedia", figures)


if __name__ == "__main__":
    main()
