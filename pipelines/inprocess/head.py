"""The head of a slice's recipe: its steps up to and including a named one, run in this process
without Beam, and the records they keep handed back in memory. A command that needs what the
recipe makes of its inputs part-way (``models build``: CommonCrawl documents after parsing, line
dedup and language ID) takes them from the recipe itself rather than from a copy of its steps.

The records are those a run of the steps up to that one writes (the in-process executor's reading,
per-record steps and shuffles, each step counted as in a run; a keep-first step with only per-record
steps after it decided as at the sink), in the recipe's order: by order key.
Nothing is written; failures come back as values. Every record is held in memory: small inputs.
"""

from __future__ import annotations

from dataclasses import dataclass

from redpajama.core.records import Failure
from redpajama.pipelines.inprocess.executor import Recipe
from redpajama.pipelines.inprocess.shuffles import Keyed
from redpajama.pipelines.runs.recipe import steps_through
from redpajama.slices.base import Slice

READ = "read"  # the count of records read, before any step


@dataclass(frozen=True)
class RecipeHead:
    """What the recipe's steps up to ``steps[-1]`` kept of the inputs, and what they counted."""

    slice: str
    steps: tuple[str, ...]  # the steps run, in recipe order
    records: list[Keyed]  # (order key, record) kept after the last step, sorted by order key
    counters: dict[str, int]  # ``"{slice}/{step}/{outcome}"``, as a run's
    failures: list[Failure]
    seconds: dict[str, float]  # where the time went: ``read`` and each step run (see ``Recipe.seconds``)

    @property
    def texts(self) -> list[str]:
        return [record["text"] for _, record in self.records]

    def kept_after(self, step: str) -> int:
        """Records leaving ``step`` (or :data:`READ`, the records read); ``KeyError`` for a step not run."""
        if step != READ and step not in self.steps:
            raise KeyError(f"{step!r} is not one of the steps run ({', '.join(self.steps)})")
        return self.counters.get(f"{self.slice}/{step}/out", 0)


def run_through(slc: Slice, inputs: list[str], step: str) -> RecipeHead:
    """Run ``slc``'s recipe over ``inputs`` up to and including the step named ``step``.

    Raises ``ValueError`` if the recipe has no such step. Later steps are made by ``slc.steps()``
    but never set up or applied.
    """
    steps = steps_through(slc.steps(), step)
    recipe = Recipe(slc)
    records = sorted(recipe.kept(inputs, steps, at_sink=True), key=lambda item: item[0])
    return RecipeHead(slc.name, tuple(s.name for s in steps), records, recipe.counters.as_dict(),
                      list(recipe.out.failures), dict(recipe.seconds))
