"""CommonCrawl: documents per second per core, end to end, vs the same work without Beam; shuffle volume.

Input: the real CC-MAIN-2019-30 WET sample (697 documents) in ``COPIES`` distinct copies:
copy k rotates the words of every line by k (lines of fewer words repeat, as boilerplate
does), with a new record id and block digest, so that copies are new documents to line and
digest dedup. The default dedup scope is used (files given directly form one group per
snapshot, as cc_net's shard). The pipeline runs with one local worker. The same work without
Beam is the same recipe run by the in-process executor (``--executor inprocess``: the same files,
each shuffle in memory, each file read once). The two alternate for ``ROUNDS`` rounds; medians
are compared, and both must keep the same documents.

Where the time goes: the recipe run once more by the in-process executor, which times reading
and each step (its ``apply``, or its shuffle in memory); its counters, and the line hashes of
the parsed documents, give what the shuffles this slice used before would have moved.

Shuffle volume: the pipeline's ``stats.json`` counts the elements and bytes going into each of
its shuffles; they are given per GB of WET input (gzip, as CommonCrawl ships it) and projected
to the five snapshots of the recipe, with what Dataflow Shuffle would bill for those bytes.
The "before" figures estimate the per-line and text shuffles this slice used until they were
replaced, from that run's counts.
"""

from __future__ import annotations

import os
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

from redpajama.dedup import exact
from redpajama.models import catalog
from redpajama.pipelines.beam.executor import BeamExecutor
from redpajama.pipelines.inprocess.executor import InProcessExecutor
from redpajama.pipelines.inprocess.head import run_through
from redpajama.pipelines.runs.run import run_slice
from redpajama.pipelines.runs.runner_config import RunnerConfig
from redpajama.slices.commoncrawl import CommonCrawl

from bench.results_io import machine, publish

