"""Everything Beam: the CLI and commands, runners, the generic DAG, shuffles, sinks, stats."""

import logging


def _not_apitools_notice(record: logging.LogRecord) -> bool:
    # Beam's GCP modules log this at import when the optional [gcp] extra is not installed,
    # which every local run would print; nothing here needs those clients.
    return "apitools not found" not in record.getMessage()


logging.getLogger().addFilter(_not_apitools_notice)


def _install_beam_filesystems() -> None:
    from redpajama.core.storage import use_filesystems
    from redpajama.pipelines.filesystems import BeamFiles

    use_filesystems(BeamFiles())


_install_beam_filesystems()
