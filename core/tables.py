"""Inputs that are rows of a table rather than files: a slice's SQL query, run once into a
result table, whose rows the pipeline reads directly (BigQuery's Storage Read API)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass


@dataclass(frozen=True)
class TableQuery:
    """What a slice wants read: ``sql`` over public tables, its result kept as ``<label>_<hash>``
    in ``dataset`` of the billed project (``project``, else the run's ``--project``)."""

    sql: str
    label: str
    dataset: str
    project: str | None = None

    @property
    def table_name(self) -> str:
        """The same query always lands in the same table, so a rerun finds it instead of paying again."""
        return f"{self.label}_{hashlib.sha256(self.sql.encode('utf-8')).hexdigest()[:12]}"


@dataclass(frozen=True)
class TableSource:
    """A query's result table, as the launcher found or made it."""

    table: str  # project.dataset.table
    rows: int
    bytes_processed: int  # what the query scanned (0 when an earlier run's table was reused)
    reused: bool
