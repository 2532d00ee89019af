"""GitHub on real code: installed packages' sources as repositories, and BigQuery-export rows."""

import gzip
import json
import shutil
import sys
from importlib import metadata
from pathlib import Path

from redpajama.filters.code import EXTENSIONS
from redpajama.slices.github import GitHub

from tests.conftest import SHARED, need
from tests.integration.helpers import errors, output_bytes, records, run

TOKENIZER = SHARED / "models" / "gpt-neox-20b" / "20B_tokenizer.json"


def package_repo(target: Path, package: str, distribution: str) -> Path:
    """A repository folder made of an installed package's sources and its licence file."""
    source = Path(sys.modules[package].__file__).parent if package in sys.modules else None
    if source is None:
        source = Path(__import__(package).__file__).parent
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__"))
    licence = next(f for f in metadata.distribution(distribution).files if "LICENSE" in f.name.upper())
    shutil.copy(licence.locate(), target / "LICENSE")
    return target


def slice_() -> GitHub:
    return GitHub(tokenizer=str(need(TOKENIZER)))


def test_repositories_licences_dedup_and_filters(tmp_path):
    click = package_repo(tmp_path / "click", "click", "click")  # BSD-3-Clause
    mwp = package_repo(tmp_path / "mwparserfromhell", "mwparserfromhell", "mwparserfromhell")  # MIT
    lgpl = package_repo(tmp_path / "py7zr", "py7zr", "py7zr")  # LGPL-2.1: not allowed
    fork = tmp_path / "aaa-fork"  # sorts first: its copy of click's file is the one kept
    fork.mkdir()
    shutil.copy(click / "LICENSE", fork / "LICENSE")
    shutil.copy(click / "core.py", fork / "core.py")
    (fork / "logo.png").write_bytes(b"\x89PNG\r\n\x1a\n\0\0\0binary")
    (fork / "big.py").write_text("x = 1\n" * 300_000)
    (fork / "server.crt").write_text("-----BEGIN CERTIFICATE-----\n")
    outcome = run(slice_(), [click, mwp, lgpl, fork], tmp_path / "out", executor="beam")
    stats, docs = outcome.stats, records(outcome.slice_dir)
    lgpl_files = sum(1 for p in lgpl.rglob("*") if p.is_file())
    assert stats["dropped"]["license_not_allowed"] == lgpl_files
    assert stats["dropped"]["duplicate_content"] == 2  # click's core.py, and one of two empty py.typed
    compiled = sum(1 for p in [*click.rglob("*.so"), *mwp.rglob("*.so")])  # mwparserfromhell's C tokenizer
    assert stats["dropped"]["binary"] == 1 + compiled and stats["dropped"]["too_large"] == 1
    assert stats["dropped"]["skipped_path"] == 4  # each root LICENSE and the certificate
    by_path = {(d["meta"]["repo_name"], d["meta"]["path"]): d for d in docs}
    assert ("aaa-fork", "core.py") in by_path and ("click", "core.py") not in by_path
    meta = by_path[("aaa-fork", "core.py")]["meta"]
    assert meta["license"] == "bsd-3-clause" and meta["license_confidence"] > 0.9  # licensee keys, as BigQuery
    assert list(meta)[:7] == ["content_hash", "timestamp", "source", "line_count", "max_line_length",
                              "avg_line_length", "alnum_prop"]
    assert {d["meta"]["repo_name"] for d in docs} == {"aaa-fork", "click", "mwparserfromhell"}
    assert all(d["meta"]["path"].endswith(EXTENSIONS) for d in docs) and len(docs) > 20
    assert not any(d["meta"]["path"].endswith((".pyi", ".typed", ".so")) for d in docs)
    for doc in docs:
        assert doc["meta"]["max_line_length"] <= 1000 and doc["meta"]["alnum_prop"] >= 0.25
    single = run(slice_(), [click, mwp, lgpl, fork], tmp_path / "one", workers=1, executor="beam")
    assert output_bytes(single.slice_dir) == output_bytes(outcome.slice_dir)


def test_bigquery_export_rows(tmp_path):
    body = 'def describe_circle(radius):\n    """Describe a circle by its radius."""\n    return f"circle of radius {radius}"\n'
    rows = [
        {"id": "b1", "repo_name": "zed/geo", "ref": "refs/heads/main", "path": "geo.py", "license": "mit",
         "content": "# Copyright 2016 Zed\n" + body, "size": 60, "binary": False, "copies": 2},
        {"id": "b1", "repo_name": "abc/geo-copy", "ref": "refs/heads/main", "path": "geo.py", "license": "apache-2.0",
         "content": "# Copyright 2016 Zed\n" + body, "size": 60, "binary": False, "copies": 2},
        {"id": "b2", "repo_name": "gpl/x", "ref": "refs/heads/main", "path": "x.py", "license": "gpl-3.0",
         "content": body + "# other\n", "binary": False},
        {"id": "b3", "repo_name": "zed/geo", "ref": "refs/heads/main", "path": "LICENSE", "license": "mit",
         "content": "MIT License", "binary": False},
        {"id": "b4", "repo_name": "zed/geo", "ref": "refs/heads/main", "path": "img.png", "license": "mit",
         "content": None, "binary": True},
    ]
    path = tmp_path / "github_000000000000.jsonl.gz"
    path.write_bytes(gzip.compress(("\n".join(json.dumps(r) for r in rows) + "\n{broken\n").encode()))
    outcome = run(slice_(), [path], tmp_path / "out")
    assert outcome.stats["read"] == 6
    assert outcome.stats["dropped"] == {"binary": 1, "duplicate_content": 1, "license_not_allowed": 1,
                                        "skipped_path": 1}
    assert [e["reason"] for e in errors(outcome.slice_dir)] == ["invalid_record"]
    [doc] = records(outcome.slice_dir)
    assert doc["text"] == body  # copyright line stripped
    meta = doc["meta"]
    assert meta["repo_name"] == "abc/geo-copy"  # first by (repo, ref, path), not by row order
    assert meta["blob_id"] == "b1" and meta["id"] == "github/abc/geo-copy/refs/heads/main/geo.py"
    assert meta["license"] == "apache-2.0" and meta["line_count"] == 3 and meta["copies"] == 2
