"""Launching to Dataflow and a portable job service, offline: every mistake is one line before
anything is staged, and SIGINT/SIGTERM end a launch within seconds at each phase (staging,
submission, waiting for the job), cancelling a job that was submitted.

Google's services are played by local stand-ins (``google_standins``): a token service and the
Dataflow REST API (``--dataflow_endpoint``), and gcp-storage-emulator as GCS."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.integration.google_standins import JOB_ID, FakeGoogle, free_port, service_account_file, storage_emulator

ROOT = Path(__file__).resolve().parents[2]
BOUND = 30.0  # seconds from the signal to the launcher's exit: generous, the stand-ins answer at once
STALL_STAGING = """
import os, time
from apache_beam.runners.portability import stager
def staging_that_never_ends(*args, **kwargs):
    open(os.environ["STAGING_STALLED"], "w").close()
    while True:  # a retry loop that swallows every Exception, as Beam's do
        try:
            time.sleep(0.05)
        except Exception:
            pass
stager.Stager.stage_job_resources = staging_that_never_ends
"""


def launch_command(fake: FakeGoogle, *extra: str, prelude: str = "", output: str = "gs://bucket/out",
                   source: str = "") -> list[str]:
    args = ["run", "wikipedia", "--input", source or f"{fake.url}/input-pages-articles.xml", "--output", output,
            "--runner", "dataflow", "--project", "p", "--region", "r", "--temp-location", "gs://bucket/tmp",
            "--count-tokens", "off", *extra]
    code = prelude + "\nimport sys\nfrom redpajama.pipelines.commands.cli import main\nsys.exit(main(sys.argv[1:]))\n"
    return [sys.executable, "-c", code, *args]


def google_env(tmp_path: Path, token_uri: str, gcs: str | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GOOGLE_", "CLOUDSDK_"))}
    env.update(GOOGLE_APPLICATION_CREDENTIALS=str(service_account_file(tmp_path, token_uri)), NO_GCE_CHECK="True",
               REDPAJAMA_CACHE=str(tmp_path / "cache"), TMPDIR=str(_folder(tmp_path / "tmp")))
    if gcs:
        env["STORAGE_EMULATOR_HOST"] = gcs
    return env


def _folder(path: Path) -> Path:
    path.mkdir(exist_ok=True)
    return path


def one_line_failure(command: list[str], env: dict[str, str]) -> str:
    done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=ROOT, timeout=120)
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1, done.stderr
    return lines[0]


# --- mistakes, each one line before any staging ----------------------------------------------------


def test_launch_mistakes_are_one_line_before_anything_is_staged(tmp_path):
    closed = f"http://localhost:{free_port()}"
    with FakeGoogle() as fake:
        env = google_env(tmp_path, f"{fake.url}/token")
        line = one_line_failure(launch_command(fake, "--", f"--dataflow_endpoint={closed}"), env)
        assert f"cannot reach {closed}" in line
        endpoint = f"--dataflow_endpoint={fake.url}"
        line = one_line_failure(launch_command(fake, "--", endpoint, output=str(tmp_path / "out")), env)
        assert f"--output {tmp_path / 'out'} is not a gs:// location" in line
        line = one_line_failure(launch_command(fake, "--", endpoint, source=str(tmp_path)), env)
        assert "workers cannot read local input" in line
        assert not fake.seen("POST", "/jobs")
    no_token = google_env(tmp_path, f"{closed}/token")
    with FakeGoogle() as fake:
        assert "cannot reach Google's token service" in one_line_failure(launch_command(fake), no_token)
        no_credentials = dict(no_token, HOME=str(_folder(tmp_path / "home")))
        del no_credentials["GOOGLE_APPLICATION_CREDENTIALS"]
        assert "no Google Cloud credentials found" in one_line_failure(launch_command(fake), no_credentials)
        assert fake.requests == [("HEAD", "/input-pages-articles.xml", b"")] * len(fake.requests)


def test_a_missing_google_cloud_extra_names_the_install(monkeypatch):
    import importlib.util

    from redpajama.core.errors import UsageError
    from redpajama.pipelines.beam.launch import check_dataflow
    from redpajama.pipelines.runs.runner_config import RunnerConfig

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name.startswith("google.cloud") else real(name, *a))
    with pytest.raises(UsageError, match=r"pip install 'apache-beam\[gcp\]==2\.\d+\.\d+'.*pip install -e '\.\[dataflow\]'"):
        check_dataflow(RunnerConfig(runner="dataflow", project="p", region="r", temp_location="gs://b/t"), "gs://b/o", [])


def test_the_portable_runner_without_docker_is_one_line(tmp_path):
    env = dict(os.environ, PATH=str(_folder(tmp_path / "bin")))
    dump = tmp_path / "x-pages-articles.xml"
    dump.write_text("<mediawiki></mediawiki>\n")
    command = [sys.executable, "-m", "redpajama.pipelines.commands.cli", "run", "wikipedia", "--input", str(dump),
               "--output", str(tmp_path / "out"), "--runner", "portable", "--count-tokens", "off"]
    line = one_line_failure(command, env)
    assert "no Docker daemon answers" in line and "--environment LOOPBACK" in line
    endpoint = one_line_failure(command + ["--environment", "LOOPBACK", "--job-endpoint", f"localhost:{free_port()}"], env)
    assert "no job service answers" in endpoint


# --- signals at each phase ---------------------------------------------------------------------------


@pytest.mark.parametrize("phase, signum", [("staging", signal.SIGTERM), ("submission", signal.SIGINT),
                                           ("waiting", signal.SIGTERM)])
def test_a_signal_ends_a_dataflow_launch_within_seconds_at_each_phase(tmp_path, phase, signum):
    with FakeGoogle("stall" if phase == "submission" else "accept") as fake, storage_emulator(tmp_path / "gcs") as gcs:
        env = dict(google_env(tmp_path, f"{fake.url}/token", gcs), STAGING_STALLED=str(tmp_path / "stalled"))
        command = launch_command(fake, "--", f"--dataflow_endpoint={fake.url}",
                                 prelude=STALL_STAGING if phase == "staging" else "")
        child = subprocess.Popen(command, stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT)
        try:
            before = _lines_until(child, "submitted" if phase == "waiting" else "staging the package")
            if phase == "staging":
                _wait_for_file(Path(env["STAGING_STALLED"]))
            if phase == "submission":
                fake.wait_for("POST", r"/jobs\?")
            if phase == "waiting":
                fake.wait_for("GET", f"/jobs/{JOB_ID}")
            sent = time.monotonic()
            child.send_signal(signum)
            rest = child.stderr.read()
            child.wait(timeout=BOUND * 2)
        finally:
            if child.poll() is None:
                child.kill()
        assert time.monotonic() - sent < BOUND and child.returncode == 128 + signum, (before, rest)
        cancelled = phase == "waiting"
        outcome = f"Dataflow job {JOB_ID} cancelled" if cancelled else "no Dataflow job had been submitted"
        assert rest.strip().splitlines() == [f"redpajama: interrupted ({signal.Signals(signum).name}; {outcome}); "
                                             "rerun the same command to finish"]
        assert fake.seen("PUT", f"/jobs/{JOB_ID}") == cancelled
        if cancelled:
            body = json.loads(next(body for method, _, body in fake.requests if method == "PUT"))
            assert body["requestedState"] in ("JOB_STATE_CANCELLED", 5)  # the REST client sends enums as numbers
    assert not _processes_with(f"redpajama-run-{child.pid}-")


def _lines_until(child: subprocess.Popen, marker: str) -> list[str]:
    lines = []
    while True:
        line = child.stderr.readline()
        assert line, f"the launch ended before {marker!r}: {lines}"
        lines.append(line)
        if marker in line:
            return lines


def _wait_for_file(path: Path, timeout: float = 240.0) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.1)


def _processes_with(marker: str) -> list[int]:
    found = []
    for environ in Path("/proc").glob("[0-9]*/environ"):
        try:
            if marker.encode() in environ.read_bytes():
                found.append(int(environ.parent.name))
        except OSError:
            continue
    return found
