"""Run a slice (in this process, or through a local Beam pipeline) and read what it wrote."""

from __future__ import annotations

import json
from pathlib import Path

import zstandard
from redpajama.pipelines.beam.executor import BeamExecutor
from redpajama.pipelines.inprocess.executor import InProcessExecutor
from redpajama.pipelines.runs.run import RunOutcome, resolve_inputs, run_slice
from redpajama.pipelines.runs.runner_config import RunnerConfig


def run(slc, inputs, output: Path, workers: int = 2, executor: str = "inprocess", **kwargs) -> RunOutcome:
    """Run ``slc`` over ``inputs`` into ``output``: in this process, or with ``executor="beam"`` as a
    local Beam pipeline on ``workers`` processes (for what only a Beam run shows: its runner, its
    workers, the shuffles' volume). Both write the same files (tests/integration/test_executor_parity.py)."""
    files = resolve_inputs([str(path) for path in inputs], None, folders=slc.reads_folders)
    chosen = BeamExecutor(RunnerConfig(workers=workers)) if executor == "beam" else InProcessExecutor()
    outcome = run_slice(slc, files, str(output), chosen, quiet=False, **kwargs)
    stats = outcome.stats
    assert stats["read"] == stats["kept"] + sum(stats["dropped"].values()) + stats["failed"]
    return outcome


def records(slice_dir: str | Path) -> list[dict]:
    out = []
    for shard in sorted(Path(slice_dir).rglob("*.jsonl.zst")):
        if "_dropped" in shard.parts:
            continue
        with shard.open("rb") as handle:
            data = zstandard.ZstdDecompressor().stream_reader(handle).read()
        out += [json.loads(line) for line in data.decode("utf-8").splitlines()]
    return out


def dropped(slice_dir: str | Path) -> list[dict]:
    """The ``_dropped/`` sample output (near-duplicates with their cluster)."""
    out = []
    for shard in sorted(Path(slice_dir, "_dropped").glob("*.jsonl.zst")):
        with shard.open("rb") as handle:
            data = zstandard.ZstdDecompressor().stream_reader(handle).read()
        out += [json.loads(line) for line in data.decode("utf-8").splitlines()]
    return out


def errors(slice_dir: str | Path) -> list[dict]:
    return [json.loads(line) for path in sorted(Path(slice_dir, "_errors").glob("*.jsonl"))
            for line in path.read_text().splitlines()]


def output_bytes(slice_dir: str | Path) -> dict[str, bytes]:
    root = Path(slice_dir)
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and p.name not in ("stats.json", "_SUCCESS")}
