"""Each slice's options: one typed dataclass, from which ``redpajama run SLICE`` gets its arguments."""

import dataclasses

import pytest
from redpajama.pipelines.commands.cli import main, make_parser
from redpajama.slices.options import SliceOptions, option
from redpajama.slices.registry import registry


@pytest.mark.parametrize("name", sorted(registry()))
def test_help_of_every_slice_prints(name, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["run", name, "--help"])
    assert exit_.value.code == 0
    options = [spec for spec in dataclasses.fields(registry()[name].Options) if spec.metadata.get("command_line", True)]
    assert (f"{name} options" in capsys.readouterr().out) == bool(options)  # argparse prints no empty group


@pytest.mark.parametrize("name", sorted(registry()))
def test_the_command_line_defaults_are_the_dataclass_defaults(name):
    cls = registry()[name]
    args = vars(make_parser().parse_args(["run", name, "--output", "out"]))
    for spec in dataclasses.fields(cls.Options):
        if spec.metadata.get("command_line", True):
            assert args[spec.name] == spec.default, spec.name


def test_typed_values_switches_and_unknown_options():
    args = make_parser().parse_args(["run", "books", "--output", "out", "--threshold", "0.7", "--no-verify", "--num-perm", "64"])
    slc = registry()["books"](**{f.name: getattr(args, f.name) for f in dataclasses.fields(registry()["books"].Options)
                                 if hasattr(args, f.name)})
    assert (slc.options.threshold, slc.options.no_verify, slc.options.num_perm) == (0.7, True, 64)
    with pytest.raises(TypeError):
        registry()["books"](thresold=0.7)


def test_a_wrong_type_is_one_usage_line(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["run", "books", "--output", "out", "--num-perm", "many"])
    assert exit_.value.code == 2
    assert "invalid int value: 'many'" in capsys.readouterr().err


def test_an_option_type_outside_the_command_line_kinds_is_refused():
    @dataclasses.dataclass(frozen=True)
    class Odd(SliceOptions):
        pairs: list | None = option(None, "no such kind")

    import argparse

    from redpajama.slices.options import add_arguments

    with pytest.raises(TypeError, match="int, float, str or bool"):
        add_arguments(argparse.ArgumentParser(), Odd)
