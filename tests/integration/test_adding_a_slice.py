"""Adding a slice is its module, its manifest and its tests: a slice defined by nothing else is
listed, run, reported, sampled, counted and planned by the demo like the others."""

import json
import textwrap

import pytest
import redpajama.manifests
import redpajama.slices
from redpajama.pipelines.commands import demo
from redpajama.pipelines.commands.cli import main
from redpajama.slices import registry

from tests.conftest import SHARED, need

TOKENIZER = SHARED / "models" / "gpt-neox-20b" / "20B_tokenizer.json"

MODULE = '''
"""Papers as JSON lines ``{"id", "text"}`` (peS2o's layout), one document a row."""

from redpajama.core.records import Failure, make_record
from redpajama.core.streams import json_row, numbered_lines
from redpajama.slices.base import Slice


class Papers(Slice):
    name = "toy-papers"
    summary = "JSONL papers, one document a row"
    folder = "papers"  # not its name, as CommonCrawl's common_crawl/

    @classmethod
    def describe_sources(cls):
        return "JSONL files of papers given with --input"

    def default_inputs(self):
        return []

    def read(self, unit):
        for item in numbered_lines(unit.source, self.context.limits):
            if isinstance(item, Failure):
                yield item
                continue
            number, line = item
            row = json_row(line)
            record = make_record(row["text"], source="toy-papers", id=f"toy-papers/{row['id']}")
            yield f"{self.relative_name(unit.source)}|{number:09d}", record

    def steps(self):
        return []
'''

MANIFEST = {
    "description": "A toy slice of papers.",
    "demo": {"local": ["toy-papers/*.jsonl"], "remote": []},
    "report": {"row": 8, "redpajama_tokens": 1000.0,
               "full_scale": {"count": 100, "unit": "files", "stats_key": "inputs", "per": "files", "draw": "random"}},
}


@pytest.fixture
def toy_slice(tmp_path, monkeypatch):
    """The toy slice's module and manifest in folders of their own, added to the packages' paths."""
    code, data = tmp_path / "slices", tmp_path / "manifests"
    code.mkdir()
    data.mkdir()
    (code / "toy_papers.py").write_text(textwrap.dedent(MODULE))
    (data / "toy-papers.json").write_text(json.dumps(MANIFEST))
    monkeypatch.setattr(redpajama.slices, "__path__", [*redpajama.slices.__path__, str(code)])
    monkeypatch.setattr(redpajama.manifests, "__path__", [*redpajama.manifests.__path__, str(data)])
    registry._found.cache_clear()
    yield
    registry._found.cache_clear()


def test_a_slice_defined_by_its_module_and_manifest_alone(toy_slice, tmp_path, capsys):
    need(TOKENIZER)
    shared = tmp_path / "shared"
    (shared / "toy-papers").mkdir(parents=True)
    papers = shared / "toy-papers" / "papers.jsonl"
    papers.write_text("".join(json.dumps({"id": n, "text": f"Paper {n}: " + "words " * n}) + "\n" for n in range(1, 31)))
    out = tmp_path / "out"

    assert main(["slices"]) == 0
    assert "toy-papers: JSONL papers, one document a row" in capsys.readouterr().out

    assert main(["run", "toy-papers", "--input", str(papers), "--output", str(out), "--executor", "inprocess",
                 "--count-tokens", str(TOKENIZER)]) == 0
    stats = json.loads((out / "papers" / "stats.json").read_text())
    assert (stats["read"], stats["kept"]) == (30, 30) and stats["tokens"] > 30

    assert main(["report", str(out), "--tokenizer", str(TOKENIZER), "--workers", "1"]) == 0
    [row] = json.loads((out / "report.json").read_text())["slices"]
    assert (row["slice"], row["documents"], row["tokens"], row["redpajama_tokens"]) == ("toy-papers", 30, stats["tokens"], 1000.0)
    assert row["units_full_scale_source"] == "manifests/toy-papers.json" and row["projected_tokens"] == stats["tokens"] * 100

    assert main(["sample", str(out), "--dest", str(tmp_path / "sample"), "--fraction", "1"]) == 0
    assert len((tmp_path / "sample" / "toy-papers_sample.jsonl").read_text().splitlines()) == 30

    runs, _ = demo.plan(str(shared), str(tmp_path / "demo"), None)
    assert [run.inputs for run in runs if run.name == "toy-papers"] == [[str(papers)]]


def test_the_checks_every_slice_passes_hold_for_a_new_one(toy_slice, capsys):
    """The tests run on every slice of the registry pass for a slice with no options and its own folder."""
    from tests.unit import test_slice_contract, test_slice_options

    test_slice_options.test_help_of_every_slice_prints("toy-papers", capsys)
    test_slice_options.test_the_command_line_defaults_are_the_dataclass_defaults("toy-papers")
    test_slice_contract.test_a_slice_has_one_folder_and_names_its_shards()
