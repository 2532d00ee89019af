"""The package's layers, read from its imports: every import points down (or stays in its
layer), and Beam is imported only by the pipelines layer."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LAYERS = {
    "manifests": 0,  # data
    "core": 1,  # records, steps, errors, storage, streams
    "formats": 2, "filters": 2, "dedup": 2, "models": 2,  # readers and kernels
    "slices": 3,  # recipes
    "pipelines": 4,  # Beam, the CLI and commands
}


def imports(path: Path) -> list[tuple[int, str]]:
    """Every module ``path`` imports, at any depth (late imports too), with its line."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.append((node.lineno, node.module))
    return found


def modules() -> list[tuple[str, Path]]:
    return [(folder, path) for folder in LAYERS for path in sorted((ROOT / folder).rglob("*.py"))]


def test_every_folder_of_the_package_has_a_layer():
    packaged = {path.parent.name for path in ROOT.glob("*/__init__.py")} - {"tests", "bench"}
    assert packaged == set(LAYERS)


def test_imports_point_down_the_layers():
    upward = []
    for folder, path in modules():
        for line, name in imports(path):
            parts = name.split(".")
            if parts[0] == "redpajama" and len(parts) > 1 and LAYERS[parts[1]] > LAYERS[folder]:
                upward.append(f"{path.relative_to(ROOT)}:{line} imports {name}")
    assert upward == []


def test_beam_is_imported_only_by_the_pipelines_layer():
    outside = [f"{path.relative_to(ROOT)}:{line} imports {name}" for folder, path in modules() if folder != "pipelines"
               for line, name in imports(path) if name.split(".")[0] == "apache_beam"]
    assert outside == []


def test_the_check_sees_an_upward_import(tmp_path):
    probe = tmp_path / "probe.py"
    probe.write_text("def late():\n    from redpajama.pipelines import io\n    import apache_beam.metrics\n")
    assert imports(probe) == [(2, "redpajama.pipelines"), (3, "apache_beam.metrics")]
