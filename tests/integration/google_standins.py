"""Local stand-ins for the Google services a Dataflow launch talks to, on 127.0.0.1 only.

- :class:`FakeGoogle`: an HTTP server playing Google's token service (for a service-account
  key file whose ``token_uri`` points here) and the Dataflow REST API (``--dataflow_endpoint``):
  it lists no jobs, accepts or stalls a job submission, reports a submitted job as running
  and records a cancellation. It also serves a small input file.
- :func:`storage_emulator`: ``gcp-storage-emulator`` (from the package registry) as GCS,
  through ``STORAGE_EMULATOR_HOST``, which Google's storage client honours.
- :func:`service_account_file`: a key file with a fresh RSA key, as ``gcloud`` writes them.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

JOB_ID = "2026-01-01_00_00_00-1234567890"
JOBS = re.compile(r"^/v1b3/projects/([^/]+)/locations/([^/]+)/jobs(?:/([^/?:]+))?(/messages|/metrics)?")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class FakeGoogle(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, submission: str = "accept"):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.submission = submission  # "accept" or "stall"
        self.requests: list[tuple[str, str, bytes]] = []
        self.released = threading.Event()
        self.thread = threading.Thread(target=self.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://localhost:{self.server_address[1]}"

    def __enter__(self) -> FakeGoogle:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.released.set()
        self.shutdown()
        self.server_close()

    def seen(self, method: str, pattern: str) -> bool:
        return any(m == method and re.search(pattern, path) for m, path, _ in list(self.requests))

    def wait_for(self, method: str, pattern: str, timeout: float = 240.0) -> None:
        deadline = time.monotonic() + timeout
        while not self.seen(method, pattern):
            if time.monotonic() > deadline:
                raise AssertionError(f"no {method} {pattern} within {timeout}s; saw {[r[:2] for r in self.requests]}")
            time.sleep(0.1)


class _Handler(BaseHTTPRequestHandler):
    server: FakeGoogle

    def log_message(self, *args) -> None:
        pass

    def _answer(self, status: int, body: dict | bytes, kind: str = "application/json") -> None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def _record(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        self.server.requests.append((self.command, self.path, body))
        return body

    def do_HEAD(self) -> None:
        self.do_GET()

    def do_GET(self) -> None:
        self._record()
        if self.path.startswith("/input"):
            return self._answer(200, b"<mediawiki></mediawiki>\n", "application/octet-stream")
        match = JOBS.match(self.path)
        if not match:
            return self._answer(404, {"error": {"code": 404, "message": "not here"}})
        project, region, job, tail = match.groups()
        if job is None:
            return self._answer(200, {"jobs": []})
        if tail == "/messages":
            return self._answer(200, {"jobMessages": []})
        if tail == "/metrics":
            return self._answer(200, {"metrics": []})
        return self._answer(200, {"id": job, "projectId": project, "location": region,
                                  "currentState": "JOB_STATE_RUNNING", "type": "JOB_TYPE_BATCH"})

    def do_POST(self) -> None:
        self._record()
        if self.path.startswith("/token"):
            return self._answer(200, {"access_token": "stand-in-token", "expires_in": 3600, "token_type": "Bearer"})
        match = JOBS.match(self.path)
        if match and match.group(3) is None:
            if self.server.submission == "stall":
                self.server.released.wait()
            project, region = match.group(1), match.group(2)
            return self._answer(200, {"id": JOB_ID, "projectId": project, "location": region, "name": "job",
                                      "currentState": "JOB_STATE_PENDING", "type": "JOB_TYPE_BATCH"})
        return self._answer(404, {"error": {"code": 404, "message": "not here"}})

    def do_PUT(self) -> None:
        body = self._record()
        match = JOBS.match(self.path)
        if match and match.group(3):
            state = json.loads(body or b"{}").get("requestedState", "")
            return self._answer(200, {"id": match.group(3), "currentState": "JOB_STATE_RUNNING", "requestedState": state})
        return self._answer(404, {"error": {"code": 404, "message": "not here"}})


def service_account_file(folder: Path, token_uri: str, project: str = "p") -> Path:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    path = folder / "service-account.json"
    path.write_text(json.dumps({
        "type": "service_account", "project_id": project, "private_key_id": "stand-in", "private_key": pem,
        "client_email": f"launcher@{project}.iam.gserviceaccount.com", "client_id": "1", "token_uri": token_uri,
    }))
    return path


@contextmanager
def storage_emulator(folder: Path, bucket: str = "bucket"):
    """gcp-storage-emulator on a free port with ``bucket``; yields its URL."""
    port = free_port()
    program = shutil.which("gcp-storage-emulator", path=os.path.dirname(sys.executable))
    process = subprocess.Popen([program, "-d", str(folder), "start", "--host", "127.0.0.1", "--port", str(port),
                                "--default-bucket", bucket, "--in-memory", "-q"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError("gcp-storage-emulator did not start") from None
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=30)
