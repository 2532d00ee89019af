"""Every slice, found by looking: each module of this package that defines a :class:`Slice`
subclass with a ``name`` adds it. Adding a slice is adding its module."""

from __future__ import annotations

import functools
import importlib
import pkgutil

import redpajama.slices
from redpajama.slices.base import Slice

NOT_SLICES = {"base", "registry", "manifest", "options"}


@functools.cache
def _found() -> tuple[tuple[str, type[Slice]], ...]:
    found = {}
    for module_info in pkgutil.iter_modules(redpajama.slices.__path__):
        if module_info.name in NOT_SLICES:
            continue
        module = importlib.import_module(f"{redpajama.slices.__name__}.{module_info.name}")
        for value in vars(module).values():
            if (isinstance(value, type) and issubclass(value, Slice) and value.__module__ == module.__name__
                    and "name" in vars(value)):
                found[value.name] = value
    return tuple(sorted(found.items()))


def registry() -> dict[str, type[Slice]]:
    """All slices by name."""
    return dict(_found())
