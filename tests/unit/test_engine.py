"""The supervised engine process: what it starts with."""

import os

from redpajama.pipelines.runs.engine import run_supervised


def _malloc_settings() -> tuple[str, str]:
    return os.environ["MALLOC_ARENA_MAX"], os.environ["MALLOC_TRIM_THRESHOLD_"]


def test_the_engine_and_its_workers_get_fewer_malloc_arenas_unless_the_user_chose(monkeypatch):
    monkeypatch.delenv("MALLOC_ARENA_MAX", raising=False)
    monkeypatch.delenv("MALLOC_TRIM_THRESHOLD_", raising=False)
    assert run_supervised(_malloc_settings) == ("2", "131072")
    assert "MALLOC_ARENA_MAX" not in os.environ  # the launcher's own environment is left alone
    monkeypatch.setenv("MALLOC_ARENA_MAX", "4")
    assert run_supervised(_malloc_settings) == ("4", "131072")


def test_a_setting_that_is_not_a_number_does_not_stop_the_run(monkeypatch):
    monkeypatch.setenv("MALLOC_ARENA_MAX", "many")
    assert run_supervised(lambda: 42) == 42
