"""The Beam executor: a slice's recipe as a Beam pipeline on a local runner, Dataflow or a
portable job service (:class:`RunnerConfig`), run in a supervised engine process
(:mod:`redpajama.pipelines.runs.engine`), its counters read from Beam's metrics."""

from __future__ import annotations

import logging
import shutil
import sys
from collections import defaultdict

import apache_beam as beam
from apache_beam.metrics.metric import MetricsFilter
from redpajama.pipelines.beam.build import build
from redpajama.pipelines.beam.launch import cancel_dataflow_job, note_submitted, silenced
from redpajama.pipelines.beam.options import make_runner, pipeline_options
from redpajama.pipelines.beam.steps import NAMESPACE
from redpajama.pipelines.runs.engine import run_supervised
from redpajama.pipelines.runs.executor import Layout
from redpajama.pipelines.runs.output_folder import join
from redpajama.pipelines.runs.progress import quiet_worker_logs
from redpajama.pipelines.runs.runner_config import RunnerConfig, local_workers
from redpajama.slices.base import Slice

SPILL = "_spill"  # under _temporary: lines and parked records waiting for their shuffle (local runs)


class BeamExecutor:
    """Runs a slice's recipe as a Beam pipeline on the runner ``config`` names. A local run parks
    lines and records in spill files under ``_temporary/`` (``spill``), so that its shuffles carry
    an index of them, not their text."""

    def __init__(self, config: RunnerConfig | None = None, spill: bool = True):
        self.config = config or RunnerConfig()
        self.spill = spill

    @property
    def local(self) -> bool:
        return self.config.runner == "local"

    @property
    def workers(self) -> int:
        return local_workers(self.config.workers) if self.local else self.config.workers

    def describe(self) -> str:
        return f"{self.config.runner} runner" + (f", {self.workers} worker(s)" if self.workers else "")

    def execute(self, slc: Slice, inputs: list[str], layout: Layout, *, quiet: bool = True,
                close_in_child: tuple[int, ...] = ()) -> dict[str, int]:
        config = self.config
        spill = join(layout.temporary, SPILL) if self.spill and self.local and "://" not in layout.slice_dir else None

        def work() -> dict[str, int]:
            _fresh_beam_thread_pool()
            if quiet and not self.local:  # a failure comes back as one line; Beam's logs only with --debug
                logging.getLogger().setLevel(logging.CRITICAL)
            options = pipeline_options(config)
            pipeline = beam.Pipeline(runner=make_runner(config, options), options=options)
            build(pipeline, slc, inputs, layout, spill)
            if config.runner == "dataflow":
                _say("dataflow: staging the package and submitting the job")
            hush = quiet and not self.local
            with silenced(hush):
                result = pipeline.run()
            if config.runner == "dataflow":
                note_submitted(result, config)
            with silenced(hush):
                result.wait_until_finish()
            return counters_from_result(result)

        cancel = (lambda notes: cancel_dataflow_job(config, notes)) if config.runner == "dataflow" else None
        with quiet_worker_logs(quiet and self.local):
            counters = run_supervised(work, close_in_child, on_interrupt=cancel)
        if spill:
            shutil.rmtree(spill, ignore_errors=True)
        return counters


def counters_from_result(result) -> dict[str, int]:
    """All ``redpajama`` counters of a finished pipeline, by name."""
    query = result.metrics().query(MetricsFilter().with_namespace(NAMESPACE))
    totals: dict[str, int] = defaultdict(int)
    for counter in query["counters"]:
        value = counter.committed if counter.committed is not None else counter.attempted
        totals[counter.key.metric.name] += int(value or 0)
    return dict(totals)


def _fresh_beam_thread_pool() -> None:
    """Beam's runners share one thread pool per process. A fork copies its idle workers but not
    their threads, so work handed to them would wait forever: the engine process starts a pool of
    its own (a launcher that ran a pipeline in-process before, as a library user may, would else hang)."""
    from apache_beam.utils import thread_pool_executor

    thread_pool_executor._SHARED_UNBOUNDED_THREAD_POOL_EXECUTOR = thread_pool_executor._SharedUnboundedThreadPoolExecutor()


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)
