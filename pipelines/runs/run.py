"""Run one slice end to end: resume logic, the Beam pipeline, accounting, commit.

A finished run leaves ``_SUCCESS`` holding the run's fingerprint (slice, inputs and their
sizes and dates, settings, models by content). Rerunning with the same fingerprint does no
work (:mod:`~redpajama.pipelines.runs.resume` says when a rerun runs again or refuses); an
interrupted run left ``_temporary/``, which the rerun discards before producing the same
result. Before any work the output is checked: the slice folder holds no input and only
files a run of this project wrote (:mod:`~redpajama.pipelines.runs.output_folder`), one run at a
time holds it, and local runs and launches to Dataflow or a job service go through a supervised
engine process (``redpajama.pipelines.runs.engine``) so that Ctrl-C and SIGTERM end them cleanly at
any phase. A run whose every unit failed commits nothing.
"""

from __future__ import annotations

import json
import logging
import os
import posixpath
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from typing import Any

import apache_beam as beam
from redpajama.core import storage
from redpajama.core.errors import UsageError
from redpajama.core.isolation import budgeted_steps
from redpajama.models.digests import digests
from redpajama.pipelines.beam import sinks as io
from redpajama.pipelines.beam.build import Layout, build
from redpajama.pipelines.beam.launch import cancel_dataflow_job, note_submitted, silenced
from redpajama.pipelines.beam.options import RunnerConfig, local_workers, make_runner, pipeline_options
from redpajama.pipelines.runs.engine import run_supervised
from redpajama.pipelines.runs.lock import OutputLock
from redpajama.pipelines.runs.output_folder import INPUT_LIST, SliceFolder, check_inputs_outside, check_slice_folder
from redpajama.pipelines.runs.progress import quiet_worker_logs
from redpajama.pipelines.runs.resume import decide, every_unit_failed
from redpajama.pipelines.runs.stats import build_stats, check_identity, counters_from_result, dropped_kept
from redpajama.slices.base import Slice, UnitId

FORMAT_VERSION = 2  # 2: models by content, unknown input states as null


@dataclass
class RunOutcome:
    slice_dir: str
    stats: dict[str, Any]
    files: list[str]
    reused: bool
    finished: bool = True  # False: every unit failed, and nothing was committed


def input_roots(patterns: list[str], files: list[str]) -> tuple[str, ...]:
    """Where each input argument names files from (see :meth:`Slice.relative_name`); without
    arguments, the folder the files have in common."""
    if patterns:
        return tuple(sorted({storage.input_root(p) for p in patterns}))
    if not files:
        return ()
    return (posixpath.commonpath(files) if len(files) > 1 else posixpath.dirname(files[0]),)


def resolve_inputs(patterns: list[str], limit: int | None, folders: bool = False) -> list[str]:
    """Expand local and cloud globs now (a typo is one clear error); URLs pass through. A folder
    is one input when ``folders`` (see :func:`~redpajama.core.storage.expand`), else its files."""
    files: list[str] = []
    for pattern in patterns:
        if storage.is_url(pattern):
            files.append(pattern)
            continue
        try:
            matched = storage.expand(pattern, folders=folders)
        except Exception as error:
            raise UsageError(f"cannot read input {pattern!r}: {error}") from error
        if not matched:
            raise UsageError(f"no input matches {pattern!r}")
        files.extend(matched)
    files = sorted(dict.fromkeys(files))
    return files[:limit] if limit else files


def fingerprint(slc: Slice, inputs: list[str], layout: Layout) -> dict[str, Any]:
    found = {
        "format": FORMAT_VERSION,
        "version": _package_version(),
        "slice": slc.name,
        "inputs": inputs,
        "input_states": storage.input_states(inputs),
        "input_roots": list(slc.context.input_roots or ()),
        "limits": [slc.context.limits.max_record_bytes, slc.context.limits.max_expansion],
        "budget": slc.context.budget.as_json(),
        "options": slc.fingerprint(),
        "models": digests(slc.models()),
        "shard_bytes": layout.shard_bytes,
        "num_shards": layout.num_shards,
    }
    if layout.keep_dropped is not None:  # only then: runs without it keep their fingerprint
        found["keep_dropped"] = layout.keep_dropped
    return found


