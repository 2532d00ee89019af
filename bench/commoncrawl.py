"""CommonCrawl: documents per second per core, end to end, vs the models in a tight loop.

Input: the real CC-MAIN-2019-30 WET sample (697 documents) in ``COPIES`` distinct copies:
copy k rotates the words of every line by k (lines of fewer words repeat, as boilerplate
does), with a new record id and block digest, so that copies are new documents to line and
digest dedup. The default dedup scope is used (files given directly form one group per
snapshot, so line dedup runs across all of them, as cc_net's in-memory set does over a
shard). The pipeline runs with one local worker. The "kernel limit" is the same reader,
parsing, dedup and models (fastText LID, sentencepiece + KenLM, fastText classifier) in a
plain Python loop, timed per step. Target ratio: >= 0.7; cc_net's own pipeline did
370-430 documents/s/core on this sample (``../shared/DESIGN.md``).
"""

from __future__ import annotations

import os
import resource
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from redpajama.core.records import Drop
from redpajama.dedup import exact
from redpajama.models import catalog
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


def distinct_copies(folder: Path, copies: int) -> list[str]:
    """The WET sample ``copies`` times, each copy's lines reworded (see the module docstring)."""
    import base64
    import hashlib
    import io
    import uuid

    from warcio.archiveiterator import ArchiveIterator
    from warcio.warcwriter import WARCWriter

    files = []
    for copy in range(copies):
        for path in WET:
            target = folder / path.name.replace("repacked", f"copy{copy}")
            with path.open("rb") as source, target.open("wb") as sink:
                writer = WARCWriter(sink, gzip=True)
                for record in ArchiveIterator(source):
                    body = record.content_stream().read()
                    headers = record.rec_headers
                    if record.rec_type == "conversion":
                        body = "\n".join(_rotate(line, copy) for line in body.decode("utf-8").split("\n")).encode()
                        digest = "sha1:" + base64.b32encode(hashlib.sha1(body).digest()).decode()
                        new_id = uuid.uuid5(uuid.NAMESPACE_URL, f"{copy}{headers.get_header('WARC-Record-ID')}")
                        headers.replace_header("WARC-Record-ID", f"<urn:uuid:{new_id}>")
                        headers.replace_header("WARC-Block-Digest", digest)
                        headers.remove_header("WARC-Payload-Digest")
                    headers.remove_header("Content-Length")
                    writer.write_record(writer.create_warc_record(
                        headers.get_header("WARC-Target-URI"), record.rec_type, payload=io.BytesIO(body),
                        length=len(body), warc_headers=headers))
            files.append(str(target))
    return files


def _rotate(line: str, turns: int) -> str:
    words = line.split(" ")
    turns %= max(1, len(words))
    return " ".join(words[turns:] + words[:turns])


def kernel(slc: CommonCrawl, files: list[str]) -> tuple[int, float, dict, dict]:
    """Reader + every step in a loop: line dedup over all files in memory (one scope, as the
    pipeline's), digest dedup with a set; seconds per step."""
    parse, _, lid, perplexity, _, wikiref = slc.steps()
    for step in (lid, perplexity, wikiref):
        step.setup()
    timer = Counter()
    started = time.perf_counter()
    documents, seen_digests, outcome, parsed = 0, set(), Counter(), []
    for path in files:
        mark = time.perf_counter()
        for item in slc.read(WorkUnit(path, context={"scope": "all"})):
            documents += 1
            record = parse.apply(item[1])
            if isinstance(record, Drop):
                outcome[record.reason] += 1
                continue
            parsed.append(record)
        timer["read+parse"] += time.perf_counter() - mark
    mark = time.perf_counter()
    hashes = [exact.line_hashes(record["text"]) for record in parsed]
    holders = Counter(digest for doc in hashes for digest in set(doc))
    shared = {digest for digest, count in holders.items() if count > 1}
    timer["line_dedup"] += time.perf_counter() - mark
    for record, doc_hashes in zip(parsed, hashes, strict=True):
        mark = time.perf_counter()
        record["text"], lines = exact.remove_lines(record["text"], doc_hashes, shared)
        timer["line_dedup"] += time.perf_counter() - mark
        if not lines:
            outcome["duplicate_lines"] += 1
            continue
        result = record
        for name, step in (("language_id", lid), ("perplexity", perplexity)):
            mark = time.perf_counter()
            result = step.apply(result)
            timer[name] += time.perf_counter() - mark
            if isinstance(result, Drop):
                break
        if not isinstance(result, Drop):
            if result["meta"]["digest"] in seen_digests:
                result = Drop("duplicate_digest")
            else:
                seen_digests.add(result["meta"]["digest"])
                mark = time.perf_counter()
                result = wikiref.apply(result)
                timer["wikiref"] += time.perf_counter() - mark
        outcome[result.reason if isinstance(result, Drop) else "kept"] += 1
    return documents, time.perf_counter() - started, dict(outcome), {k: round(v, 2) for k, v in timer.items()}


def pipeline(slc: CommonCrawl, files: list[str]) -> tuple[dict, float]:
    with tempfile.TemporaryDirectory() as output:
        started = time.perf_counter()
        outcome = run_slice(slc, files, output, RunnerConfig(workers=1), quiet=True)
        return outcome.stats, time.perf_counter() - started


def main() -> dict:
    if not WET or not LID.exists():
        sys.exit("bench/commoncrawl: sample data not found under " + str(SHARED))
    if catalog.built_models() is None:
        sys.exit("bench/commoncrawl: build the models first (make demo, or redpajama models build)")
    with tempfile.TemporaryDirectory() as scratch:
        files = distinct_copies(Path(scratch), COPIES)
        slc = CommonCrawl(lid_model=str(LID))
        slc.validate()
        kernel_docs, kernel_seconds, kernel_outcome, kernel_steps = kernel(slc, files)
        stats, pipeline_seconds = pipeline(slc, files)
    kernel_rate = kernel_docs / kernel_seconds
    pipeline_rate = stats["read"] / pipeline_seconds
    figures = {
        "benchmark": "commoncrawl",
        "documents": stats["read"],
        "kept": stats["kept"],
        "kernel_kept": kernel_outcome.get("kept", 0),
        "kernel_seconds_per_step": kernel_steps,
        "dedup_scope": "snapshot group (default for files given directly)",
        "kernel_docs_per_s": round(kernel_rate, 1),
        "pipeline_docs_per_s_per_core": round(pipeline_rate, 1),
        "ratio": round(pipeline_rate / kernel_rate, 3),
        "target_ratio": 0.7,
        "ccnet_reference_docs_per_s": list(CCNET_REFERENCE),
        "vs_ccnet_reference": round(pipeline_rate / (sum(CCNET_REFERENCE) / 2), 2),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "models": slc.chosen_models["origin"],
        "machine": machine(),
    }
    return publish("commoncrawl", figures)


if __name__ == "__main__":
    main()
