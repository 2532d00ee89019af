"""A local BigQuery: bqemulator (from the package registry; REST and the Storage Read API over
gRPC, DuckDB underneath) holding ``bigquery-public-data.github_repos`` tables shaped like the
public ones (``contents``, ``files``, ``licenses``, ``languages``, same columns and types).

bqemulator loads DuckDB's spatial extension at start; DuckDB would download it, so it is
installed beforehand from the ``duckdb-extension-spatial`` package into the emulator's own
HOME. Google's clients reach it through ``BIGQUERY_EMULATOR_HOST`` (google-cloud-bigquery) and
Beam's ``--bigquery_endpoint``; Beam builds its Storage Read client with no endpoint option, so
:func:`storage_client` gives one on the emulator's plain gRPC port.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

PUBLIC = "bigquery-public-data.github_repos"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def spatial_extension() -> Path:
    import duckdb
    import duckdb_extension_spatial

    return Path(duckdb_extension_spatial.__file__).parent / "extensions" / f"v{duckdb.__version__}" / "spatial.duckdb_extension"


class BigQueryEmulator:
    def __init__(self, home: Path):
        home.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "HOME": str(home)}
        subprocess.run([sys.executable, "-c", f"import duckdb; duckdb.connect().execute(\"INSTALL '{spatial_extension()}'\")"],
                       env=env, check=True, capture_output=True)
        self.rest_port, self.grpc_port = free_port(), free_port()
        program = shutil.which("bqemulator", path=os.path.dirname(sys.executable))
        self.process = subprocess.Popen(
            [program, "start", "--rest-port", str(self.rest_port), "--grpc-port", str(self.grpc_port),
             "--log-level", "error"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 120
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.rest_port), timeout=1).close()
                socket.create_connection(("127.0.0.1", self.grpc_port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    raise RuntimeError("bqemulator did not start") from None
                time.sleep(0.2)

    @property
    def rest(self) -> str:
        return f"127.0.0.1:{self.rest_port}"

    def client(self, project: str = "bigquery-public-data"):
        from google.api_core.client_options import ClientOptions
        from google.auth.credentials import AnonymousCredentials
        from google.cloud import bigquery

        return bigquery.Client(project=project, credentials=AnonymousCredentials(),
                               client_options=ClientOptions(api_endpoint=f"http://{self.rest}"))

    def storage_client(self, *args, **kwargs):
        """A Storage Read API client on the emulator (Beam's ``create_bq_storage_client`` stand-in)."""
        import grpc
        from google.cloud.bigquery_storage_v1 import BigQueryReadClient
        from google.cloud.bigquery_storage_v1.services.big_query_read.transports import BigQueryReadGrpcTransport

        channel = grpc.insecure_channel(f"127.0.0.1:{self.grpc_port}")
        return BigQueryReadClient(transport=BigQueryReadGrpcTransport(channel=channel))

    def public_github(self, contents: list[dict], files: list[dict], licenses: list[dict], languages: list[dict]) -> None:
        """The four public tables with their columns and types, holding the given rows."""
        from google.cloud import bigquery

        field = bigquery.SchemaField
        schemas = {
            "contents": [field("id", "STRING"), field("size", "INTEGER"), field("content", "STRING"),
                         field("binary", "BOOLEAN"), field("copies", "INTEGER")],
            "files": [field("repo_name", "STRING"), field("ref", "STRING"), field("path", "STRING"),
                      field("mode", "INTEGER"), field("id", "STRING"), field("symlink_target", "STRING")],
            "licenses": [field("repo_name", "STRING"), field("license", "STRING")],
            "languages": [field("repo_name", "STRING"), field("language", "RECORD", mode="REPEATED", fields=[
                field("name", "STRING"), field("bytes", "INTEGER")])],
        }
        client = self.client()
        client.create_dataset("github_repos", exists_ok=True)
        for name, rows in (("contents", contents), ("files", files), ("licenses", licenses), ("languages", languages)):
            client.create_table(bigquery.Table(f"{PUBLIC}.{name}", schema=schemas[name]), exists_ok=True)
            errors = client.insert_rows_json(f"{PUBLIC}.{name}", rows)
            assert not errors, errors

    def close(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)
