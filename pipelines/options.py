"""Runner presets: local (FnApiRunner, several processes, never a downloaded runner) and Dataflow."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.runners.portability.fn_api_runner import FnApiRunner

RUNNERS = ("local", "dataflow")


@dataclass
class RunnerConfig:
    """What ``redpajama run`` was told about where and how to run."""

    runner: str = "local"
    workers: int = 0
    project: str | None = None
    region: str | None = None
    temp_location: str | None = None
    staging_location: str | None = None
    setup_file: str | None = None
    sdk_container_image: str | None = None
    job_name: str | None = None
    extra: list[str] = field(default_factory=list)


def local_workers(requested: int) -> int:
    return requested if requested > 0 else (os.cpu_count() or 1)


def pipeline_options(config: RunnerConfig) -> PipelineOptions:
    """Beam options for the chosen runner; ``config.extra`` (after ``--``) is passed through."""
    if config.runner == "local":
        workers = local_workers(config.workers)
        flags = [
            f"--direct_num_workers={workers}",
            "--direct_running_mode=" + ("in_memory" if workers == 1 else "multi_processing"),
        ]
        return PipelineOptions(flags + list(config.extra))
    flags = ["--runner=DataflowRunner"]
    for name in ("project", "region", "temp_location", "staging_location", "setup_file",
                 "sdk_container_image", "job_name"):
        value = getattr(config, name)
        if value:
            flags.append(f"--{name}={value}")
    if config.workers:
        flags.append(f"--max_num_workers={config.workers}")
    return PipelineOptions(flags + list(config.extra))


def make_runner(config: RunnerConfig):
    """The runner object: FnApiRunner locally, so Beam never picks (and downloads) Prism."""
    if config.runner == "local":
        return FnApiRunner()
    from apache_beam.runners.dataflow.dataflow_runner import DataflowRunner

    return DataflowRunner()
