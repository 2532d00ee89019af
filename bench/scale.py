"""Memory and throughput as input grows: Wikipedia, C4, CommonCrawl and Books at 1x, 4x and 8x.

The input is generated from the real samples: the English excerpt's and the Latgalian dump's
pages copied with new ids into plain XML files (one file per copy, so that the units spread
over the workers); the real C4 records copied with new URLs into ``.json.gz`` files; distinct
copies of the real WET sample (``bench/commoncrawl.py``; 1x = 8 copies, about 5,600 documents,
8x about 44,600, one WET file's worth); the 24 Gutenberg books, and at 4x and 8x edited
copies of them (1 % of words changed: near-duplicates for MinHash). Each size runs in a fresh
process with the default local runner (one worker per core); the peak of the summed resident
memory of that process and all its children (the engine and the workers), sampled every 50 ms
from ``/proc``, is the figure. Target: peak RSS at 8x within 1.5x of 1x. ``SCALE_SLICES``
(comma-separated) picks slices, ``SCALE_WORKERS`` and ``SCALE_SHARD_MB`` change the worker
count and the output shard size.
"""

from __future__ import annotations

import bz2
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from bench import slices
from bench.results_io import RESULTS, machine, publish

SHARED = Path(os.environ.get("REDPAJAMA_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
WIKI = [SHARED / "wikipedia/en/gensim-enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2",
        SHARED / "wikipedia/ltg/dumpster-dive-ltgwiki-latest-pages-articles.xml.bz2"]
SIZES = (1, 4, 8)
PAGE_ID = re.compile(rb"(<page>\s*<title>)([^<]*)(</title>.*?<id>)(\d+)(</id>)", re.S)

_RUN = """
import json, os, sys
from redpajama.pipelines.beam.executor import BeamExecutor
from redpajama.pipelines.runs.runner_config import RunnerConfig
from redpajama.pipelines.runs.run import run_slice
from redpajama.slices.registry import registry
config = RunnerConfig(workers=int(os.environ.get("SCALE_WORKERS", "0")))
shard_bytes = int(float(os.environ.get("SCALE_SHARD_MB", "256")) * (1 << 20))
slc = registry()[sys.argv[1]](**json.loads(sys.argv[3]))
stats = run_slice(slc, sys.argv[4:], sys.argv[2], BeamExecutor(config), quiet=True, shard_bytes=shard_bytes).stats
print(stats["read"], stats["kept"], stats["bytes_out"])
"""


def tree_rss(root: int) -> int:
    """Resident bytes of ``root`` and all its descendants."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
            children.setdefault(int(fields[1]), []).append(int(entry))
            rss[int(entry)] = int(fields[21]) * os.sysconf("SC_PAGE_SIZE")
        except (OSError, IndexError, ValueError):
            continue
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        total += rss.get(pid, 0)
        todo += children.get(pid, [])
    return total


def measure(command: list[str]) -> tuple[str, float, int]:
    """Run ``command``; its output, wall seconds and the peak RSS of its process tree."""
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    peak = 0
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, tree_rss(process.pid))
            time.sleep(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    started = time.perf_counter()
    sampler.start()
    out, _ = process.communicate()
    seconds = time.perf_counter() - started
    done.set()
    sampler.join()
    if process.returncode:
        raise RuntimeError(f"{command} failed with {process.returncode}")
    return out.strip(), seconds, peak


def wikipedia_inputs(folder: Path, copies: int) -> list[str]:
    paths = []
    sources = [bz2.decompress(path.read_bytes()) for path in WIKI]
    for copy in range(copies):
        for number, xml in enumerate(sources):
            def renamed(match, copy=copy):
                return (match.group(1) + match.group(2) + f" ({copy})".encode() + match.group(3)
                        + str(int(match.group(4)) + copy * 10_000_000).encode() + match.group(5))
            path = folder / f"{['en', 'ltg'][number]}wiki-{copy:03d}-pages-articles.xml"
            path.write_bytes(PAGE_ID.sub(renamed, xml))
            paths.append(str(path))
    return paths


def c4_inputs(folder: Path, copies: int, rows_per_file: int = 30_000) -> list[str]:
    return slices.c4_inputs(folder, files=copies, copies=rows_per_file)


def commoncrawl_inputs(folder: Path, size: int) -> list[str]:
    from bench.commoncrawl import distinct_copies

    return distinct_copies(folder, 8 * size)


def books_inputs(folder: Path, size: int) -> list[str]:
    from redpajama.slices.books import decode_book

    from bench.books_sample import _edited, sample_books

    books = sample_books()
    paths = [str(path) for path in books]
    for copy in range(1, size):
        for number, path in enumerate(books):
            target = folder / f"copy{copy}" / f"{number:02d}-{path.name}"
            target.parent.mkdir(exist_ok=True)
            target.write_text(_edited(decode_book(path.read_bytes()), 0.01, copy * 100 + number))
            paths.append(str(target))
    return paths


def slice_options(name: str) -> dict:
    if name == "commoncrawl":
        from bench.commoncrawl import LID

        return {"lid_model": str(LID)}
    return {}


MAKERS = {"wikipedia": wikipedia_inputs, "c4": c4_inputs, "commoncrawl": commoncrawl_inputs, "books": books_inputs}


def main() -> dict:
    wanted = [name.strip() for name in os.environ.get("SCALE_SLICES", ",".join(MAKERS)).split(",") if name.strip()]
    previous = RESULTS / "scale.json"
    figures: dict = json.loads(previous.read_text()) if previous.exists() else {}  # slices not rerun keep their rows
    figures.update({"benchmark": "scale", "sizes": list(SIZES),
                    "workers": int(os.environ.get("SCALE_WORKERS", "0")) or os.cpu_count()})
    with tempfile.TemporaryDirectory() as scratch:
        for name in wanted:
            make = MAKERS[name]
            rows = []
            for size in SIZES:
                folder = Path(scratch) / f"{name}-{size}"
                folder.mkdir()
                inputs = make(folder, size)
                input_mb = sum(os.path.getsize(p) for p in inputs) / 1e6
                out, seconds, peak = measure([sys.executable, "-c", _RUN, name, str(folder / "out"),
                                              json.dumps(slice_options(name)), *inputs])
                read, kept, text = (int(x) for x in out.splitlines()[-1].split())
                rows.append({"size": size, "input_mb": round(input_mb, 1), "documents": read, "kept": kept,
                             "text_mb_out": round(text / 1e6, 1), "seconds": round(seconds, 1),
                             "docs_per_s": round(read / seconds, 1), "peak_rss_mb": round(peak / 1e6)})
                print(f"scale {name} {size}x: {input_mb:.0f} MB in, {read:,} documents, {seconds:.1f}s, "
                      f"peak RSS {peak / 1e6:.0f} MB", flush=True)
            figures[name] = rows
            figures[f"{name}_rss_growth_8x_vs_1x"] = round(rows[-1]["peak_rss_mb"] / rows[0]["peak_rss_mb"], 2)
    figures["target_rss_growth"] = 1.5
    figures["machine"] = machine()
    return publish("scale", figures)


if __name__ == "__main__":
    main()
