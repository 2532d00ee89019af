"""Beam plumbing that knows no slice's rules: CLI, runners, the generic DAG, sinks, stats."""

import logging


def _not_apitools_notice(record: logging.LogRecord) -> bool:
    # Beam's GCP modules log this at import when the optional [gcp] extra is not installed,
    # which every local run would print; nothing here needs those clients.
    return "apitools not found" not in record.getMessage()


logging.getLogger().addFilter(_not_apitools_notice)
