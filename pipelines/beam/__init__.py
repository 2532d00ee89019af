"""The Beam executor: a slice's recipe as a Beam pipeline (the generic DAG, reading, steps, shuffles,
sinks), runners, Beam's file systems behind core's storage (installed on import, on launchers and
workers alike), Dataflow and BigQuery."""

import logging


def _not_apitools_notice(record: logging.LogRecord) -> bool:
    # Beam's GCP modules log this at import when the optional [gcp] extra is not installed,
    # which every local run would print; nothing here needs those clients.
    return "apitools not found" not in record.getMessage()


logging.getLogger().addFilter(_not_apitools_notice)


def install_filesystems() -> None:
    """Read every non-HTTP path through Beam's file systems (also done on import)."""
    from redpajama.core.storage import use_filesystems
    from redpajama.pipelines.beam.filesystems import BeamFiles

    use_filesystems(BeamFiles())


install_filesystems()
