"""A local S3 that, like ``s3://arxiv``, refuses requests that do not say the requester pays.

moto's server (``moto[server]``, from the package registry) plays S3; it has no notion of
requester pays, so a small proxy in front of it answers ``403 AccessDenied`` to any request for
a bucket in ``requester_pays`` that lacks the ``x-amz-request-payer: requester`` header, and
records every request it saw. Clients reach the proxy through ``AWS_ENDPOINT_URL``.
"""

from __future__ import annotations

import http.client
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

DENIED = (b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>AccessDenied</Code>'
          b"<Message>Access Denied: the bucket's requester pays</Message></Error>")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class RequesterPaysS3:
    def __init__(self, requester_pays: tuple[str, ...] = ("arxiv",)):
        self.requester_pays = set(requester_pays)
        self.moto_port = free_port()
        self.requests: list[tuple[str, str, bool]] = []  # method, path, said the requester pays
        program = shutil.which("moto_server", path=os.path.dirname(sys.executable))
        self.moto = subprocess.Popen([program, "-H", "127.0.0.1", "-p", str(self.moto_port)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.proxy = ThreadingHTTPServer(("127.0.0.1", 0), _Proxy)
        self.proxy.daemon_threads = True
        self.proxy.standin = self
        threading.Thread(target=self.proxy.serve_forever, daemon=True).start()
        self._wait()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.proxy.server_address[1]}"

    @property
    def moto_url(self) -> str:
        return f"http://127.0.0.1:{self.moto_port}"

    def env(self) -> dict[str, str]:
        return {"AWS_ENDPOINT_URL": self.url, "AWS_ACCESS_KEY_ID": "stand-in", "AWS_SECRET_ACCESS_KEY": "stand-in",
                "AWS_DEFAULT_REGION": "us-east-1", "AWS_CONFIG_FILE": os.devnull,
                "AWS_SHARED_CREDENTIALS_FILE": os.devnull, "AWS_EC2_METADATA_DISABLED": "true"}

    def admin(self):
        """A boto3 client straight to moto, to fill buckets."""
        import boto3

        return boto3.session.Session().client("s3", endpoint_url=self.moto_url, region_name="us-east-1",
                                              aws_access_key_id="stand-in", aws_secret_access_key="stand-in")

    def _wait(self) -> None:
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.moto_port), timeout=1).close()
                return
            except OSError:
                if time.monotonic() > deadline or self.moto.poll() is not None:
                    raise RuntimeError("moto_server did not start") from None
                time.sleep(0.1)

    def close(self) -> None:
        self.proxy.shutdown()
        self.proxy.server_close()
        self.moto.terminate()
        self.moto.wait(timeout=30)


class _Proxy(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args) -> None:
        pass

    def _forward(self) -> None:
        standin: RequesterPaysS3 = self.server.standin
        bucket = self.path.lstrip("/").split("/", 1)[0].split("?", 1)[0]
        pays = self.headers.get("x-amz-request-payer", "").lower() == "requester"
        standin.requests.append((self.command, self.path, pays))
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        if bucket in standin.requester_pays and not pays:
            self.send_response(403)
            self.send_header("Content-Type", "application/xml")
            self.send_header("Content-Length", "0" if self.command == "HEAD" else str(len(DENIED)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(DENIED)
            return
        upstream = http.client.HTTPConnection("127.0.0.1", standin.moto_port, timeout=60)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("connection", "transfer-encoding")}
        upstream.request(self.command, self.path, body=body, headers=headers)
        response = upstream.getresponse()
        data = response.read()
        self.send_response(response.status)
        for key, value in response.getheaders():
            if key.lower() not in ("connection", "transfer-encoding", "content-length"):
                self.send_header(key, value)
        self.send_header("Content-Length", str(len(data)) if self.command != "HEAD" else
                         response.getheader("Content-Length", "0"))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)
        upstream.close()

    do_GET = do_HEAD = do_PUT = do_POST = do_DELETE = _forward
