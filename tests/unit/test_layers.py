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


def test_everything_below_pipelines_works_without_beam(tmp_path):
    """Importing every module of the lower layers loads no Beam, and core reads local files itself."""
    import subprocess
    import sys

    (tmp_path / "a.txt.gz").write_bytes(__import__("gzip").compress(b"one\n\ntwo\n"))
    modules = [f"redpajama.{folder}.{path.stem}" for folder, path in modules_below_pipelines()]
    probe = (
        "import importlib, sys\n"
        f"for name in {modules!r}: importlib.import_module(name)\n"
        "from redpajama.core import storage, streams\n"
        f"[path] = storage.expand({str(tmp_path / '*.gz')!r})\n"
        "print(list(streams.numbered_lines(path)), 'apache_beam' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[(0, b'one'), (2, b'two')] False"


def modules_below_pipelines() -> list[tuple[str, Path]]:
    return [(folder, path) for folder, path in modules()
            if folder not in ("pipelines", "manifests") and path.stem != "__init__"]


# Words that name a slice but mean something else where they appear (the test lists each, and why).
NOT_A_SLICE = {
    ("core/s3.py", "arxiv"): "the S3 bucket arXiv's sources are in",
    ("pipelines/models_build.py", "wikipedia"): "the text the offline models learn from, in models.json",
    ("pipelines/models_build.py", "commoncrawl"): "the pages the offline models are measured on, in models.json",
}


def test_no_module_outside_slices_and_manifests_names_a_slice():
    """A slice owns everything about itself: nothing else lists, maps or compares slice names or folders."""
    from redpajama.slices.registry import registry

    names = set()
    for name, cls in registry().items():
        release = cls.report_target().release_folder
        names |= {name, cls.folder, *([release] if release else [])}
    named = []
    for folder, path in modules():
        if folder in ("slices", "manifests"):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and node.value in names:
                where = str(path.relative_to(ROOT))
                if (where, node.value) not in NOT_A_SLICE:
                    named.append(f"{where}:{node.lineno} names {node.value!r}")
    assert named == []
