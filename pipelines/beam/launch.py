"""Launching to Dataflow or a portable job service: checks before any staging, and what an
interrupted launch leaves behind.

Everything a launch needs from outside is checked here first, each mistake one line: Beam's
Google Cloud extra, gs:// locations the workers can write, inputs they can read, credentials
that work, a Dataflow API that answers (``--dataflow_endpoint`` after ``--`` is honoured), a
Docker daemon for the portable runner's default environment. The launch itself runs in the
supervised engine process (:mod:`redpajama.pipelines.runs.engine`); a job it submitted is noted,
and cancelled when the launch is interrupted, because only the launcher commits the output.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import shutil
import socket
import subprocess
import sys
import threading
from typing import Any

from redpajama.core.errors import UsageError
from redpajama.pipelines.beam.options import pipeline_options
from redpajama.pipelines.runs.runner_config import RunnerConfig

PROBE_SECONDS = 15.0
CANCEL_SECONDS = 20.0
DATAFLOW_API = "https://dataflow.googleapis.com"
SCOPES = ("https://www.googleapis.com/auth/cloud-platform",)
ADC_HINT = "run `gcloud auth application-default login` or set GOOGLE_APPLICATION_CREDENTIALS"


def beam_version() -> str:
    from apache_beam.version import __version__

    return __version__


def check_launch(config: RunnerConfig, output: str, inputs: list[str]) -> None:
    """Every mistake a launch to ``config.runner`` can be told about before staging anything."""
    if config.runner == "dataflow":
        check_dataflow(config, output, inputs)
    elif config.runner == "portable":
        check_portable(config)


# --- Dataflow -----------------------------------------------------------------------------------


def check_dataflow(config: RunnerConfig, output: str, inputs: list[str]) -> None:
    if importlib.util.find_spec("google.cloud.storage") is None or importlib.util.find_spec("apitools") is None:
        raise UsageError(f"--runner dataflow needs Beam's Google Cloud extra: pip install 'apache-beam[gcp]=="
                         f"{beam_version()}' (in this repository: pip install -e '.[dataflow]')")
    missing = [flag for flag, value in (("--project", config.project), ("--region", config.region),
                                        ("--temp-location", config.temp_location)) if not value]
    if missing:
        raise UsageError(f"--runner dataflow needs {', '.join(missing)}")
    for flag, location in (("--output", output), ("--temp-location", config.temp_location),
                           ("--staging-location", config.staging_location)):
        if location and not location.startswith("gs://"):
            raise UsageError(f"--runner dataflow: {flag} {location} is not a gs:// location (Dataflow's workers "
                             "and staging write there)")
    local = [path for path in inputs if "://" not in path]
    if local:
        raise UsageError(f"--runner dataflow: workers cannot read local input {local[0]}; copy the inputs to "
                         "gs:// (or give URLs)")
    credentials = google_credentials("--runner dataflow")
    probe_dataflow(config, credentials)


def google_credentials(what: str):
    """Application default credentials with a fresh token, or one line on why there are none."""
    import google.auth
    import google.auth.exceptions
    from google.auth.transport.requests import Request

    try:
        credentials, _ = google.auth.default(scopes=list(SCOPES))
    except google.auth.exceptions.DefaultCredentialsError:
        raise UsageError(f"{what}: no Google Cloud credentials found; {ADC_HINT}") from None
    try:
        credentials.refresh(_TimedRequest(Request(), PROBE_SECONDS))
    except google.auth.exceptions.TransportError as error:
        raise UsageError(f"{what}: cannot reach Google's token service ({first_line(error)}); offline?") from None
    except google.auth.exceptions.RefreshError as error:
        raise UsageError(f"{what}: the credentials were refused ({first_line(error)}); {ADC_HINT}") from None
    return credentials


def dataflow_endpoint(config: RunnerConfig) -> str:
    from apache_beam.options.pipeline_options import GoogleCloudOptions, PipelineOptions

    given = PipelineOptions(list(config.extra)).view_as(GoogleCloudOptions).dataflow_endpoint
    endpoint = (given or DATAFLOW_API).strip().rstrip("/")
    return endpoint if "://" in endpoint else f"https://{endpoint}"


def probe_dataflow(config: RunnerConfig, credentials) -> None:
    """One authorised request to the Dataflow API: it answers, and lets these credentials list jobs."""
    import requests

    endpoint = dataflow_endpoint(config)
    url = f"{endpoint}/v1b3/projects/{config.project}/locations/{config.region}/jobs"
    try:
        response = requests.get(url, params={"pageSize": 1}, timeout=PROBE_SECONDS,
                                headers={"Authorization": f"Bearer {credentials.token}"})
    except requests.RequestException as error:
        raise UsageError(f"--runner dataflow: cannot reach {endpoint} ({type(error).__name__}); offline?") from None
    if response.status_code in (401, 403):
        raise UsageError(f"--runner dataflow: project {config.project} refuses these credentials the Dataflow API "
                         f"(HTTP {response.status_code}): enable the API and grant roles/dataflow.admin")
    if response.status_code == 404:
        raise UsageError(f"--runner dataflow: no project {config.project} or region {config.region} at {endpoint}")
    if not response.ok:
        raise UsageError(f"--runner dataflow: {endpoint} answered HTTP {response.status_code}")


def cancel_dataflow_job(config: RunnerConfig, notes: dict[str, Any]) -> str:
    """Cancel the job the interrupted launch submitted (it would run without a launcher to commit
    its output); a few words for the user's line."""
    job = notes.get("dataflow_job")
    if not job:
        return "no Dataflow job had been submitted"
    outcome: list[str] = []

    def cancel() -> None:
        from apache_beam.runners.dataflow.internal.apiclient import DataflowApplicationClient

        try:
            DataflowApplicationClient(pipeline_options(config)).modify_job_state(job, "JOB_STATE_CANCELLED")
            outcome.append(f"Dataflow job {job} cancelled")
        except Exception as error:  # noqa: BLE001 - said in the line, with how to do it by hand
            outcome.append(f"could not cancel Dataflow job {job} ({type(error).__name__}): "
                           f"gcloud dataflow jobs cancel {job} --region {config.region}")

    worker = threading.Thread(target=cancel, name="cancel-job", daemon=True)
    worker.start()
    worker.join(CANCEL_SECONDS)
    return outcome[0] if outcome else (f"Dataflow job {job} may still run: "
                                       f"gcloud dataflow jobs cancel {job} --region {config.region}")


