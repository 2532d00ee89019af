"""Shared fixtures: the sample data folder, the offline LID model, builders of test inputs."""

from __future__ import annotations

import bz2
import os
import re
from pathlib import Path

import pytest

SHARED = Path(os.environ.get("REDPAJAMA_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
LID_MODEL = SHARED / "models" / "fasttext-lid" / "lid.176.ftz"
WIKI = SHARED / "wikipedia"
SE = SHARED / "stackexchange"


def need(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"sample data not found: {path}")
    return path


@pytest.fixture
def lid_model() -> str:
    return str(need(LID_MODEL))


def make_multistream(xml: bytes, target: Path, pages_per_stream: int = 100, index: bool = True) -> list[int]:
    """Pack a pages-articles XML as Wikimedia does: header stream, N pages per stream, footer.

    Writes ``target`` and, when ``index``, the ``-index.txt.bz2`` beside it; returns offsets.
    """
    first = re.search(rb"<page[\s>]", xml).start()
    last = xml.rindex(b"</page>") + len(b"</page>\n")
    pages = re.findall(rb"[ \t]*<page[\s>].*?</page>\n?", xml[first:last], re.S)
    chunks = [xml[:first]]
    chunks += [b"".join(pages[i : i + pages_per_stream]) for i in range(0, len(pages), pages_per_stream)]
    chunks.append(xml[last:])
    offsets, lines, position = [], [], 0
    with open(target, "wb") as out:
        for number, chunk in enumerate(chunks):
            offsets.append(position)
            data = bz2.compress(chunk)
            out.write(data)
            if 0 < number < len(chunks) - 1:
                for page in re.findall(rb"<page[\s>].*?</page>", chunk, re.S):
                    page_id = re.search(rb"<id>(\d+)</id>", page).group(1).decode()
                    title = re.search(rb"<title>(.*?)</title>", page).group(1).decode()
                    lines.append(f"{position}:{page_id}:{title}\n")
            position += len(data)
    if index:
        index_path = str(target).replace(".xml.bz2", "-index.txt.bz2")
        Path(index_path).write_bytes(bz2.compress("".join(lines).encode()))
    return offsets


def dump_parts(xml: bytes) -> tuple[bytes, list[bytes], bytes]:
    """A pages-articles XML cut at its pages: the header up to the first page's line, each
    complete page with its indentation and line end, and what follows the last complete page
    (the closing ``</mediawiki>``, or a page the file cuts off)."""
    first = re.search(rb"[ \t]*<page[\s>]", xml).start()
    pages, end = [], first
    for match in re.finditer(rb"[ \t]*<page[\s>].*?</page>\n?", xml[first:], re.S):
        if first + match.start() != end:
            raise ValueError(f"not a page at byte {end}")
        pages.append(match.group(0))
        end = first + match.end()
    return xml[:first], pages, xml[end:]


CC = SHARED / "commoncrawl"
CC_WET = sorted((CC / "wet").glob("CC-MAIN-2019-30-repacked-*.warc.wet.gz"))
WIKI_EN = WIKI / "en" / "gensim-enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2"


def session_shared_dir(tmp_path_factory, name: str) -> Path:
    """A folder of this test session that every pytest-xdist worker of it sees (the workers' base
    folders are siblings); without xdist, the session's own base folder."""
    base = tmp_path_factory.getbasetemp()
    return (base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base) / name


@pytest.fixture(scope="session")
def built_models(tmp_path_factory) -> Path:
    """``models build`` on the English Wikipedia sample and the real CC WET sample, once per session:
    the first worker to ask builds them under a lock, the others wait and share them."""
    import fcntl

    from redpajama.pipelines.commands.models_build import BuildSettings, build
    from redpajama.pipelines.inprocess.executor import InProcessExecutor
    from redpajama.pipelines.runs.run import run_slice
    from redpajama.slices.wikipedia import Wikipedia

    need(WIKI_EN)
    need(LID_MODEL)
    root = session_shared_dir(tmp_path_factory, "built-models")
    root.mkdir(parents=True, exist_ok=True)
    folder, done = root / "built", root / "built.done"
    with open(root / "lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not done.exists():
            wiki = run_slice(Wikipedia(), [str(WIKI_EN)], str(root / "out"), InProcessExecutor(), quiet=True)
            build(BuildSettings(wikipedia=[wiki.slice_dir], commoncrawl=[str(p) for p in CC_WET], output=folder,
                                lid_model=str(LID_MODEL)))
            done.touch()
    return folder


def pytest_addoption(parser):
    parser.addoption("--exhaustive", action="store_true",
                     help="also run the comparisons marked exhaustive (minutes each; `make test-exhaustive`)")


def pytest_configure(config):
    config.addinivalue_line("markers", "exhaustive: a comparison over every sample text, run with --exhaustive")
    config.addinivalue_line("markers", "xdist_group(name): tests pytest-xdist runs on one worker (--dist loadgroup)")


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist reads the groups
def pytest_collection_modifyitems(config, items):
    # The tests of the built models share one worker: it builds them once and runs each module's
    # fixtures once, while the other workers never wait on the build's lock.
    for item in items:
        if "built_models" in getattr(item, "fixturenames", ()) and not item.get_closest_marker("xdist_group"):
            item.add_marker(pytest.mark.xdist_group("built-models"))
    if config.getoption("--exhaustive"):
        return
    skip = pytest.mark.skip(reason="exhaustive: run with --exhaustive (make test-exhaustive)")
    for item in items:
        if "exhaustive" in item.keywords:
            item.add_marker(skip)


FIDELITY_TITLE = "agreement with RedPajama's own outputs (tests/fidelity)"
FIDELITY_TABLES: list[str] = []  # under pytest-xdist, the table the fidelity tests' worker sent back


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node, error) -> None:
    table = getattr(node, "workeroutput", {}).get("fidelity_table")
    if table:
        FIDELITY_TABLES.append(table)


def pytest_terminal_summary(terminalreporter) -> None:
    for table in FIDELITY_TABLES:
        terminalreporter.write_sep("=", FIDELITY_TITLE)
        terminalreporter.write_line(table)
