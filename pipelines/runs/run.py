"""Run one slice end to end, whatever executes it: resume logic, the executor, accounting, commit.

A finished run leaves ``_SUCCESS`` holding the run's fingerprint (slice, inputs and their
sizes and dates, settings, models by content). Rerunning with the same fingerprint does no
work (:mod:`~redpajama.pipelines.runs.resume` says when a rerun runs again or refuses); an
interrupted run left ``_temporary/``, which the rerun discards before producing the same
result. Before any work the output is checked: the slice folder holds no input and only
files a run of this project wrote (:mod:`~redpajama.pipelines.runs.output_folder`), and one run
at a time holds it. Then an executor (:mod:`~redpajama.pipelines.runs.executor`; Beam's runs
in a supervised engine process, so that Ctrl-C and SIGTERM end it cleanly at any phase) writes
the output under ``_temporary/``, and the run builds ``stats.json``, checks the accounting
identity and commits. A run whose every unit failed commits nothing.
"""

from __future__ import annotations

import os
import posixpath
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from typing import Any

from redpajama.core import storage
from redpajama.core.errors import UsageError
from redpajama.core.isolation import budgeted_steps
from redpajama.models.digests import digests
from redpajama.pipelines.runs import output_folder
from redpajama.pipelines.runs.executor import Executor, Layout
from redpajama.pipelines.runs.lock import OutputLock
from redpajama.pipelines.runs.output_folder import SliceFolder, check_inputs_outside, check_slice_folder
from redpajama.pipelines.runs.results import (
    count_output_tokens,
    counts_summary,
    drop_input_list,
    failure_reasons,
    keep_only_errors,
    take_unit_yields,
)
from redpajama.pipelines.runs.resume import decide, every_unit_failed
from redpajama.pipelines.runs.stats import build_stats, check_identity, dropped_kept
from redpajama.slices.base import Slice

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
    is one input when ``folders`` (see :func:`~redpajama.core.storage.expand`), else its files.
    A local file named several ways is one input, under its first name."""
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
    files = _once_each(sorted(dict.fromkeys(files)))
    return files[:limit] if limit else files


def _once_each(paths: list[str]) -> list[str]:
    """Local paths that name one file or folder (x and ./x, a link and its target) reduced to the first."""
    seen: set[tuple[int, int]] = set()
    kept = []
    for path in paths:
        try:
            info = os.stat(path) if "://" not in path else None
        except OSError:
            info = None
        if info is None or (info.st_dev, info.st_ino) not in seen:
            kept.append(path)
        if info is not None:
            seen.add((info.st_dev, info.st_ino))
    return kept


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
    executor: Executor,
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
    """Run ``slc`` over ``inputs`` into ``output/<slice folder>`` with ``executor``; see the module docstring.

    Without input roots in the slice's context, the inputs are taken as named from their common folder.
    ``keep_dropped`` (a fraction in (0, 1]) writes that share of every step's rejects to ``_dropped/``.
    """
    if slc.context.input_roots is None:
        roots = input_roots([], [item for item in inputs if "://" not in item])
        slc = slc.with_context(replace(slc.context, input_roots=roots))
    slice_dir = output_folder.join(output, slc.folder)
    layout = Layout(slice_dir, shard_bytes, num_shards, keep_dropped)
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
        output_folder.clear(layout.temporary)

        _say(f"{slc.name}: {len(inputs)} input(s), {executor.describe()}")
        started = time.monotonic()
        counters = executor.execute(slc, inputs, layout, quiet=quiet, close_in_child=lock.fds)
        wall = time.monotonic() - started

        stats = build_stats(slc.name, [step.name for step in slc.steps()], counters, wall)
        check_identity(stats)
        stats["failed_by_reason"] = failure_reasons(output_folder.join(layout.temporary, output_folder.ERRORS))
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
            stats.update(count_output_tokens(layout.temporary, tokenizer, executor.workers or 1))
        files: list[str] = []
        if commit:
            staged = output_folder.list_files(layout.temporary)
            names = [path[len(layout.temporary) :].lstrip("/") for path in staged]
            current = SliceFolder.read(slice_dir)  # read again: only what is there now, and ours
            current.check_links(", made while the run ran (its output stays in _temporary/)")
            files = output_folder.commit(slice_dir, stats, {"fingerprint": wanted, "files": names}, current.stale())
        return RunOutcome(slice_dir, stats, files, reused=False)


def budget_info(slc: Slice) -> dict[str, Any]:
    """The per-document budget and the steps held to it (``stats.json``)."""
    steps = slc.steps()
    budget = slc.context.budget
    return {**budget.as_json(), "steps": [steps[i].name for i in budgeted_steps(steps, budget)]}


def check_output(output: str, slice_dir: str) -> None:
    """An output folder that cannot hold the run is found before any work (local paths)."""
    if storage.is_url(output):
        raise UsageError(f"--output {output}: an http(s) address cannot be written; give a local folder or gs://, s3://")
    if output.startswith("file://"):
        raise UsageError(f"--output {output}: give the local folder, without file://")
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


def _package_version() -> str:
    """The installed version: output of another version is never reused as finished."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("redpajama")
    except PackageNotFoundError:
        return "unknown"


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)