def note_submitted(result, config: RunnerConfig) -> None:
    """In the engine: remember the submitted job (for cancellation) and tell the user where it is."""
    from redpajama.pipelines.runs.engine import note

    job_id = getattr(result, "job_id", None)
    job = job_id() if callable(job_id) else None
    if not job:
        return
    note(dataflow_job=job)
    print(f"dataflow: job {job} submitted: https://console.cloud.google.com/dataflow/jobs/{config.region}/{job}"
          f"?project={config.project}", file=sys.stderr, flush=True)


@contextlib.contextmanager
def silenced(enabled: bool = True):
    """File descriptors 1 and 2 to /dev/null while the block runs: what staging tools and an
    embedded job service print (a package build's progress, their logs) is not for the user."""
    if not enabled:
        yield
        return
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    null = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(null, 1)
        os.dup2(null, 2)
        yield
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in (*saved, null):
            os.close(fd)


# --- portable runner ----------------------------------------------------------------------------


def check_portable(config: RunnerConfig) -> None:
    if config.job_endpoint and config.job_endpoint != "embed":
        host, _, port = config.job_endpoint.rpartition(":")
        try:
            socket.create_connection((host or "localhost", int(port)), timeout=PROBE_SECONDS).close()
        except (OSError, ValueError) as error:
            raise UsageError(f"--job-endpoint {config.job_endpoint}: no job service answers "
                             f"({type(error).__name__})") from None
    kind = (config.environment or "DOCKER").partition("=")[0].upper()
    if kind == "DOCKER" and not docker_answers():
        raise UsageError("--runner portable runs its workers in Docker unless told otherwise, and no Docker "
                         "daemon answers here: pass --environment LOOPBACK (workers in this process) or "
                         "--environment EXTERNAL=host:port (a worker pool)")


def docker_answers() -> bool:
    docker = shutil.which("docker")
    if not docker:
        return False
    try:
        return subprocess.run([docker, "info"], capture_output=True, timeout=PROBE_SECONDS).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


# --- helpers ------------------------------------------------------------------------------------


class _TimedRequest:
    """google-auth's request with a timeout on every call (its default waits 120 s)."""

    def __init__(self, request, timeout: float):
        self._request = request
        self._timeout = timeout

    def __call__(self, *args, **kwargs):
        kwargs["timeout"] = min(kwargs.get("timeout") or self._timeout, self._timeout)
        return self._request(*args, **kwargs)


def first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0][:200] if text else type(error).__name__
