"""A slice's BigQuery query as input: run once into a result table on the launcher, read by the
pipeline with Beam's own source through the Storage Read API (no export bucket).

The launcher checks credentials, dry-runs the query (free) to say what it scans, and runs
``CREATE TABLE IF NOT EXISTS`` into ``<project>.<dataset>.<label>_<hash of the query>``: a rerun
(after an interruption, or with other settings) finds the table and pays nothing again. An
interrupted query is cancelled. The table's row count is what the report projects from.
The workers read it with ``ReadFromBigQuery(table=..., method=DIRECT_READ)``; each row becomes a
record through the slice's ``read_row``, counted as a document read, in batches like files.
"""

from __future__ import annotations

import sys
from typing import Any

import apache_beam as beam
from redpajama.core.errors import UsageError
from redpajama.core.records import Failure, utf8_len
from redpajama.core.tables import TableQuery, TableSource
from redpajama.pipelines.beam.launch import beam_version, first_line, google_credentials
from redpajama.pipelines.beam.steps import FAILURES, StepCounters
from redpajama.pipelines.runs.recipe import BATCH_BYTES, BATCH_RECORDS
from redpajama.slices.base import Slice

LOCATION = "US"  # where bigquery-public-data keeps its datasets; a query's result must be written there too
TABLE_DAYS = 30  # result tables in a dataset made here expire after this many days
CANCEL_SECONDS = 20.0


def materialize(query: TableQuery, run_project: str | None) -> TableSource:
    """The query's result table, made now unless an earlier run made it; one line per mistake."""
    try:
        from google.api_core import exceptions
        from google.cloud import bigquery
    except ImportError:
        raise UsageError(f"--bigquery needs Beam's Google Cloud extra: pip install 'apache-beam[gcp]=={beam_version()}' "
                         "(in this repository: pip install -e '.[dataflow]')") from None
    project = query.project or run_project
    if not project:
        raise UsageError("--bigquery needs --bigquery-project (or --project): the project billed for the query, "
                         "which holds its result table")
    credentials = google_credentials("--bigquery")
    client = bigquery.Client(project=project, credentials=credentials)
    table_id = f"{project}.{query.dataset}.{query.table_name}"
    try:
        try:
            found = client.get_table(table_id)
            _say(f"bigquery: reading {table_id} ({found.num_rows:,} rows), made by an earlier run")
            return TableSource(table_id, int(found.num_rows or 0), 0, reused=True)
        except exceptions.NotFound:
            pass
        dataset = bigquery.Dataset(f"{project}.{query.dataset}")
        dataset.location = LOCATION
        dataset.default_table_expiration_ms = TABLE_DAYS * 86_400_000
        client.create_dataset(dataset, exists_ok=True)
        dry = client.query(query.sql, job_config=bigquery.QueryJobConfig(dry_run=True, use_query_cache=False))
        scanned = int(dry.total_bytes_processed or 0)
        _say(f"bigquery: the query scans {scanned / 2**40:,.3f} TiB, billed to {project}; its result goes to {table_id}")
        job = client.query(f"CREATE TABLE IF NOT EXISTS `{table_id}` AS\n{query.sql}")
        try:
            job.result()
        except BaseException:  # interrupted or failed: a query left running would still be billed
            _cancel(job)
            raise
        made = client.get_table(table_id)
        _say(f"bigquery: {table_id} holds {made.num_rows:,} rows")
        return TableSource(table_id, int(made.num_rows or 0), scanned, reused=False)
    except exceptions.GoogleAPICallError as error:
        raise UsageError(f"--bigquery: {type(error).__name__}: {first_line(error)}") from None
    except exceptions.RetryError as error:
        raise UsageError(f"--bigquery: BigQuery did not answer ({first_line(error)}); offline?") from None


def _cancel(job) -> None:
    import threading

    worker = threading.Thread(target=lambda: job.cancel(timeout=CANCEL_SECONDS), daemon=True)
    worker.start()
    worker.join(CANCEL_SECONDS)


class ReadTable(beam.PTransform):
    """The slice's result table -> keyed records in batches (``records``) and ``failures``."""

    def __init__(self, slc: Slice):
        super().__init__()
        self.slice = slc

    def expand(self, pipeline):
        table = self.slice.context.table.table  # project.dataset.table; the project pays for the read too
        rows = pipeline | "Rows" >> beam.io.ReadFromBigQuery(
            table=table, method=beam.io.ReadFromBigQuery.Method.DIRECT_READ, project=table.split(".")[0])
        return rows | "Records" >> beam.ParDo(ReadRows(self.slice)).with_outputs(FAILURES, main="records")


class ReadRows(beam.DoFn):
    """Rows -> keyed records (lists of up to ``BATCH_RECORDS``), counted as documents read."""

    def __init__(self, slc: Slice):
        self.slice = slc

    def setup(self):
        self.counters = StepCounters(self.slice.name, "read")

    def start_bundle(self):
        self._batch: list = []
        self._bytes = 0

    def process(self, row: dict[str, Any]):
        try:
            item = self.slice.read_row(row)
        except Exception as error:  # a reader that breaks on a row fails that row, not the job
            item = Failure(f"bigquery:{self.slice.context.table.table}", "row", "reader_failed",
                           f"{type(error).__name__}: {error}")
        if isinstance(item, Failure):
            self.counters.failed.inc(item.units)
            yield beam.pvalue.TaggedOutput(FAILURES, item)
            return
        self._batch.append(item)
        self._bytes += utf8_len(item[1]["text"])
        if len(self._batch) >= BATCH_RECORDS or self._bytes >= BATCH_BYTES:
            yield from self._flush()

    def finish_bundle(self):
        from apache_beam.transforms.window import GlobalWindow
        from apache_beam.utils.timestamp import MIN_TIMESTAMP
        from apache_beam.utils.windowed_value import WindowedValue

        for batch in self._flush():
            yield WindowedValue(batch, MIN_TIMESTAMP, [GlobalWindow()])

    def _flush(self):
        if self._batch:
            self.counters.docs_out.inc(len(self._batch))
            self.counters.bytes_out.inc(self._bytes)
            yield self._batch
        self._batch, self._bytes = [], 0


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)
