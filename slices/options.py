"""A slice's options as a typed dataclass: each default written once, the command line made from it.

    @dataclass(frozen=True)
    class BooksOptions(SliceOptions):
        threshold: float = option(0.8, "word 5-gram Jaccard at which two books are near-duplicates")

gives ``--threshold FLOAT`` (default 0.8) to ``redpajama run books``. A ``bool`` is a switch
(``store_true``); ``X | None`` means "not given"; the flag is the field name with dashes.
"""

from __future__ import annotations

import argparse
import dataclasses
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from redpajama.core.errors import UsageError

COMPAT_ALL = "all"


def option(default: Any = None, help: str = "", *, metavar: str | None = None, choices: tuple[str, ...] | None = None,
           command_line: bool = True) -> Any:
    """A field of a slice's options with what the command line needs to offer it."""
    return dataclasses.field(default=default, metadata={
        "help": help, "metavar": metavar, "choices": choices, "command_line": command_line})


def compat_option(rules: Mapping[str, str]) -> Any:
    """``--redpajama-compat RULE,...``: switch named deviations back to RedPajama's behaviour."""
    listing = "; ".join(f"{name}: {what}" for name, what in rules.items())
    return option(None, f"comma-separated rules (or '{COMPAT_ALL}') that restore RedPajama's own behaviour: {listing}",
                  metavar="RULES")


def compat_rules(value: str | None, rules: Mapping[str, str]) -> frozenset[str]:
    """The rule names a ``--redpajama-compat`` value asks for; an unknown name is a :class:`UsageError`."""
    names = {item.strip() for item in (value or "").split(",") if item.strip()}
    if COMPAT_ALL in names:
        return frozenset(rules)
    unknown = sorted(names - set(rules))
    if unknown:
        raise UsageError(f"--redpajama-compat: unknown rule {', '.join(unknown)} (known: {', '.join(rules)}, {COMPAT_ALL})")
    return frozenset(names)


def comma_list(value: str | None) -> list[str]:
    """``"a, b,,c"`` -> ``["a", "b", "c"]``."""
    return [item.strip() for item in (value or "").split(",") if item.strip()]


@dataclass(frozen=True)
class SliceOptions:
    """Options every slice has; subclasses add their own fields."""

    def settings(self) -> dict[str, Any]:
        """The options that are set, by name (what a run's fingerprint and stats record)."""
        return {key: value for key, value in sorted(dataclasses.asdict(self).items()) if value is not None}


def add_arguments(parser: argparse.ArgumentParser | argparse._ArgumentGroup, options: type[SliceOptions]) -> None:
    """One command-line argument per field of ``options`` (in field order)."""
    hints = typing.get_type_hints(options)
    for spec in dataclasses.fields(options):
        if not spec.metadata.get("command_line", True):
            continue
        flag = "--" + spec.name.replace("_", "-")
        kind = _value_type(hints[spec.name])
        help_text = spec.metadata.get("help", "").replace("%", "%%")  # argparse formats help with %
        if kind is bool:
            parser.add_argument(flag, dest=spec.name, action="store_true", help=help_text)
            continue
        if spec.default is not None:
            help_text = f"{help_text} (default: {spec.default})" if help_text else f"default: {spec.default}"
        parser.add_argument(flag, dest=spec.name, type=kind, default=spec.default, help=help_text,
                            metavar=spec.metadata.get("metavar"), choices=spec.metadata.get("choices"))


def _value_type(hint: Any) -> type:
    """``int``, ``float``, ``str`` or ``bool`` from ``X`` or ``X | None``."""
    arguments = [arg for arg in typing.get_args(hint) if arg is not type(None)]
    kind = arguments[0] if arguments else hint
    if kind not in (int, float, str, bool):
        raise TypeError(f"a slice option must be int, float, str or bool (or None), not {hint!r}")
    return kind
