"""The package's layers, read from its imports: every import points down, to a lower layer, or
stays in its own package; Beam is imported only by the Beam executor (``pipelines/beam``)."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LAYERS = {  # package (a folder, or a subpackage of pipelines/) -> its layer
    "manifests": 0,  # data
    "core": 1,  # records, steps, errors, storage, streams
    "models": 2,  # where models come from; lmplz
    "formats": 2,  # readers of the source formats
    "filters": 3,  # the steps (they load their models through models/)
    "dedup": 4,  # exact, shared-key and MinHash kernels (they normalise as filters/ does)
    "slices": 5,  # recipes
    "pipelines": 6,  # only says what its packages are
    "pipelines/runs": 6,  # a run of a slice, whatever executes it
    "pipelines/beam": 7,  # the Beam executor
    "pipelines/inprocess": 7,  # the in-process executor (no Beam)
    "pipelines/fetch": 7,  # fetching cited pages
    "pipelines/commands": 8,  # the CLI and the commands
}
BEAM_ONLY_IN = "pipelines/beam"
LAUNCHERS = ("cli", "subcommands", "demo")  # the commands that start runs: they import the Beam executor


def imports(path: Path) -> list[tuple[int, str]]:
    """Every module ``path`` imports, at any depth (late imports too), with its line; ``from a
    import b`` gives ``a.b`` (``b`` may be a module)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found += [(node.lineno, f"{node.module}.{alias.name}") for alias in node.names]
    return found


def package_of(name: str) -> str | None:
    """The package (a key of ``LAYERS``) a module of ours belongs to; None for another's module."""
    parts = name.split(".")
    if parts[0] != "redpajama" or len(parts) < 2:
        return None
    for depth in (3, 2):
        key = "/".join(parts[1:depth])
        if key in LAYERS:
            return key
    raise AssertionError(f"{name}: a module of no known package")


def modules() -> list[tuple[str, Path]]:
    """Every module of the package, with its package."""
    found = []
    for folder in [key for key in LAYERS if "/" not in key]:
        for path in sorted((ROOT / folder).rglob("*.py")):
            dotted = ".".join(("redpajama", *path.relative_to(ROOT).with_suffix("").parts))
            found.append((package_of(dotted), path))
    return found


def test_every_folder_of_the_package_has_a_layer():
    packaged = {path.parent.relative_to(ROOT).as_posix() for path in ROOT.glob("**/__init__.py")
                if path.parts[len(ROOT.parts)] not in ("tests", "bench", ".venv")}
    assert packaged == set(LAYERS)


def test_imports_point_down_the_layers():
    upward = []
    for package, path in modules():
        for line, name in imports(path):
            target = package_of(name)
            if target not in (None, package) and not LAYERS[target] < LAYERS[package]:
                upward.append(f"{path.relative_to(ROOT)}:{line} imports {name} ({target}: layer {LAYERS[target]})")
    assert upward == []


def test_beam_is_imported_only_by_the_beam_executor():
    outside = [f"{path.relative_to(ROOT)}:{line} imports {name}" for package, path in modules() if package != BEAM_ONLY_IN
               for line, name in imports(path) if name.split(".")[0] == "apache_beam"]
    assert outside == []


def test_the_check_sees_an_upward_import(tmp_path):
    probe = tmp_path / "probe.py"
    probe.write_text("def late():\n    from redpajama.pipelines.beam import sinks\n    import apache_beam.metrics\n")
    assert imports(probe) == [(2, "redpajama.pipelines.beam.sinks"), (3, "apache_beam.metrics")]
    assert package_of("redpajama.pipelines.beam.sinks") == "pipelines/beam" and package_of("redpajama.filters.x") == "filters"
    assert package_of("numpy.linalg") is None


