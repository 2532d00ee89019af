"""The path Dataflow takes, as far as it runs here: the job goes through Beam's portable runner
(a job service in this process) to workers that run from a fresh virtual environment holding
the package built as an sdist, with no source tree on their path. So the sdist ships what the
workers need (manifests among it) and every DoFn pickles; the output equals a local run's."""

import os
import socket
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

import pytest
from redpajama.pipelines.beam.executor import BeamExecutor
from redpajama.pipelines.runs.run import run_slice
from redpajama.pipelines.runs.runner_config import RunnerConfig
from redpajama.slices.wikipedia import Wikipedia

from tests.conftest import WIKI, need
from tests.integration.helpers import output_bytes

ROOT = Path(__file__).resolve().parents[2]
LTG = WIKI / "ltg" / "dumpster-dive-ltgwiki-latest-pages-articles.xml.bz2"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def sdist_venv(tmp_path_factory) -> Path:
    """A venv with the sdist installed; dependencies come from this environment's site-packages
    through a plain path entry (so this environment's editable install is not seen)."""
    folder = tmp_path_factory.mktemp("sdist")
    subprocess.run([sys.executable, "setup.py", "-q", "sdist", "-d", str(folder)], cwd=ROOT, check=True,
                   capture_output=True)
    archive = next(folder.glob("redpajama-*.tar.gz"))
    venv = folder / "venv"
    subprocess.run([getattr(sys, "_base_executable", sys.executable), "-m", "venv", "--without-pip", str(venv)],
                   check=True)
    python = venv / "bin" / "python"
    purelib = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             check=True, capture_output=True, text=True).stdout.strip()
    Path(purelib, "dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
                    "--target", purelib, str(archive)], check=True, capture_output=True, cwd=folder)
    where = subprocess.run([python, "-c", "import redpajama.manifests as m, redpajama.pipelines.beam.build as b;"
                            "m.load('wikipedia'); print(b.__file__)"], check=True, capture_output=True, text=True,
                           cwd=folder).stdout.strip()
    assert where.startswith(purelib) and not where.startswith(str(ROOT))
    return venv


def worker_env(venv: Path) -> dict[str, str]:
    """The pool starts each worker as ``python`` from PATH: the venv's, without this tree."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    return env


def test_a_slice_through_the_portable_runner_on_workers_running_the_sdist(sdist_venv, tmp_path):
    port = free_port()
    pool = subprocess.Popen([sdist_venv / "bin" / "python", "-m", "apache_beam.runners.worker.worker_pool_main",
                             f"--service_port={port}"], cwd=tmp_path, stdout=subprocess.DEVNULL,
                            stderr=(tmp_path / "workers.log").open("wb"), env=worker_env(sdist_venv))
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.2)
        config = RunnerConfig(runner="portable", environment=f"EXTERNAL=localhost:{port}")
        portable = run_slice(Wikipedia(), [str(need(LTG))], str(tmp_path / "portable"), BeamExecutor(config), quiet=True)
    finally:
        pool.terminate()
        pool.wait(timeout=30)
    local = run_slice(Wikipedia(), [str(LTG)], str(tmp_path / "local"), BeamExecutor(RunnerConfig(workers=1)), quiet=True)
    assert portable.stats["read"] == local.stats["read"] > 1000 and portable.stats["kept"] == local.stats["kept"]
    assert output_bytes(portable.slice_dir) == output_bytes(local.slice_dir)
