"""The per-document budget: steps marked ``unbounded_cost`` run in a child process that a record
cannot take beyond its time or memory budget; the record fails alone and the next one is served."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest
from redpajama.core.isolation import Budget, BudgetExceeded, IsolatedSteps, budgeted_steps
from redpajama.core.records import Drop, make_record

from tests.guards import bounded
from tests.unit.hostile_steps import Cheap, Hostile

GUARD_SECONDS = 120  # turns a hang into a failure; not a measurement


def record(number: int, do: str = "", text: str = "some text") -> dict:
    return make_record(text, id=f"doc/{number}", do=do)


def outcomes(steps: IsolatedSteps, records: list[dict]) -> list:
    found = []
    for item in records:
        try:
            found.append(steps.apply(0, item))
        except BudgetExceeded as error:
            found.append(error)
    return found


@pytest.fixture
def hostile():
    steps = IsolatedSteps([Hostile()], Budget(seconds=1, memory_mb=256))
    yield steps
    steps.close()


def test_c_code_past_the_time_budget_fails_its_record_alone(hostile):
    first, spun, after = bounded(lambda: outcomes(hostile, [record(1), record(2, "spin"), record(3)]))
    assert first["text"] == "SOME TEXT (set up)" and after["text"] == "SOME TEXT (set up)"
    assert isinstance(spun, BudgetExceeded) and spun.outcome == "timeout"
    assert "1 s" in str(spun)
    # the child that ran away was replaced; the records around it were served by a set-up child
    assert first["meta"]["pid"] != after["meta"]["pid"] != os.getpid()


def test_memory_past_the_budget_fails_its_record_alone(hostile):
    grown, after = bounded(lambda: outcomes(hostile, [record(1, "grow"), record(2)]))
    assert isinstance(grown, BudgetExceeded) and grown.outcome == "out_of_memory"
    assert after["text"] == "SOME TEXT (set up)"


def test_a_record_that_kills_the_child_fails_alone(hostile):
    crashed, after = bounded(lambda: outcomes(hostile, [record(1, "crash"), record(2)]))
    assert isinstance(crashed, BudgetExceeded) and crashed.outcome == "crashed" and "SIGSEGV" in str(crashed)
    assert after["text"] == "SOME TEXT (set up)"


def test_errors_and_drops_come_back_as_the_step_gave_them(hostile):
    with pytest.raises(ValueError, match="bad record doc/1"):
        bounded(lambda: hostile.apply(0, record(1, "raise")))
    assert bounded(lambda: hostile.apply(0, record(2, "drop"))) == Drop("not_wanted")
    unicode = record(3, text="ünïcode \udc80 surrogate")
    assert bounded(lambda: hostile.apply(0, unicode))["text"] == "ÜNÏCODE \udc80 SURROGATE (set up)"


def test_a_record_within_budget_is_what_the_step_gives_in_process(hostile):
    local = Hostile()
    local.setup()
    texts = ["", "x" * (3 << 20), "line one\nline two"]
    for number, text in enumerate(texts):
        expected = local.apply(record(number, text=text))
        got = bounded(lambda number=number, text=text: hostile.apply(0, record(number, text=text)))
        assert got["text"] == expected["text"] and got["meta"]["id"] == expected["meta"]["id"]


def test_only_marked_steps_are_budgeted_and_a_zero_budget_turns_it_off():
    steps = [Cheap(), Hostile(), Cheap()]
    assert budgeted_steps(steps, Budget(seconds=5)) == [1]
    assert budgeted_steps(steps, Budget(seconds=0)) == []


def test_the_recipe_steps_that_can_run_away_are_marked():
    from redpajama.filters.langid import LanguageTagger
    from redpajama.filters.latex import CleanLatex
    from redpajama.filters.perplexity import PerplexityBuckets
    from redpajama.slices.wikipedia import CleanWikitext, SelectArticles

    assert CleanWikitext.unbounded_cost and CleanLatex.unbounded_cost
    assert not any(cls.unbounded_cost for cls in (SelectArticles, LanguageTagger, PerplexityBuckets))


def test_bad_budgets_are_refused():
    for seconds, memory in ((-1, 100), (1, 0), (float("nan"), 100)):
        with pytest.raises(ValueError):
            Budget(seconds=seconds, memory_mb=memory)


CHILD_OF_A_DYING_PARENT = """
import os, sys
from redpajama.core.isolation import Budget, IsolatedSteps
from redpajama.core.records import make_record
from tests.unit.hostile_steps import Hostile
steps = IsolatedSteps([Hostile()], Budget(seconds=30))
print(steps.apply(0, make_record("x", id="1"))["meta"]["pid"], flush=True)
os._exit(0)  # no close(): the child must notice by itself
"""


def test_the_child_ends_when_its_parent_dies():
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    done = subprocess.run([sys.executable, "-c", CHILD_OF_A_DYING_PARENT], capture_output=True, text=True,
                          timeout=GUARD_SECONDS, cwd=root)
    child = int(done.stdout.split()[0])
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and _alive(child):
        time.sleep(0.05)
    assert not _alive(child)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().split(") ")[1][0] != "Z"
    except FileNotFoundError:
        return False
