"""Data, not code: default sources per slice, read with :func:`load`.

A file is looked for in each folder of this package's ``__path__`` in order (the package's own
folder first), so a folder added to the path brings its manifests (a slice kept elsewhere).
"""

import json
from pathlib import Path
from typing import Any


def _file(filename: str) -> Path:
    for folder in __path__:
        candidate = Path(folder, filename)
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(f"no manifest {filename} in {', '.join(__path__)}")


def exists(name: str) -> bool:
    """Whether there is a JSON manifest ``name`` (without extension)."""
    return any(Path(folder, f"{name}.json").is_file() for folder in __path__)


def load(name: str) -> dict[str, Any]:
    """Return the JSON manifest ``name`` (without extension) shipped with the package."""
    return json.loads(_file(f"{name}.json").read_text("utf-8"))


def text(filename: str) -> str:
    """Return the text of the manifest file ``filename`` (a query, say) shipped with the package."""
    return _file(filename).read_text("utf-8")
