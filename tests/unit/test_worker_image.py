"""The Dataflow worker image's install step, without a Docker daemon: the build context is
assembled as Docker assembles it (the repository minus ``.dockerignore``), the package is built
from exactly those files, and every module imports from that build with no source tree on
the path. Beam's one pin (the Dockerfile's ``BEAM_VERSION``) is the launcher's requirement too."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = (ROOT / "Dockerfile").read_text()


def ignore_patterns() -> list[str]:
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    patterns = [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]
    # The matcher below covers the forms this file uses; an exception (!) or a character class
    # would need Docker's full rules, so they are refused here rather than misread.
    assert all(not p.startswith("!") and "[" not in p for p in patterns), patterns
    return patterns


def pattern_regex(pattern: str) -> re.Pattern:
    """Go's filepath.Match with Docker's ``**`` (any number of folders): ``*`` and ``?`` stay
    inside one folder name."""
    out = []
    for part in re.split(r"(\*\*/|\*\*|\*|\?)", pattern):
        out.append({"**/": "(?:.*/)?", "**": ".*", "*": "[^/]*", "?": "[^/]"}.get(part, re.escape(part)))
    return re.compile("".join(out) + r"\Z")


def ignored(relative: str, patterns: list[str]) -> bool:
    """Docker's rule: a pattern matches a path or any folder above it."""
    parts = relative.split("/")
    prefixes = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    return any(pattern_regex(p).match(prefix) for p in patterns for prefix in prefixes)


def build_context(target: Path) -> list[str]:
    patterns = ignore_patterns()
    copied = []
    for folder, subfolders, files in os.walk(ROOT):
        rel_folder = os.path.relpath(folder, ROOT)
        subfolders[:] = [d for d in subfolders if not ignored(os.path.normpath(os.path.join(rel_folder, d)), patterns)]
        for name in files:
            relative = os.path.normpath(os.path.join(rel_folder, name))
            if ignored(relative, patterns):
                continue
            (target / relative).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / relative, target / relative)
            copied.append(relative)
    return sorted(copied)


def test_ignore_rules_match_as_docker_matches():
    patterns = ["**/.venv", "**/__pycache__", "tests", "out", "**/*.egg-info"]
    assert ignored(".venv/bin/python", patterns) and ignored("a/b/.venv", patterns)
    assert ignored("pipelines/__pycache__/x.pyc", patterns) and ignored("redpajama.egg-info/PKG-INFO", patterns)
    assert ignored("tests/unit/x.py", patterns) and ignored("out", patterns)
    assert not ignored("pipelines/tests.py", patterns) and not ignored("outputs/x", patterns)
    assert not ignored("slices/base.py", patterns) and not ignored("setup.py", patterns)


def test_the_image_installs_the_package_from_exactly_its_build_context(tmp_path):
    assert re.search(r"^COPY \. /tmp/redpajama-src$", DOCKERFILE, re.M), "the Dockerfile copies the whole context"
    assert re.search(r'pip install --no-cache-dir "/tmp/redpajama-src\[dataflow\]"', DOCKERFILE)
    source = tmp_path / "context"
    copied = build_context(source)
    assert "setup.py" in copied and "Dockerfile" in copied
    assert not [p for p in copied if p.startswith((".git/", ".venv/", "tests/", "bench/", "out/"))]

    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
                    "--target", str(target), str(source)], check=True, capture_output=True, cwd=tmp_path)
    # No site processing: this environment's editable install (a .pth hook) stays out, its
    # packages are only the dependencies, after the build.
    script = (
        "import importlib, pkgutil, redpajama\n"
        "names = [m.name for m in pkgutil.walk_packages(redpajama.__path__, 'redpajama.')]\n"
        "for name in names:\n"
        "    module = importlib.import_module(name)\n"
        f"    assert module.__file__.startswith({str(target)!r}), module.__file__\n"
        "import redpajama.manifests as manifests\n"
        "print(len(names), manifests.load('wikipedia') is not None)\n"
    )
    env = {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": f"{target}{os.pathsep}{sysconfig.get_paths()['purelib']}"}
    done = subprocess.run([sys.executable, "-S", "-c", script], capture_output=True, text=True, cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    count, manifests_found = done.stdout.split()
    packages = {p.split("/")[0] for p in copied if p.endswith("/__init__.py") and p.count("/") == 1}
    modules = [p for p in copied if p.endswith(".py") and p.split("/")[0] in packages]
    assert int(count) == len(modules) > 60 and manifests_found == "True"  # every module, subpackages' too
    pin = re.search(r"^ARG BEAM_VERSION=(\S+)$", DOCKERFILE, re.M).group(1)
    metadata = next(target.glob("redpajama-*.dist-info")) / "METADATA"
    assert f"Requires-Dist: apache-beam=={pin}" in metadata.read_text().splitlines()
    assert {"core", "formats", "filters", "dedup", "models", "slices", "pipelines", "manifests"} <= packages


def test_beam_is_pinned_once_for_launcher_and_workers():
    pin = re.search(r"^ARG BEAM_VERSION=(\S+)$", DOCKERFILE, re.M).group(1)
    assert re.search(r"^FROM apache/beam_python\$\{PYTHON_VERSION\}_sdk:\$\{BEAM_VERSION\}$", DOCKERFILE, re.M)
    setup = (ROOT / "setup.py").read_text()
    assert "apache-beam==" not in setup.replace('f"apache-beam=={BEAM}"', "").replace(
        'f"apache-beam[gcp]=={BEAM}"', ""), "Beam is pinned only through the Dockerfile"
    from importlib.metadata import version

    assert version("apache-beam") == pin, "the launcher runs the SDK the image is built from"
    python = re.search(r"^ARG PYTHON_VERSION=(\S+)$", DOCKERFILE, re.M).group(1)
    assert python == f"{sys.version_info.major}.{sys.version_info.minor}"
