"""Each case runs once per session (its outputs feed the table and the planted-bug tests);
the tables are printed at the end of the run."""

from __future__ import annotations

import gzip
import hashlib
import json
import shutil
import sys
from importlib import metadata
from pathlib import Path

import pytest

from tests.conftest import FIDELITY_TITLE, SHARED, need
from tests.fidelity import arxiv, cases
from tests.fidelity.harness import report, run

RESULTS: list = []
WIKI_EN = SHARED / "wikipedia" / "en" / "gensim-enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2"
BEER = SHARED / "stackexchange" / "beer.stackexchange.com" / "Posts.xml"


@pytest.fixture
def fidelity_results() -> list:
    return RESULTS


def pytest_sessionfinish(session) -> None:
    """An xdist worker hands the table to the controller, which prints it (tests/conftest.py)."""
    if RESULTS and hasattr(session.config, "workeroutput"):
        session.config.workeroutput["fidelity_table"] = report(RESULTS)


def pytest_terminal_summary(terminalreporter) -> None:
    if RESULTS:
        terminalreporter.write_sep("=", FIDELITY_TITLE)
        terminalreporter.write_line(report(RESULTS))


@pytest.fixture(scope="session")
def arxiv_runs(tmp_path_factory):
    folders = sorted(p for p in need(SHARED / "arxiv").iterdir() if p.is_dir())
    need(cases.REFERENCE / "arxiv.jsonl")
    work = tmp_path_factory.mktemp("arxiv")
    case = cases.arxiv_case([str(arxiv.pack_bulk_tar(folders, work / "arXiv_src_2001_001.tar"))])
    return case, run(case, work)


@pytest.fixture(scope="session")
def stackexchange_runs(tmp_path_factory):
    need(cases.REFERENCE / "stackexchange-beer.jsonl")
    case = cases.stackexchange_case([str(need(BEER))])
    return case, run(case, tmp_path_factory.mktemp("stackexchange"))


@pytest.fixture(scope="session")
def wikipedia_runs(tmp_path_factory):
    need(cases.REFERENCE / "wikipedia-en.jsonl")
    case = cases.wikipedia_case([str(need(WIKI_EN))])
    return case, run(case, tmp_path_factory.mktemp("wikipedia"))


# --- GitHub: BigQuery-shaped rows and repositories on disk, made of installed packages' sources ----

LOCAL_LICENSES = {"pluggy": "mit", "idna": "bsd-3-clause", "requests": "apache-2.0", "py7zr": "lgpl-2.1"}  # as GitHub has them


def package_files(package: str) -> dict[str, bytes]:
    """An installed package's files (compiled caches left out) by path inside the package."""
    root = Path(sys.modules[package].__file__ if package in sys.modules else __import__(package).__file__).parent
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and "__pycache__" not in p.parts}


def package_licence(distribution: str) -> bytes:
    licence = next(f for f in metadata.distribution(distribution).files if "LICENSE" in f.name.upper())
    return Path(licence.locate()).read_bytes()


def bigquery_row(repo: str, path: str, licence: str, data: bytes) -> dict:
    """A row of RedPajama's export query: ``contents`` joined with ``files``, ``licenses``, ``languages``."""
    try:
        content, binary = data.decode("utf-8"), b"\0" in data[:8192]
    except UnicodeDecodeError:
        content, binary = None, True
    blob = hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()
    return {"id": blob, "size": len(data), "content": None if binary else content, "binary": binary, "copies": 1,
            "repo_name": repo, "ref": "refs/heads/main", "path": path, "mode": 33188, "symlink_target": None,
            "license": licence, "language": [{"name": "Python", "bytes": 1000}]}


GEO = b"import math\n\n\ndef area(radius):\n    \"\"\"The area of a circle.\"\"\"\n    return math.pi * radius ** 2\n"
EDGE_FILES = {
    "geo.py": b"# Copyright 2016 Acme Corp.\n# All rights reserved.\n\n" + GEO,
    "tools/run.sh": b"#!/bin/sh\n# Build the documentation, then the wheels.\nset -e\nmake docs\nmake wheels\n",
    "src/vec.c": b"/* Copyright (c) 2020 Acme Corp. */\n#include <math.h>\n\ndouble norm(double x, double y) {\n"
                 b"    return sqrt(x * x + y * y);\n}\n",
    "src/vec.h": b"/* vector helpers */\ndouble norm(double x, double y);\n",
    "web/app.min.js": b"var a=" + b"1+" * 700 + b"1;\n",
    "data/table.py": b"T = [\n" + b"    (1, 2, 3, 4),\n" * 40 + b"]\n",
    "server.crt": b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
    "LICENSE": b"MIT License\n\nCopyright (c) 2016 Acme Corp.\n",
    "docs/LICENSE": b"MIT License\n\nCopyright (c) 2016 Acme Corp.\n",
    "img.png": b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR",
    "Makefile": b"all:\n\tpython -m build\n\ndocs:\n\tsphinx-build docs build/docs\n",
}


@pytest.fixture(scope="session")
def github_inputs(tmp_path_factory) -> tuple[list[str], dict[str, str]]:
    """An export file and four repository folders, and the licences GitHub gives the folders."""
    work = tmp_path_factory.mktemp("github-inputs")
    rows = [bigquery_row("acme/geo-tools", "geo.py", "mit", EDGE_FILES["geo.py"])]  # listed first, same content
    rows += [bigquery_row("acme/geo", path, "mit", data) for path, data in EDGE_FILES.items()]
    rows += [bigquery_row("pallets/click", path, "bsd-3-clause", data) for path, data in package_files("click").items()]
    rows += [bigquery_row("earwig/mwparserfromhell", path, "mit", data)
             for path, data in package_files("mwparserfromhell").items()]
    rows += [bigquery_row("gnu/thing", "thing.py", "gpl-3.0", GEO + b"# gpl\n")]
    rows += [bigquery_row("aaa/click-fork", "core.py", "apache-2.0", package_files("click")["core.py"])]
    export = work / "github_000000000000.jsonl.gz"
    export.write_bytes(gzip.compress("".join(json.dumps(row) + "\n" for row in rows).encode()))
    licences = {}
    for package in LOCAL_LICENSES:
        folder = work / f"local-{package}"
        shutil.copytree(Path(__import__(package).__file__).parent, folder, ignore=shutil.ignore_patterns("__pycache__"))
        (folder / "LICENSE").write_bytes(package_licence(package))
        licences[str(folder)] = LOCAL_LICENSES[package]
    return [str(export), *licences], licences


@pytest.fixture(scope="session")
def github_runs(tmp_path_factory, github_inputs):
    inputs, licences = github_inputs
    case = cases.github_case(inputs, licences, need(cases.TOKENIZER))
    return case, run(case, tmp_path_factory.mktemp("github"))
