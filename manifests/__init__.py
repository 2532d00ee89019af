"""Data, not code: default sources per slice, read with :func:`load`."""

import json
from importlib import resources
from typing import Any


def load(name: str) -> dict[str, Any]:
    """Return the JSON manifest ``name`` (without extension) shipped with the package."""
    return json.loads(resources.files(__name__).joinpath(f"{name}.json").read_text("utf-8"))


def text(filename: str) -> str:
    """Return the text of the manifest file ``filename`` (a query, say) shipped with the package."""
    return resources.files(__name__).joinpath(filename).read_text("utf-8")
