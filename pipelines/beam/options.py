"""Runner presets: local (FnApiRunner, several processes, never a downloaded runner), Dataflow,
and any portable Beam job service (``--job-endpoint``: Flink, Spark, a local job service)."""

from __future__ import annotations

from redpajama.pipelines.runs.runner_config import RunnerConfig, local_workers


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
