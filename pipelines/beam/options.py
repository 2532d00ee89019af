"""Runner presets: local (FnApiRunner, several processes, never a downloaded runner), Dataflow,
and any portable Beam job service (``--job-endpoint``: Flink, Spark, a local job service)."""

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


def pipeline_options(config: RunnerConfig):
    """Beam options for the chosen runner; ``config.extra`` (after ``--``) is passed through."""
    from apache_beam.options.pipeline_options import PipelineOptions

    if config.runner == "local":
        workers = local_workers(config.workers)
        flags = [
            f"--direct_num_workers={workers}",
            "--direct_running_mode=" + ("in_memory" if workers == 1 else "multi_processing"),
            f"--default_sdk_harness_log_level={config.worker_log_level}",
        ]
        return PipelineOptions(flags + list(config.extra))
    if config.runner == "portable":
        flags = ["--runner=PortableRunner", f"--job_endpoint={config.job_endpoint or 'embed'}"]
        if config.environment:
            kind, _, where = config.environment.partition("=")
            flags += [f"--environment_type={kind}"] + ([f"--environment_config={where}"] if where else [])
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


def make_runner(config: RunnerConfig, options):
    """The runner object: FnApiRunner locally, so Beam never picks (and downloads) Prism.

    The options travel in the provision info, as DirectRunner passes them, so that the
    worker processes see them (their log level among them).
    """
    if config.runner == "local":
        from apache_beam.portability.api import beam_provision_api_pb2
        from apache_beam.runners.portability.fn_api_runner import FnApiRunner, fn_runner
        from apache_beam.runners.portability.portable_runner import JobServiceHandle

        encoded = JobServiceHandle.encode_pipeline_options(options.get_all_options())
        provision = fn_runner.ExtendedProvisionInfo(
            beam_provision_api_pb2.ProvisionInfo(pipeline_options=encoded)
        )
        return FnApiRunner(provision_info=provision)
    if config.runner == "portable":
        from apache_beam.runners.portability.portable_runner import PortableRunner

        return PortableRunner()
    from apache_beam.runners.dataflow.dataflow_runner import DataflowRunner

    return DataflowRunner()