SHARED = Path(os.environ.get("REDPAJAMA_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
WET = sorted((SHARED / "commoncrawl" / "wet").glob("CC-MAIN-2019-30-repacked-*.warc.wet.gz"))
LID = SHARED / "models" / "fasttext-lid" / "lid.176.ftz"
COPIES = int(os.environ.get("CC_BENCH_COPIES", "16"))
ROUNDS = int(os.environ.get("CC_BENCH_ROUNDS", "3"))
TARGET_RATIO = 0.85
# The five snapshots, projected from one published crawl of the same years: CommonCrawl's
# February 2019 crawl holds 2.9 billion pages in 64,000 WET files, 7.62 TiB compressed
# (commoncrawl.org/2019/03/february-2019-crawl-archive-now-available/).
SNAPSHOTS = 5
SNAPSHOT_WET_BYTES = 7.62 * 2**40
SNAPSHOT_FILES = 64_000
SNAPSHOT_SOURCE = "5 x CommonCrawl's February 2019 crawl: 7.62 TiB of WET, 2.9 B pages (its announcement)"
# Dataflow bills batch shuffle by the bytes it processes (cloud.google.com/dataflow/pricing);
# the rate is the us-central1 list price as last read; check the page, rates change by region.
SHUFFLE_USD_PER_GB = float(os.environ.get("SHUFFLE_USD_PER_GB", "0.011"))


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


def where_the_time_goes(slc: CommonCrawl, files: list[str]) -> tuple[dict, dict]:
    """The recipe run once more by the in-process executor, nothing written: seconds spent reading
    and in each step (a step's ``apply``, or its shuffle in memory), and the counts of the shuffles
    this slice used before (a (line, holder) element per distinct line of a parsed document, the
    parsed text joined back, the text reaching digest dedup grouped by digest)."""
    whole = run_through(slc, files, slc.steps()[-1].name)
    parsed = run_through(slc, files, "parse")
    counters = whole.counters
    before = {
        "line_elements": sum(len(set(exact.line_hashes(text))) for text in parsed.texts),
        "line_join_text_bytes": counters.get(f"{slc.name}/line_dedup/bytes_in", 0),
        "digest_join_elements": counters.get(f"{slc.name}/digest_dedup/in", 0),
        "digest_join_text_bytes": counters.get(f"{slc.name}/digest_dedup/bytes_in", 0),
    }
    return {step: round(seconds, 2) for step, seconds in whole.seconds.items()}, before


EXECUTORS = {"pipeline": lambda: BeamExecutor(RunnerConfig(workers=1)), "inprocess": InProcessExecutor}


def timed_run(slc: CommonCrawl, files: list[str], executor: str) -> tuple[dict, float]:
    """One run of the slice by ``executor`` (``pipeline``: Beam, one local worker; ``inprocess``)."""
    with tempfile.TemporaryDirectory() as output:
        started = time.perf_counter()
        outcome = run_slice(slc, files, output, EXECUTORS[executor](), quiet=True)
        return outcome.stats, time.perf_counter() - started


PER_FILE = ("units", "line_dedup:units", "line_dedup:key_arrays", "line_dedup:shared_keys")  # one element per file


def shuffle_volume(shuffles: dict, before: dict, wet_bytes: int, files: int, documents: int) -> dict:
    """Each shuffle's elements and bytes per GB of WET input (per file for the shuffles with one
    element per file: the benchmark's files are far smaller than CommonCrawl's), projected to the
    five snapshots."""
    per_gb = 1e9 / wet_bytes
    projected_gb = SNAPSHOTS * SNAPSHOT_WET_BYTES / 1e9
    projected_files = SNAPSHOTS * SNAPSHOT_FILES
    rows = {}
    for label, volume in sorted(shuffles.items()):
        size = volume["bytes"] * per_gb
        row = {"mb_per_gb": round(size / 1e6, 3), "snapshots_tb": round(size * projected_gb / 1e12, 2)}
        if label in PER_FILE:
            row["elements_per_file"] = round(volume["elements"] / files, 2)
            row["snapshots_elements"] = round(volume["elements"] / files * projected_files)
        else:
            row["elements_per_gb"] = round(volume["elements"] * per_gb)
            row["snapshots_elements"] = round(volume["elements"] * per_gb * projected_gb)
        rows[label] = row
    total_tb = sum(row["snapshots_tb"] for row in rows.values())
    old = {"line_dedup: one (line, holder) element per distinct line of a document": (before["line_elements"], 30),
           "line_dedup: every record's text joined back": (before["line_join_text_bytes"], 1),
           "digest_dedup: the text of every record grouped by digest": (before["digest_join_text_bytes"], 1)}
    before_mb = {label: round(count * size * per_gb / 1e6, 1) for label, (count, size) in old.items()}
    before_tb = sum(before_mb.values()) * projected_gb / 1e6
    return {
        "wet_gb_measured": round(wet_bytes / 1e9, 4),
        "documents_per_gb": round(documents * per_gb),
        "per_shuffle": rows,
        "total_mb_per_gb": round(sum(row["mb_per_gb"] for row in rows.values()), 2),
        "snapshots": SNAPSHOT_SOURCE,
        "snapshots_wet_tb": round(projected_gb / 1e3, 1),
        "snapshots_shuffle_tb": round(total_tb, 1),
        "snapshots_shuffle_elements": sum(row["snapshots_elements"] for row in rows.values()),
        "shuffle_usd_per_gb": SHUFFLE_USD_PER_GB,
        "snapshots_shuffle_usd": round(total_tb * 1000 * SHUFFLE_USD_PER_GB),
        "before_mb_per_gb_estimated": before_mb,
        "before_line_elements_per_gb": round(before["line_elements"] * per_gb),
        "before_snapshots_tb_estimated": round(before_tb, 1),
        "before_snapshots_elements_estimated": round(before["line_elements"] * per_gb * projected_gb),
        "before_snapshots_usd_estimated": round(before_tb * 1000 * SHUFFLE_USD_PER_GB),
    }


def main() -> dict:
    if not WET or not LID.exists():
        sys.exit("bench/commoncrawl: sample data not found under " + str(SHARED))
    if catalog.built_models() is None:
        sys.exit("bench/commoncrawl: build the models first (make demo, or redpajama models build)")
    times: dict[str, list[float]] = {"inprocess": [], "pipeline": []}
    stats: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as scratch:
        files = distinct_copies(Path(scratch), COPIES)
        wet_bytes = sum(os.path.getsize(path) for path in files)
        slc = CommonCrawl(lid_model=str(LID))
        slc.validate()
        for round_number in range(ROUNDS):
            order = ("inprocess", "pipeline") if round_number % 2 == 0 else ("pipeline", "inprocess")
            for who in order:
                stats[who], seconds = timed_run(slc, files, who)
                times[who].append(round(seconds, 2))
                print(f"commoncrawl round {round_number + 1}: {who} {seconds:.1f}s", flush=True)
        step_seconds, before = where_the_time_goes(slc, files)
        print(f"commoncrawl: where the time goes {step_seconds}", flush=True)
    beam, local = stats["pipeline"], stats["inprocess"]
    if (beam["read"], beam["kept"]) != (local["read"], local["kept"]):
        sys.exit(f"bench/commoncrawl: the executors disagree: Beam read {beam['read']} kept {beam['kept']}, "
                 f"in-process read {local['read']} kept {local['kept']}")
    inprocess_rate = local["read"] / statistics.median(times["inprocess"])
    pipeline_rate = beam["read"] / statistics.median(times["pipeline"])
    figures = {
        "benchmark": "commoncrawl",
        "documents": beam["read"],
        "kept": beam["kept"],
        "inprocess_seconds": times["inprocess"],
        "pipeline_seconds": times["pipeline"],
        "seconds_per_step": step_seconds,
        "seconds_per_step_by": "the in-process executor (reading, then each step's apply or shuffle)",
        "dedup_scope": "one group per snapshot (files given directly)",
        "inprocess_docs_per_s": round(inprocess_rate, 1),
        "pipeline_docs_per_s_per_core": round(pipeline_rate, 1),
        "ratio": round(pipeline_rate / inprocess_rate, 3),
        "ratio_over": "the in-process executor (the same recipe without Beam)",
        "target_ratio": TARGET_RATIO,
        "shuffles": shuffle_volume(beam.get("shuffles", {}), before, wet_bytes, len(files), beam["read"]),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "models": slc.chosen_models["origin"],
        "machine": machine(),
    }
    return publish("commoncrawl", figures)


if __name__ == "__main__":
    main()
