"""Packaging for redpajama: the card's top-level folders live under one namespace."""

import os
import re

from setuptools import setup

HERE = os.path.dirname(os.path.abspath(__file__))
NOT_PACKAGED = ("tests", "bench")  # folders with an __init__.py that are not the package


def folders() -> list[str]:
    """The card's top-level folders the package is made of: every folder with an ``__init__.py``."""
    return sorted(name for name in os.listdir(HERE)
                  if os.path.isfile(os.path.join(HERE, name, "__init__.py")) and name not in NOT_PACKAGED)


def packages(folder: str) -> list[str]:
    """``redpajama.<folder>`` and its subpackages (``redpajama.pipelines.beam``...)."""
    found = []
    for path, subfolders, files in os.walk(os.path.join(HERE, folder)):
        subfolders[:] = sorted(name for name in subfolders if not name.startswith((".", "__")))
        if "__init__.py" in files:
            found.append("redpajama." + os.path.relpath(path, HERE).replace(os.sep, "."))
    return found


FOLDERS = folders()


def beam_version() -> str:
    """Apache Beam's one pin, the worker image's ``ARG BEAM_VERSION``: launcher and workers match."""
    with open(os.path.join(HERE, "Dockerfile"), encoding="utf-8") as handle:
        return re.search(r"^ARG BEAM_VERSION=(\S+)$", handle.read(), re.M).group(1)


BEAM = beam_version()

setup(
    name="redpajama",
    version="0.1.0",
    description="RedPajama-Data-1T reproduced as tested, resumable Apache Beam pipelines",
    long_description=open(os.path.join(HERE, "README.md"), encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.10",
    packages=[package for name in FOLDERS for package in packages(name)],
    package_dir={f"redpajama.{name}": name for name in FOLDERS},
    package_data={"redpajama.manifests": ["*.json", "*.csv", "*.sql"]},
    install_requires=[
        f"apache-beam=={BEAM}",
        "numpy<2.5",  # Beam's pin; fastText is called with lists so NumPy 2 works
        "fasttext-wheel>=0.9.2",
        "mwparserfromhell>=0.7",
        "lxml>=5",
        "py7zr>=0.22",
        "zstandard>=0.22",
        "requests>=2.31",
        "warcio>=1.7",
        "resiliparse>=0.14",
        "sentencepiece>=0.1.99",
        "kenlm>=0.2",  # built from source by pip; lmplz/build_binary are built by `models build`
        "tokenizers>=0.20",  # encode_batch_fast; the reference token counts
        "tiktoken>=0.7",  # the same counts, faster (filters/token_count.py)
        "identify>=2.5",  # choosealicense.com licence texts (GitHub licensee's templates)
        "datasketch>=1.6",
        "rensa>=0.5",  # digest matrices from precomputed token hashes
        "pyarrow>=14",
        "matplotlib>=3.7",
        "scipy>=1.15",  # the report's bootstrap intervals (scipy.stats.bootstrap, BCa)
    ],
    extras_require={
        # build: Beam stages the package with `python -m build` when it is there (else setup.py sdist)
        "dataflow": [f"apache-beam[gcp]=={BEAM}", "build>=1.0"],
        "aws": [f"apache-beam[aws]=={BEAM}"],  # s3:// inputs (arXiv's requester-pays bucket)
        "dev": [
            # make test: one test process per core. pytest-xdist 3.8 groups tests (--dist loadgroup) by rewriting
            # item._nodeid, which pytest 9 no longer reads
            "pytest>=8,<9", "pytest-xdist>=3.5", "ruff>=0.6", "wheel>=0.40",
            f"apache-beam[gcp,aws]=={BEAM}", "build>=1.0",
            "gcp-storage-emulator>=2024.8",  # GCS stand-in for the launch tests (tests/integration/test_launch.py)
            "moto[server]>=5",  # S3 stand-in for the arXiv tests (tests/integration/test_arxiv_s3.py)
            # BigQuery stand-in (REST and Storage Read API) for tests/integration/test_github_bigquery.py; it loads
            # DuckDB's spatial extension at start, installed from this package rather than downloaded by DuckDB
            "bqemulator>=1.4; python_version >= '3.11'", "duckdb-extension-spatial==1.5.5",
        ],
    },
    entry_points={"console_scripts": ["redpajama = redpajama.pipelines.commands.cli:main"]},
)