def run_slice(
    slc: Slice,
    inputs: list[str],
    output: str,
    config: RunnerConfig,
    *,
    shard_bytes: int = 256 << 20,
    num_shards: int | None = None,
    overwrite: bool = False,
    retry_failed: bool = False,
    commit: bool = True,
    quiet: bool = True,
    tokenizer: str | None = None,
    keep_dropped: float | None = None,
) -> RunOutcome:
    """Run ``slc`` over ``inputs`` into ``output/<slice folder>``; see the module docstring.

    Without input roots in the slice's context, the inputs are taken as named from their common folder.
    ``keep_dropped`` (a fraction in (0, 1]) writes that share of every step's rejects to ``_dropped/``.
    """
    if slc.context.input_roots is None:
        roots = input_roots([], [item for item in inputs if "://" not in item])
        slc = slc.with_context(replace(slc.context, input_roots=roots))
    slice_dir = io.join(output, slc.folder)
    local = config.runner == "local" and "://" not in slice_dir
    layout = Layout(slice_dir, shard_bytes, num_shards, spill=io.join(slice_dir, io.TEMPORARY, SPILL) if local else None,
                    keep_dropped=keep_dropped)
    slc.validate()
    check_inputs_outside(slice_dir, inputs)
    check_slice_folder(slice_dir)
    check_output(output, slice_dir)
    with OutputLock(slice_dir) as lock:
        folder = SliceFolder.read(slice_dir)
        wanted = fingerprint(slc, inputs, layout)
        previous = folder.read_stats() if folder.marker else None
        decision = decide(folder.marker, previous, wanted, where=slice_dir, overwrite=overwrite,
                          retry_failed=retry_failed)
        if decision.action == "reuse":
            return RunOutcome(slice_dir, previous or {}, folder.marker.get("files", []), reused=True)
        if decision.action == "refuse":
            raise UsageError(decision.message)
        folder.check_writable()
        if decision.message:
            _say(f"{slc.name}: {decision.message}")
        if folder.interrupted:
            _say(f"{slc.name}: the unfinished work of an earlier run in {layout.temporary} is discarded: every input "
                 "is read again" + (" (the finished output stays until this run commits)" if folder.marker else ""))
        io.clear(layout.temporary)

        workers = local_workers(config.workers) if config.runner == "local" else config.workers
        _say(f"{slc.name}: {len(inputs)} input(s), {config.runner} runner" + (f", {workers} worker(s)" if workers else ""))
        started = time.monotonic()

        def work() -> dict[str, int]:
            if quiet and config.runner != "local":  # a failure comes back as one line; Beam's logs only with --debug
                logging.getLogger().setLevel(logging.CRITICAL)
            options = pipeline_options(config)
            pipeline = beam.Pipeline(runner=make_runner(config, options), options=options)
            build(pipeline, slc, inputs, layout)
            if config.runner == "dataflow":
                _say("dataflow: staging the package and submitting the job")
            hush = quiet and config.runner != "local"
            with silenced(hush):
                result = pipeline.run()
            if config.runner == "dataflow":
                note_submitted(result, config)
            with silenced(hush):
                result.wait_until_finish()
            return counters_from_result(result)

        cancel = (lambda notes: cancel_dataflow_job(config, notes)) if config.runner == "dataflow" else None
        with quiet_worker_logs(quiet and config.runner == "local"):
            counters = run_supervised(work, lock.fds, on_interrupt=cancel)
        if layout.spill:
            shutil.rmtree(layout.spill, ignore_errors=True)
        wall = time.monotonic() - started

        stats = build_stats(slc.name, [step.name for step in slc.steps()], counters, wall)
        check_identity(stats)
        stats["failed_by_reason"] = failure_reasons(io.join(layout.temporary, io.ERRORS))
        stats["units"]["inputs"] = len(inputs)
        stats["budget"] = budget_info(slc)
        if keep_dropped is not None:
            stats["dropped_kept"] = dropped_kept(stats, keep_dropped)
        if every_unit_failed(stats):
            keep_only_errors(layout.temporary, stats)
            return RunOutcome(slice_dir, stats, [], reused=False, finished=False)
        info = slc.run_info()
        if info:
            stats["recipe"] = info
        if slc.counts():
            stats["counts"] = {name: counts_summary(layout.temporary, name) for name in slc.counts()}
        stats["unit_yields"] = take_unit_yields(layout.temporary)
        drop_input_list(layout.temporary)
        if tokenizer:
            stats.update(count_output_tokens(layout.temporary, tokenizer, workers or 1))
        files: list[str] = []
        if commit:
            staged = io.list_files(layout.temporary)
            names = [path[len(layout.temporary) :].lstrip("/") for path in staged]
            current = SliceFolder.read(slice_dir)  # read again: only what is there now, and ours
            current.check_links(", made while the run ran (its output stays in _temporary/)")
            files = io.commit(slice_dir, stats, {"fingerprint": wanted, "files": names}, current.stale())
        return RunOutcome(slice_dir, stats, files, reused=False)


