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


def test_a_runs_context_is_one_frozen_value_the_slice_is_given():
    import dataclasses

    import pytest
    from redpajama.core.streams import Limits
    from redpajama.slices.base import RunContext
    from redpajama.slices.books import Books

    context = RunContext(limits=Limits(max_record_bytes=10), input_roots=("/data",), file_limit=3)
    with pytest.raises(dataclasses.FrozenInstanceError):
        context.file_limit = 4  # type: ignore[misc]
    plain = Books(threshold=0.5)
    bound = plain.with_context(context)
    assert plain.context == RunContext() and bound.context is context and bound.options == plain.options
    assert bound.relative_name("/data/a/b.txt") == "a/b.txt" and plain.relative_name("/data/a/b.txt") == "b.txt"
    assert bound.fingerprint() == {**plain.fingerprint(), "file_limit": 3}  # a limit inside the plan changes the output


def test_a_slice_has_one_folder_and_names_its_shards():
    from redpajama.slices.base import Slice
    from redpajama.slices.registry import registry

    class Toy(Slice):
        name = "toy"

    class Renamed(Toy):
        name = "renamed"
        folder = "renamed_output"

    assert (Toy.folder, Toy.shard_name) == ("toy", "toy")
    assert (Renamed.folder, Renamed.shard_name) == ("renamed_output", "renamed_output")
    renamed = {"commoncrawl": ("common_crawl", "common_crawl"), "books": ("books", "book"),
               "wikiref-urls": ("wikiref-urls", "urls")}
    slices = registry()
    assert {name: (slices[name].folder, slices[name].shard_name) for name in renamed} == renamed
    assert all((cls.folder, cls.shard_name) == (name, name) for name, cls in slices.items()
               if name in ("arxiv", "c4", "github", "stackexchange", "wikipedia"))
    folders = [cls.folder for cls in slices.values()]
    assert len(set(folders)) == len(folders)  # one folder is one slice
