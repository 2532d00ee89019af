"""CommonCrawl slice vs cc_net's own pipeline: same input, same models, one core each.

Input: the CommonCrawl benchmark's distinct copies of the real WET sample (``bench/commoncrawl.py``).
Models: the ``models build`` folder (sentencepiece, KenLM, cutoffs) and the shared lid.176.
cc_net runs its ``mine`` steps in one process (``bench/ccnet_mine.py``: line-hash pass, then
dedup, LID, language filter, sentencepiece, KenLM, buckets, split files); the slice runs from
its command line with one local worker and does more (digest dedup, the Wikipedia-reference
classifier, sorted zstd shards, stats). Both are timed as whole processes, start-up included,
in alternating rounds; the medians give documents per second and the ratio. cc_net's release
declares a git URL dependency (KenLM) that pip refuses to install, so its source is fetched
with ``pip download`` (pip's configured index, hash checked) into the cache and put on the path;
its Python dependencies (pandas and two small ones) are installed by ``make bench``; KenLM,
sentencepiece and fastText are ours.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

from redpajama.models import catalog

from bench.commoncrawl import COPIES, LID, WET, distinct_copies
from bench.results_io import machine, publish

ROUNDS = 3
TARGET = 1.5
CCNET = "cc_net==1.0.0"


def ccnet_source() -> Path:
    """A folder holding cc_net 1.0.0's ``cc_net`` package, fetched by pip from its configured index.

    ``pip download`` checks the sdist against the index's hash and unpacks it to read its
    metadata; pip 26 then refuses to keep it, since cc_net requires KenLM from a git URL. With
    ``--no-clean`` the unpacked tree stays in pip's temporary folder, which is ours.
    """
    folder = catalog.cache_dir() / "bench" / "cc_net-1.0.0"
    if (folder / "cc_net" / "mine.py").exists():
        return folder
    with tempfile.TemporaryDirectory() as scratch:
        dest = Path(scratch, "dest")
        done = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:", "--no-clean",
                               "--dest", str(dest), CCNET], capture_output=True, text=True,
                              env={**os.environ, "TMPDIR": scratch})
        sdist = next(dest.glob("cc_net-*.tar.gz"), None)
        if sdist is not None:
            with tarfile.open(sdist) as archive:
                members = [m for m in archive.getmembers() if m.isfile() and "/cc_net/" in m.name and ".." not in m.name]
                for member in members:
                    target = folder / "cc_net" / member.name.split("/cc_net/", 1)[1]
                    target.parent.mkdir(parents=True, exist_ok=True)
                    target.write_bytes(archive.extractfile(member).read())
            return folder
        unpacked = next(Path(scratch).glob("pip-download-*/*/cc_net/mine.py"), None)
        if unpacked is None:
            lines = (done.stderr or done.stdout).strip().splitlines()
            raise RuntimeError(f"pip download {CCNET}: {lines[-1] if lines else 'failed'}")
        shutil.copytree(unpacked.parent, folder / "cc_net")
    return folder


def ours(files: list[str], models: Path) -> tuple[float, dict]:
    with tempfile.TemporaryDirectory() as output:
        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "redpajama.pipelines.commands.cli", "run", "commoncrawl", "--input", *files,
                        "--output", output, "--workers", "1", "--lid-model", str(LID), "--models-dir", str(models),
                        "--count-tokens", "off"], check=True, capture_output=True)
        seconds = time.perf_counter() - started
        stats = json.loads(Path(output, "common_crawl", "stats.json").read_text())
    return seconds, {"read": stats["read"], "kept": stats["kept"]}


def theirs(files: list[str], models: Path, source: Path) -> tuple[float, str]:
    path = os.pathsep.join([str(source), str(Path(__file__).parents[1]), os.environ.get("PYTHONPATH", "")])
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "bench.ccnet_mine", str(models), str(LID), *files],
                          check=True, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": path})
    return time.perf_counter() - started, done.stdout.strip().splitlines()[-1]


def main() -> dict | None:
    try:
        source = ccnet_source()
    except (OSError, RuntimeError) as error:
        print(f"bench/ccnet: cannot get cc_net's source ({error}); skipped")
        return None
    if not WET or not LID.exists():
        sys.exit("bench/ccnet: sample data not found")
    models = catalog.built_folder()
    if not (models / "en.arpa.bin").exists():
        sys.exit("bench/ccnet: no built models (run `redpajama models build` or make demo first)")
    times: dict[str, list[float]] = {"ours": [], "ccnet": []}
    with tempfile.TemporaryDirectory() as scratch:
        files = distinct_copies(Path(scratch), COPIES)
        for round_number in range(ROUNDS):
            order = ("ours", "ccnet") if round_number % 2 == 0 else ("ccnet", "ours")
            for who in order:
                if who == "ours":
                    seconds, counts = ours(files, models)
                else:
                    seconds, written = theirs(files, models, source)
                times[who].append(round(seconds, 2))
                print(f"ccnet round {round_number + 1}: {who} {seconds:.1f}s", flush=True)
    documents = counts["read"]
    ours_rate = documents / statistics.median(times["ours"])
    ccnet_rate = documents / statistics.median(times["ccnet"])
    return publish("ccnet", {
        "benchmark": "ccnet",
        "documents": documents,
        "ours_seconds": times["ours"],
        "ccnet_seconds": times["ccnet"],
        "ours_docs_per_s": round(ours_rate, 1),
        "ccnet_docs_per_s": round(ccnet_rate, 1),
        "ratio": round(ours_rate / ccnet_rate, 2),
        "target_ratio": TARGET,
        "ours_kept": counts["kept"],
        "ccnet_written": written,
        "machine": machine(),
    })


if __name__ == "__main__":
    main()
