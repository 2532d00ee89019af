"""The per-document budget on a real run: a Wikipedia page that would keep mwparserfromhell busy for
many seconds (quadratic on unclosed tags) fails alone as ``clean_wikitext_timeout``, counted and
dead-lettered, while every other page is cleaned exactly as without a budget."""

from __future__ import annotations

import bz2
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from redpajama.slices.base import WorkUnit
from redpajama.slices.wikipedia import Wikipedia

from tests.conftest import WIKI_EN, need
from tests.integration.helpers import errors, records

GUARD_SECONDS = 600  # turns a hang into a failure; not a measurement
HOSTILE = {  # each takes mwparserfromhell 10-20 s here; the run gives a page 1 s
    990001: "&lt;ref&gt;" * 10_000,
    990002: "&lt;!--" * 20_000,
}


def hostile_dump(folder: Path, articles: int = 12) -> Path:
    """The header and first ``articles`` articles of the English sample, then the hostile pages."""
    xml = bz2.decompress(need(WIKI_EN).read_bytes())
    pages = re.findall(rb"  <page>.*?</page>\n", xml, re.S)
    chosen = [page for page in pages if b"<ns>0</ns>" in page and b"<redirect" not in page][:articles]
    head = xml[: xml.index(b"  <page>")] + b"".join(chosen)
    extra = b"".join(
        f"  <page>\n    <title>Hostile {page_id}</title>\n    <ns>0</ns>\n    <id>{page_id}</id>\n"
        f"    <revision><timestamp>2023-03-01T00:00:00Z</timestamp><text>{text}</text></revision>\n  </page>\n".encode()
        for page_id, text in HOSTILE.items()
    )
    path = folder / "enwiki-20230320-pages-articles-hostile.xml"
    path.write_bytes(head + extra + b"</mediawiki>\n")
    return path


def cleaned_in_process(path: Path) -> dict[str, str]:
    """Each kept page's text as the recipe's steps give it without any budget."""
    slc = Wikipedia()
    steps = slc.steps()
    for step in steps:
        step.setup()
    kept = {}
    for _, record in slc.read(WorkUnit(str(path))):
        if record["meta"]["title"].startswith("Hostile"):
            continue
        for step in steps:
            record = step.apply(record)
            if not isinstance(record, dict):
                break
        else:
            kept[record["meta"]["id"]] = record["text"]
    return kept


@pytest.mark.parametrize("executor", ["beam", "inprocess"])
def test_a_page_over_the_time_budget_fails_alone_and_the_rest_are_cleaned_as_before(tmp_path, executor):
    dump = hostile_dump(tmp_path)
    out = tmp_path / "out"
    done = subprocess.run(
        [sys.executable, "-m", "redpajama.pipelines.commands.cli", "run", "wikipedia", "--input", str(dump), "--output", str(out),
         "--workers", "1", "--count-tokens", "off", "--doc-timeout", "1", "--executor", executor],
        capture_output=True, text=True, timeout=GUARD_SECONDS)
    assert done.returncode == 0, done.stderr
    stats = json.loads((out / "wikipedia" / "stats.json").read_text())
    assert stats["read"] == stats["kept"] + sum(stats["dropped"].values()) + stats["failed"]
    assert stats["failed"] == len(HOSTILE)
    assert stats["budget"] == {"seconds": 1.0, "memory_mb": 1024, "steps": ["clean_wikitext"]}
    clean = next(step for step in stats["steps"] if step["name"] == "clean_wikitext")
    assert clean["failed"] == clean["timeout"] == len(HOSTILE)
    failures = errors(out / "wikipedia")
    assert sorted((e["source"].rsplit("/", 1)[-1], e["reason"]) for e in failures) == [
        (f"Hostile%20{page_id}", "clean_wikitext_timeout") for page_id in HOSTILE]
    assert all("time budget of 1 s" in e["detail"] for e in failures)
    written = {record["meta"]["id"]: record["text"] for record in records(out / "wikipedia")}
    assert written == cleaned_in_process(dump) and len(written) == 12
