"""CommonCrawl: documents per second per core, end to end, vs the models in a tight loop.

Input: the real CC-MAIN-2019-30 WET sample (697 documents), copied ``COPIES`` times so
start-up does not dominate; line dedup runs per file (``--dedup-scope file``) so every
copy goes through the same work, and digest dedup removes the copies before the
classifier. The pipeline runs with one local worker. The "kernel limit" is the same
reader, parsing, dedup and models (fastText LID, sentencepiece + KenLM, fastText
classifier) applied in a plain Python loop. Target ratio: >= 0.7. Peak RSS is this
process's, which with one local worker includes the runner's in-memory shuffle.
"""

from __future__ import annotations

import os
import resource
import shutil
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from redpajama.dedup import exact
from redpajama.filters import models
from redpajama.filters.base import Drop
from redpajama.pipelines.options import RunnerConfig
from redpajama.pipelines.run import run_slice
from redpajama.slices.base import WorkUnit
from redpajama.slices.commoncrawl import CommonCrawl

from bench.results_io import machine, publish

SHARED = Path(os.environ.get("REDPAJAMA_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
WET = sorted((SHARED / "commoncrawl" / "wet").glob("CC-MAIN-2019-30-repacked-*.warc.wet.gz"))
LID = SHARED / "models" / "fasttext-lid" / "lid.176.ftz"
COPIES = 16
CCNET_REFERENCE = (370, 430)  # cc_net's own pipeline on these 697 documents, 1 core (docs/s, ../shared/DESIGN.md)


def kernel(slc: CommonCrawl, files: list[str]) -> tuple[int, float, dict]:
    """Reader + every step in a loop: line dedup per file in memory, digest dedup with a set."""
    parse, _, lid, perplexity, _, wikiref = slc.steps()
    for step in (lid, perplexity, wikiref):
        step.setup()
    started = time.perf_counter()
    documents, seen_digests, outcome = 0, set(), Counter()
    for path in files:
        parsed = []
        for item in slc.read(WorkUnit(path, context={"scope": path})):
            documents += 1
            record = parse.apply(item[1])
            if isinstance(record, Drop):
                outcome[record.reason] += 1
                continue
            parsed.append(record)
        hashes = [exact.line_hashes(record["text"]) for record in parsed]
        holders = Counter(digest for doc in hashes for digest in set(doc))
        shared = {digest for digest, count in holders.items() if count > 1}
        for record, doc_hashes in zip(parsed, hashes, strict=True):
            record["text"], lines = exact.remove_lines(record["text"], doc_hashes, shared)
            if not lines:
                outcome["duplicate_lines"] += 1
                continue
            result = lid.apply(record)
            if not isinstance(result, Drop):
                result = perplexity.apply(result)
            if not isinstance(result, Drop):
                if result["meta"]["digest"] in seen_digests:
                    result = Drop("duplicate_digest")
                else:
                    seen_digests.add(result["meta"]["digest"])
                    result = wikiref.apply(result)
            outcome[result.reason if isinstance(result, Drop) else "kept"] += 1
    return documents, time.perf_counter() - started, dict(outcome)


def pipeline(slc: CommonCrawl, files: list[str]) -> tuple[dict, float]:
    with tempfile.TemporaryDirectory() as output:
        started = time.perf_counter()
        outcome = run_slice(slc, files, output, RunnerConfig(workers=1), quiet=True)
        return outcome.stats, time.perf_counter() - started


def main() -> dict:
    if not WET or not LID.exists():
        sys.exit("bench/commoncrawl: sample data not found under " + str(SHARED))
    if models.built_models() is None:
        sys.exit("bench/commoncrawl: build the models first (make demo, or redpajama models build)")
    with tempfile.TemporaryDirectory() as scratch:
        files = []
        for copy in range(COPIES):
            for path in WET:
                target = Path(scratch) / path.name.replace("repacked", f"copy{copy}")
                shutil.copy(path, target)
                files.append(str(target))
        slc = CommonCrawl(lid_model=str(LID), dedup_scope="file")
        slc.validate()
        kernel_docs, kernel_seconds, kernel_outcome = kernel(slc, files)
        stats, pipeline_seconds = pipeline(slc, files)
    kernel_rate = kernel_docs / kernel_seconds
    pipeline_rate = stats["read"] / pipeline_seconds
    figures = {
        "benchmark": "commoncrawl",
        "documents": stats["read"],
        "kept": stats["kept"],
        "kernel_kept": kernel_outcome.get("kept", 0),
        "kernel_docs_per_s": round(kernel_rate, 1),
        "pipeline_docs_per_s_per_core": round(pipeline_rate, 1),
        "ratio": round(pipeline_rate / kernel_rate, 3),
        "target_ratio": 0.7,
        "ccnet_reference_docs_per_s": list(CCNET_REFERENCE),
        "vs_ccnet_reference": round(pipeline_rate / (sum(CCNET_REFERENCE) / 2), 2),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "models": slc.resolve_models()["origin"],
        "machine": machine(),
    }
    return publish("commoncrawl", figures)


if __name__ == "__main__":
    main()
