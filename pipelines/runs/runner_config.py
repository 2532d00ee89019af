"""Where and how ``redpajama run`` was told to run: the runner (local, Dataflow, a portable job
service) and its settings, read by the Beam executor (:mod:`redpajama.pipelines.beam.options`
turns them into Beam's options) without loading Beam."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

RUNNERS = ("local", "dataflow", "portable")


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
    worker_log_level: str = "ERROR"
    job_endpoint: str | None = None  # portable: the job service ("embed" runs one in this process)
    environment: str | None = None  # portable: where workers run, e.g. EXTERNAL=localhost:50000
    extra: list[str] = field(default_factory=list)


def local_workers(requested: int) -> int:
    return requested if requested > 0 else (os.cpu_count() or 1)
