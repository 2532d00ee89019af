"""C4, GitHub and arXiv: documents and MB per second per core, pipeline vs the slice's functions in a loop.

Each slice runs on real data made large enough for start-up not to dominate: the real C4
records repeated in the shipping format (240,000 records: at 60,000 the pipeline's fixed
start-up of a few seconds still halved C4's ratio, while its per-record cost was in target),
installed packages' sources as repositories,
and the real LaTeX projects packed into bulk tars. The kernel is the slice's own reader and
steps in a plain loop (a keep-first set stands in for the dedup shuffle), encoding and
compressing the kept records as the sink does; the pipeline runs
with one local worker. Target ratio: >= 0.7.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import resource
import shutil
import sys
import tarfile
import tempfile
import time
from importlib import metadata
from pathlib import Path

import zstandard
from redpajama.core.records import Drop, KeepFirstStep
from redpajama.pipelines.beam.executor import BeamExecutor
from redpajama.pipelines.runs import sink
from redpajama.pipelines.runs.run import run_slice
from redpajama.pipelines.runs.runner_config import RunnerConfig
from redpajama.slices.arxiv import Arxiv
from redpajama.slices.c4 import C4
from redpajama.slices.github import GitHub

from bench.results_io import machine, publish

SHARED = Path(os.environ.get("REDPAJAMA_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
LID = SHARED / "models" / "fasttext-lid" / "lid.176.ftz"
TOKENIZER = SHARED / "models" / "gpt-neox-20b" / "20B_tokenizer.json"
PACKAGES = ("click", "mwparserfromhell", "pytz", "lxml", "requests", "idna", "urllib3", "pygments", "apache_beam")


def input_bytes(inputs: list[str]) -> int:
    total = 0
    for item in inputs:
        path = Path(item)
        total += sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.is_dir() else path.stat().st_size
    return total


def kernel(slc, inputs: list[str]) -> tuple[int, float]:
    """Documents and seconds for the reader, the steps and the output encoding in a loop."""
    steps = slc.steps()
    for step in steps:
        if hasattr(step, "setup"):
            step.setup()
    seen: dict[str, set] = {}
    documents = 0
    compressor = zstandard.ZstdCompressor(level=sink.ZSTD_LEVEL).compressobj()
    started = time.perf_counter()
    for source in inputs:
        for unit in slc.plan(source):
            if not hasattr(unit, "source"):
                continue
            for item in slc.read(unit):
                if not isinstance(item, tuple):
                    continue
                documents += 1
                record = item[1]
                for step in steps:
                    if isinstance(step, KeepFirstStep):
                        key = step.key(record)
                        if key in seen.setdefault(step.name, set()):
                            break
                        seen[step.name].add(key)
                        continue
                    record = step.apply(record)
                    if isinstance(record, Drop):
                        break
                else:
                    compressor.compress(sink.encode_record(record) + b"\n")
    compressor.flush()
    return documents, time.perf_counter() - started


def measure(name: str, slc, inputs: list[str]) -> dict:
    documents, kernel_seconds = kernel(slc, inputs)
    megabytes = input_bytes(inputs) / 1e6
    with tempfile.TemporaryDirectory() as output:
        started = time.perf_counter()
        stats = run_slice(slc, inputs, output, BeamExecutor(RunnerConfig(workers=1)), quiet=True).stats
        seconds = time.perf_counter() - started
    return publish(f"{name}", {
        "benchmark": name,
        "documents": stats["read"],
        "input_mb": round(megabytes, 1),
        "kernel_docs_per_s": round(documents / kernel_seconds, 1),
        "kernel_input_mb_per_s": round(megabytes / kernel_seconds, 2),
        "pipeline_docs_per_s_per_core": round(stats["read"] / seconds, 1),
        "pipeline_input_mb_per_s_per_core": round(megabytes / seconds, 2),
        "ratio": round((stats["read"] / seconds) / (documents / kernel_seconds), 3),
        "target_ratio": 0.7,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "machine": machine(),
    })


def c4_inputs(folder: Path, files: int = 4, copies: int = 60_000) -> list[str]:
    """``files`` C4 files of about ``copies`` records each: the real sample's records with new URLs."""
    real = gzip.decompress((SHARED / "c4/hf-datasets-dummy-en/c4-train.00000-of-01024.json.gz").read_bytes())
    rows = [json.loads(line) for line in real.decode().splitlines() if line]
    paths = []
    for index in range(files):
        lines = [json.dumps(dict(row, url=f"{row['url']}?copy={index}-{n}"))
                 for n in range(copies // len(rows)) for row in rows]
        path = folder / f"c4-train.{index:05d}-of-01024.json.gz"
        path.write_bytes(gzip.compress("\n".join(lines).encode(), compresslevel=1))
        paths.append(str(path))
    return paths


def github_inputs(folder: Path) -> list[str]:
    repos = []
    for package in PACKAGES:
        try:
            module = __import__(package)
            licence = next(f for f in metadata.distribution(package.replace("_", "-")).files if "LICENSE" in f.name.upper())
        except (ImportError, StopIteration, metadata.PackageNotFoundError):
            continue
        target = folder / package
        shutil.copytree(Path(module.__file__).parent, target, ignore=shutil.ignore_patterns("__pycache__"))
        shutil.copy(licence.locate(), target / "LICENSE")
        repos.append(str(target))
    return repos


def arxiv_inputs(folder: Path, copies: int = 6) -> list[str]:
    papers = sorted(p for p in (SHARED / "arxiv").iterdir() if p.is_dir())
    paths = []
    for copy in range(copies):
        path = folder / f"arXiv_src_2301_{copy:03d}.tar"
        with tarfile.open(path, "w") as outer:
            for number, paper in enumerate(papers):
                buffer = io.BytesIO()
                with tarfile.open(fileobj=buffer, mode="w") as inner:
                    for file in sorted(paper.rglob("*.tex")):
                        inner.add(file, arcname=str(file.relative_to(paper)))
                data = gzip.compress(buffer.getvalue(), compresslevel=1)
                info = tarfile.TarInfo(f"2301/2301.{copy:02d}{number:03d}.gz")
                info.size = len(data)
                outer.addfile(info, io.BytesIO(data))
        paths.append(str(path))
    return paths


def main() -> list[dict]:
    if not LID.exists() or not TOKENIZER.exists():
        sys.exit("bench/slices: sample data not found under " + str(SHARED))
    results = []
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        for name, make, slc in (
            ("c4", c4_inputs, C4()),
            ("github", github_inputs, GitHub(tokenizer=str(TOKENIZER))),
            ("arxiv", arxiv_inputs, Arxiv(lid_model=str(LID))),
        ):
            folder = root / name
            folder.mkdir()
            slc.validate()
            results.append(measure(name, slc, make(folder)))
    return results


if __name__ == "__main__":
    main()
