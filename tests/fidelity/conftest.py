"""Collect the fidelity tables and print them at the end of the run."""

from __future__ import annotations

import pytest

from tests.fidelity.harness import report

RESULTS: list = []


@pytest.fixture
def fidelity_results() -> list:
    return RESULTS


def pytest_terminal_summary(terminalreporter) -> None:
    if RESULTS:
        terminalreporter.write_sep("=", "agreement with RedPajama's own outputs (tests/fidelity)")
        terminalreporter.write_line(report(RESULTS))