def test_everything_but_the_beam_executor_works_without_beam(tmp_path):
    """Importing every module outside ``pipelines/beam`` (but the commands that start runs) loads
    no Beam, and core reads local files itself."""
    import subprocess
    import sys

    (tmp_path / "a.txt.gz").write_bytes(__import__("gzip").compress(b"one\n\ntwo\n"))
    names = [".".join(("redpajama", *path.relative_to(ROOT).with_suffix("").parts)).removesuffix(".__init__")
             for package, path in modules() if package != BEAM_ONLY_IN and path.stem not in LAUNCHERS]
    probe = (
        "import importlib, sys\n"
        f"for name in {names!r}: importlib.import_module(name)\n"
        "from redpajama.core import storage, streams\n"
        f"[path] = storage.expand({str(tmp_path / '*.gz')!r})\n"
        "print(list(streams.numbered_lines(path)), 'apache_beam' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[(0, b'one'), (2, b'two')] False"


def test_outputs_are_reported_sampled_and_shown_without_beam(tmp_path):
    """``report``, ``sample`` and ``show`` read and write through core's storage: on a local output
    they run with Beam never loaded."""
    import json
    import subprocess
    import sys

    import zstandard

    folder = tmp_path / "out" / "wikipedia"
    folder.mkdir(parents=True)
    records = [{"text": f"Article {n}", "meta": {"id": f"wikipedia/ltg/{n}"}} for n in range(20)]
    lines = "".join(json.dumps(record) + "\n" for record in records).encode()
    (folder / "wikipedia-00000-of-00001.jsonl.zst").write_bytes(zstandard.ZstdCompressor().compress(lines))
    (folder / "stats.json").write_text(json.dumps({"slice": "wikipedia", "read": 20, "kept": 20, "dropped": {},
                                                   "failed": 0, "units": {"planned": 1, "read": 1, "inputs": 1}}))
    probe = (
        "import io, sys\n"
        "from redpajama.pipelines.commands import report, sample, show\n"
        f"out = {str(tmp_path / 'out')!r}\n"
        "built = report.build_report(out, None)\n"
        "report.write_report(built, out)\n"
        "done = sample.sample(out, out + '-sample', {'*': 1.0}, 0, None)\n"
        "shown = show.show(show.output_shards(out + '/wikipedia'), 3, [], 40, False, io.StringIO())\n"
        "print(built['slices'][0]['documents'], done['slices'][0]['documents'], 'apache_beam' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["20", "20", "False"]
    assert (tmp_path / "out" / "report.png").stat().st_size > 0


def test_the_command_line_loads_beam_only_for_what_needs_it(tmp_path):
    """``redpajama`` with the in-process executor, ``show`` and ``slices`` start without Beam (loading
    it takes seconds); a path with a scheme such as ``hdfs://`` loads Beam's file systems when met."""
    import gzip
    import json
    import subprocess
    import sys

    rows = tmp_path / "c4-train.00000-of-01024.json.gz"
    rows.write_bytes(gzip.compress(json.dumps({"text": "a page of words", "url": "https://x/1", "timestamp": "t"}).encode()))
    out = str(tmp_path / "out")
    probe = (
        "import contextlib, io, sys\n"
        "from redpajama.pipelines.commands.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        f"    codes = [main(['run', 'c4', '--input', {str(rows)!r}, '--output', {out!r}, '--executor', 'inprocess',\n"
        "                   '--count-tokens', 'off']), main(['show', " + repr(out + "/c4") + "]), main(['slices'])]\n"
        "print(codes, 'apache_beam' in sys.modules)\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    code = main(['run', 'c4', '--input', 'hdfs://nohost/rows.json.gz', '--output', "
        + repr(str(tmp_path / "other")) + ", '--executor', 'inprocess'])\n"
        "print(code, 'apache_beam' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert done.stdout.splitlines() == ["[0, 0, 0] False", "2 True"], done.stdout + done.stderr[-2000:]
    assert "hdfs" in done.stderr  # Beam's file system for the scheme answered, not "no file system installed"


def test_every_command_reads_paths_with_a_scheme_through_beams_file_systems(tmp_path):
    """Not only ``run --executor inprocess``: the Beam executor's launcher, ``show``, ``report`` and
    ``sample`` expand a path such as ``hdfs://`` before Beam is loaded, and must load its file systems."""
    import subprocess
    import sys

    commands = [["run", "c4", "--input", "hdfs://nohost/c4-*.json.gz", "--output", str(tmp_path / "beam"),
                 "--executor", "beam", "--workers", "1"],
                ["show", "hdfs://nohost/out/c4"], ["report", "hdfs://nohost/out"],
                ["sample", "hdfs://nohost/out", "--dest", str(tmp_path / "sample"), "--fraction", "0.5"]]
    probe = (
        "import contextlib, io, sys\n"
        "from redpajama.core import storage\n"
        "from redpajama.pipelines.commands.cli import main\n"
        f"for argv in {commands!r}:\n"
        "    storage.use_filesystems(storage.LocalFiles())\n"
        "    with contextlib.redirect_stdout(io.StringIO()):\n"
        "        main(argv)\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    lines = done.stderr.splitlines()
    assert len(lines) == len(commands) and all("hdfs" in line and "installed (import" not in line for line in lines), \
        done.stderr[-3000:]

def test_worker_processes_of_the_command_line_read_paths_with_a_scheme_too(tmp_path):
    """``report`` counts tokens in spawned processes, which import the command line's script but
    never run its ``main``: they too load Beam's file systems for an ``hdfs://`` shard when met."""
    import subprocess
    import sys

    script = tmp_path / "redpajama_script.py"  # as the installed console script: imports main, runs it
    script.write_text(
        "from redpajama.pipelines.commands.cli import main\n"
        "from redpajama.pipelines.runs.tokens import count_files\n"
        "if __name__ == '__main__':\n"
        "    main(['slices'])\n"
        "    count_files(['hdfs://nohost/a.jsonl', 'hdfs://nohost/b.jsonl'], None, False, processes=2)\n")
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True)
    assert done.returncode != 0 and "hdfs" in done.stderr.splitlines()[-1], done.stderr[-2000:]
    assert "installed (import" not in done.stderr, done.stderr[-2000:]

# Words that name a slice but mean something else where they appear (the test lists each, and why).
NOT_A_SLICE = {
    ("core/s3.py", "arxiv"): "the S3 bucket arXiv's sources are in",
    ("pipelines/commands/models_build.py", "wikipedia"): "the text the offline models learn from, in models.json",
    ("pipelines/commands/models_build.py", "commoncrawl"): "the pages the offline models are measured on, in models.json",
}


def test_no_module_outside_slices_and_manifests_names_a_slice():
    """A slice owns everything about itself: nothing else lists, maps or compares slice names or folders."""
    from redpajama.slices.registry import registry

    names = set()
    for name, cls in registry().items():
        release = cls.report_target().release_folder
        names |= {name, cls.folder, *([release] if release else [])}
    named = []
    for package, path in modules():
        if package in ("slices", "manifests"):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and node.value in names:
                where = str(path.relative_to(ROOT))
                if (where, node.value) not in NOT_A_SLICE:
                    named.append(f"{where}:{node.lineno} names {node.value!r}")
    assert named == []


def test_a_path_no_file_system_reads_names_the_module_that_installs_them():
    """Without Beam's file systems, a path with a scheme fails naming the module whose import
    installs them; importing that module is enough for the path to reach Beam's file system."""
    import subprocess
    import sys

    probe = (
        "import importlib, re\n"
        "from redpajama.core import storage\n"
        "from redpajama.core.errors import SourceError\n"
        "def said():\n"
        "    try:\n"
        "        storage.exists('hdfs://nohost/a.txt')\n"
        "    except Exception as error:\n"
        "        return str(error)\n"
        "    return ''\n"
        "first = said()\n"
        "importlib.import_module(re.search(r'\\(import (\\S+)\\)', first).group(1))\n"
        "print('no file system for this scheme' in first, 'no file system for this scheme' in said())\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert done.stdout.split() == ["True", "False"], done.stdout + done.stderr[-2000:]