def budget_info(slc: Slice) -> dict[str, Any]:
    """The per-document budget and the steps held to it (``stats.json``)."""
    steps = slc.steps()
    budget = slc.context.budget
    return {**budget.as_json(), "steps": [steps[i].name for i in budgeted_steps(steps, budget)]}


def failure_reasons(errors: str) -> dict[str, int]:
    """Failed units by reason (as ``failed`` counts them), from the dead-letter files a run wrote."""
    found: dict[str, int] = {}
    for path in io.list_files(errors):
        with beam.io.filesystems.FileSystems.open(path) as handle:
            for line in handle:
                if line.strip():
                    failure = json.loads(line)
                    reason = failure.get("reason", "unknown")
                    found[reason] = found.get(reason, 0) + int(failure.get("units", 1))
    return dict(sorted(found.items()))


def keep_only_errors(temporary: str, stats: dict[str, Any]) -> None:
    """A run whose every unit failed commits nothing: ``_temporary/`` keeps only its dead letters
    and its stats, for the user to read, until the next run discards them."""
    errors = io.join(temporary, io.ERRORS) + "/"
    for path in io.list_files(temporary):
        if not path.startswith(errors):
            io.delete_file(path)
    io.write_json(io.join(temporary, io.STATS), stats)


def counts_summary(folder: str, name: str, top: int = 100) -> dict[str, Any]:
    """What ``<name>-counts-*.txt`` holds: every key when there are few, else the most frequent."""
    counts: list[tuple[str, int]] = []
    for path in io.list_files(folder):
        if posixpath.basename(path).startswith(f"{name}-counts-"):
            with beam.io.filesystems.FileSystems.open(path) as handle:
                for line in handle.read().decode("utf-8").splitlines():
                    key, _, count = line.rpartition("\t")
                    counts.append((key, int(count)))
    counts.sort(key=lambda kv: (-kv[1], kv[0]))
    return {"distinct": len(counts), "total": sum(c for _, c in counts),
            ("all" if len(counts) <= top else f"top_{top}"): dict(counts[:top])}


SPILL = "_spill"  # lines waiting for their shard (local runs)


def take_unit_yields(temporary: str) -> dict[str, Any]:
    """Kept documents and bytes per unit and per input file that kept any (each sorted by unit:
    input, then start), from the ``_unit_yields`` bookkeeping, which is then removed: it is not output."""
    folder = io.join(temporary, io.UNIT_YIELDS)
    found: dict[UnitId | None, list[int]] = {}
    for path in io.list_files(folder):
        with beam.io.filesystems.FileSystems.open(path) as handle:
            for line in handle.read().splitlines():
                unit, documents, size = io.read_unit_yield(line)
                found[unit] = [documents, size]
    io.clear(folder)
    unattributed = found.pop(None, [0, 0])
    per_input: dict[str, list[int]] = {}
    for unit, (documents, size) in found.items():
        total = per_input.setdefault(unit.source, [0, 0])
        total[0] += documents
        total[1] += size
    return {"per_unit": [found[unit] for unit in sorted(found)],
            "per_input": [per_input[name] for name in sorted(per_input)], "unattributed": unattributed}


def drop_input_list(folder: str) -> None:
    """Remove the input list a run with many inputs wrote for its workers: bookkeeping, not output."""
    path = io.join(folder, INPUT_LIST)
    if beam.io.filesystems.FileSystems.exists(path):
        io.delete_file(path)


def check_output(output: str, slice_dir: str) -> None:
    """An output folder that cannot hold the run is found before any work (local paths)."""
    if "://" in output:
        return
    for folder in (output, slice_dir):
        if os.path.exists(folder) and not os.path.isdir(folder):
            raise UsageError(f"--output: {folder} is a file, not a folder")
    try:
        os.makedirs(slice_dir, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=slice_dir, prefix=".write-test-"):
            pass
    except OSError as error:
        raise UsageError(f"--output: cannot write to {slice_dir}: {error.strerror or error}") from None


def count_output_tokens(folder: str, tokenizer: str, processes: int) -> dict[str, Any]:
    """GPT-NeoX tokens of the written records (one EOD per document, as RedPajama counted)."""
    from redpajama.pipelines.runs.tokens import count_files, record_files

    _say(f"counting tokens with {tokenizer}")
    counts = count_files(record_files(folder), tokenizer, eod=True, processes=processes, max_line=None)
    return {"tokens": sum(c.tokens for c in counts.values()),
            "tokens_counted_with": {"tokenizer": tokenizer, "eod_per_document": True}}


def _package_version() -> str:
    """The installed version: output of another version is never reused as finished."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("redpajama")
    except PackageNotFoundError:
        return "unknown"


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)
