"""The Slice contract: what every slice and every step declares."""

from redpajama.core.records import KeepFirstStep, Step, describe


def test_every_kind_of_step_has_a_name_and_a_description():
    class Bare(Step):
        name = "bare"

    class Told(Step):
        name = "told"
        description = "told: says what it does"

    assert Step.description == ""
    assert describe(Bare()) == "bare" and describe(Told()) == "told: says what it does"
    assert describe(KeepFirstStep("first", key=len, reason="duplicate")) == "first"
