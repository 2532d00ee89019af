"""``--keep-dropped``: each kind of step's rejects under ``_dropped/<step>/<reason>/`` with the step's
scores, a deterministic fraction of them, counted, and the kept output unchanged."""

import hashlib
import json
from pathlib import Path

import apache_beam as beam
import pytest
import zstandard
from apache_beam.runners.portability.fn_api_runner import FnApiRunner
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to
from redpajama.core.errors import UsageError
from redpajama.core.records import Drop, JoinStep, KeepFirstStep, ReferenceStep, Step
from redpajama.filters.code import CodeQuality
from redpajama.filters.langid import LanguageFilter
from redpajama.filters.perplexity import Cutoffs, PerplexityBuckets
from redpajama.filters.wikiref import WikiReferenceClassifier
from redpajama.pipelines.beam.build import build
from redpajama.pipelines.beam.executor import BeamExecutor
from redpajama.pipelines.beam.group_keys import ReadTwice
from redpajama.pipelines.beam.options import pipeline_options
from redpajama.pipelines.beam.shuffles import Join
from redpajama.pipelines.beam.steps import DROPPED
from redpajama.pipelines.commands.cli import make_parser
from redpajama.pipelines.commands.show import dropped_shards
from redpajama.pipelines.runs.executor import Layout
from redpajama.pipelines.runs.output_folder import own_name
from redpajama.pipelines.runs.recipe import as_join
from redpajama.pipelines.runs.rejects import keeps_reject, reject_line, selected
from redpajama.pipelines.runs.run import run_slice
from redpajama.pipelines.runs.runner_config import RunnerConfig
from redpajama.slices import stackexchange as se
from redpajama.slices.base import Slice, WorkUnit
from redpajama.slices.commoncrawl import _remove_shared_lines, line_dedup_step
from redpajama.slices.registry import registry

from tests.unit.test_dataflow_graph import CONFIG, INPUTS, OPTIONS
from tests.unit.test_group_keys import Documents, SkipMarked, _unit

# --- the contract: what a step says when it drops ---------------------------------------------


class FastText:
    """A fastText model's ``predict`` answering one label and score."""

    def __init__(self, label, score):
        self.answer = ([[label]], [[score]])

    def predict(self, texts, k=1):
        return self.answer


def record(text="Some text.", **meta):
    return {"text": text, "meta": {"id": "d/1", **meta}}


def test_language_id_says_the_language_and_score_it_dropped_for():
    lid = LanguageFilter("unused", ("en",), threshold=0.5)
    lid._model = FastText("__label__fr", 0.31)
    drop = lid.apply(record())
    assert drop == Drop("language_score_below_threshold")
    assert drop.scores == {"language": "fr", "language_score": 0.31}
    lid._model = FastText("__label__de", 0.93)
    kept_meta = record()
    assert lid.apply(kept_meta) == Drop("language_not_kept")
    assert kept_meta["meta"]["language"] == "de" and kept_meta["meta"]["language_score"] == 0.93


def test_classifier_and_perplexity_leave_their_scores_in_meta_before_dropping():
    wikiref = WikiReferenceClassifier("unused", threshold=0.25)
    wikiref._model = FastText("__label__cc", 0.9)
    page = record()
    assert wikiref.apply(page) == Drop("wiki_prob_below_threshold") and page["meta"]["wiki_prob"] == 0.1

    class Scorer:
        def score(self, text):
            return 612.5

    perplexity = PerplexityBuckets({"en": Scorer()}, "unused")
    perplexity._cutoffs = Cutoffs({"en": (300.0, 500.0)}, "test")
    page = record(language="en")
    assert perplexity.apply(page) == Drop("bucket_tail")
    assert page["meta"]["perplexity"] == 612.5 and page["meta"]["bucket"] == "tail"


def test_code_quality_says_the_alpha_per_token_it_measured():
    class Tokenizer:
        def encode(self, text, add_special_tokens=False):
            return type("Encoding", (), {"ids": list(range(len(text)))})()  # a token per character

    quality = CodeQuality("unused")
    quality._tokenizer = Tokenizer()
    code = record("x = 1 + 2\n", path="a.py", max_line_length=9, avg_line_length=9.0, alnum_prop=0.3)
    drop = quality.apply(code)
    assert drop == Drop("alpha_per_token") and drop.scores == {"alpha_per_token": 0.1}


def test_line_dedup_says_how_many_lines_were_shared():
    from redpajama.dedup import exact

    text = "Cookie banner\nCookie banner\nShared footer"
    drop = _remove_shared_lines(record(text), {exact.line_hash("Cookie banner"), exact.line_hash("Shared footer")})
    assert drop == Drop("duplicate_lines") and drop.scores == {"shared_lines": 3}
    text = "Own line\nOwn line"  # a repeat inside the document stays once: not dropped
    assert _remove_shared_lines(record(text), set())["text"] == "Own line"


def test_joins_name_the_record_each_drop_stands_for():
    first, second, third = record("a", n=1), record("b", n=2), record("c", n=3)
    first["meta"]["id"], second["meta"]["id"], third["meta"]["id"] = "x/1", "x/2", "x/3"
    step = as_join(KeepFirstStep("dedup", key=lambda r: "k", reason="duplicate"))
    outcomes = list(step.join([first, second, third], []))
    assert outcomes[0] is first
    assert [(d.reason, d.record, d.scores) for d in outcomes[1:]] == [
        ("duplicate", second, {"duplicate_of": "x/1"}), ("duplicate", third, {"duplicate_of": "x/1"})]
    question = se_post(1, "Which?", title="Best beer")
    answers = [se_post(2, "This one", parent=1), se_post(3, "That one", parent=1)]
    kept, *drops = se.JoinAnswers(None)([question], answers)
    assert [(d.reason, d.record) for d in drops] == [("answer_merged", answers[0]), ("answer_merged", answers[1])]
    assert drops[0].scores["id"] == "stackexchange/beer.stackexchange.com/2"
    assert drops[0].scores["question"] == kept["meta"]["id"] == "stackexchange/beer.stackexchange.com/1"
    orphans = se.JoinAnswers(None)([], answers)
    assert [(d.reason, d.record) for d in orphans] == [("orphan_answer", answers[0]), ("orphan_answer", answers[1])]


def se_post(post_id, body, parent=None, title=""):
    line = f'<row Id="{post_id}" Body="{body}" Score="1" LastActivityDate="2020-01-01T00:00:00"'
    line += f' ParentId="{parent}"' if parent else ""
    line += f' Title="{title}"' if title else ""
    return se._post_record((line + " />").encode(), "beer.stackexchange.com")[1]


def test_a_reject_line_is_the_record_as_the_step_left_it_with_its_scores():
    page = {"text": "Bonjour", "meta": {"id": "cc/1", "url": "u", "_html": b"<p>", "language": None}}
    name, shard_key, order_key, line = reject_line("language_id", "k|1", page, Drop("low", scores={"language": "fr"}))
    assert (name, shard_key, order_key) == ("language_id/low/rejects", "cc/1", "k|1")
    assert json.loads(line) == {"text": "Bonjour", "meta": {"id": "cc/1", "url": "u", "language": "fr"}}
    odd = {"text": "half a pair \ud800", "meta": {"tags": {"a set"}}}  # no id: keyed by its order key
    name, shard_key, _, line = reject_line("s", "k|2", odd, Drop("r"))
    assert shard_key == "k|2" and json.loads(line) == {"text": "half a pair \ud800", "meta": {"tags": "{'a set'}"}}


def test_the_fraction_kept_is_a_seeded_hash_of_the_id_as_sample_chooses():
    pages = [record(meta_id) for meta_id in range(2000)]
    for number, page in enumerate(pages):
        page["meta"]["id"] = f"cc/{number}"
    tenth = [p["meta"]["id"] for p in pages if keeps_reject(p, 0.1)]
    half = {p["meta"]["id"] for p in pages if keeps_reject(p, 0.5)}
    assert tenth == [p["meta"]["id"] for p in pages if selected(p, 0.1, 0)]
    assert 150 < len(tenth) < 250 and set(tenth) <= half and 900 < len(half) < 1100
    assert all(keeps_reject(p, 1.0) for p in pages) and not keeps_reject(pages[0], None)


# --- a run: every kind of step, kept output unchanged -----------------------------------------


class Mark(Step):
    """A per-record step: measures the text and drops what says "drop"."""

    name = "mark"

    def apply(self, record):
        record["meta"]["words"] = len(record["text"].split())
        return Drop("marked", scores={"says_drop": True}) if "drop" in record["text"] else record


class Shout(Step):
    name = "shout"

    def apply(self, record):
        if "boom" in record["text"]:
            raise RuntimeError("boom")  # a failure, never a reject
        if "quiet" in record["text"]:
            return Drop("too_quiet")
        record["text"] = record["text"].upper()
        return record


def _listed(path):
    return Path(path).read_text().split()


def _banned(record, found):
    return Drop("listed", scores={"listed_url": record["meta"]["url"]}) if found else record


class Rows(Slice):
    """JSON rows ``{"text", "k", "url"}`` through a per-record step, a reference lookup, keep-first
    dedup on ``k`` (at the sink, or a join with ``--keep-dropped``) and one more per-record step."""

    name = "rows"
    summary = "JSON rows"

    def __init__(self, reference: str = "", **options):
        super().__init__(**options)
        self.reference = reference

    def read(self, unit: WorkUnit):
        for number, line in enumerate(Path(unit.source).read_text().splitlines()):
            row = json.loads(line)
            meta = {"id": f"rows/{Path(unit.source).stem}/{number}", "k": row["k"], "url": row["url"], "_work": 1}
            yield f"{Path(unit.source).name}|{number:04d}", {"text": row["text"], "meta": meta}

    def steps(self):
        return [Mark(), ReferenceStep("lookup", (self.reference,), _listed, lambda r: r["meta"]["url"], _banned),
                KeepFirstStep("dedup", key=lambda r: r["meta"]["k"], reason="duplicate"), Shout()]

    def always_written(self):
        return ()


def _rows(tmp_path) -> tuple[list[str], str]:
    rows = [(f"row {n} " + ("drop " if n % 5 == 0 else "") + ("quiet " if n % 7 == 0 else "")
             + ("boom" if n == 11 else ""), f"k{n % 40}", f"https://site/{n}") for n in range(120)]
    inputs = []
    for index in range(2):
        path = tmp_path / f"rows-{index}.jsonl"
        path.write_text("".join(json.dumps({"text": t, "k": k, "url": u}) + "\n" for t, k, u in rows[index::2]))
        inputs.append(str(path))
    reference = tmp_path / "listed.txt"
    reference.write_text("".join(f"https://site/{n}\n" for n in range(0, 120, 9)))
    return inputs, str(reference)


def _run(tmp_path, name, keep_dropped=None, overwrite=False):
    inputs, reference = _rows(tmp_path)
    return run_slice(Rows(reference), inputs, str(tmp_path / name), BeamExecutor(RunnerConfig(workers=1)), shard_bytes=2000,
                     keep_dropped=keep_dropped, overwrite=overwrite)


def kept_files(slice_dir) -> dict[str, str]:
    """sha256 of every file a run wrote outside ``_dropped/`` (stats.json and the marker aside)."""
    root = Path(slice_dir)
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*"))
            if p.is_file() and "_dropped" not in p.parts and p.name not in ("stats.json", "_SUCCESS")}


def rejects(slice_dir) -> dict[str, list[dict]]:
    """``step/reason`` -> the rejects kept there, in shard order."""
    found: dict[str, list[dict]] = {}
    for shard in sorted(Path(slice_dir, "_dropped").rglob("*.jsonl.zst")):
        step, reason = shard.relative_to(Path(slice_dir, "_dropped")).parts[:2]
        data = zstandard.ZstdDecompressor().stream_reader(shard.open("rb")).read().decode()
        lines = data.split("\n")[:-1]  # only newlines end records (text may hold U+2028 and the like)
        found.setdefault(f"{step}/{reason}", []).extend(json.loads(line) for line in lines)
    return found


def test_rejects_of_every_step_are_kept_with_their_scores_and_the_kept_output_stays(tmp_path):
    plain = _run(tmp_path, "plain")
    every = _run(tmp_path, "every", 1.0)
    assert kept_files(every.slice_dir) == kept_files(plain.slice_dir)  # shards and dead letters alike
    assert not Path(plain.slice_dir, "_dropped").exists()
    steps = [{k: v for k, v in step.items() if k != "dropped_kept"} for step in every.stats["steps"]]
    assert steps == plain.stats["steps"]  # keep-first ran as a join: the same counts
    for name in ("read", "kept", "dropped", "failed"):
        assert every.stats[name] == plain.stats[name]
    kept = rejects(every.slice_dir)
    dropped = {f"{step['name']}/{reason}": count for step in plain.stats["steps"]
               for reason, count in step["dropped"].items()}
    assert sorted(kept) == sorted(dropped) == ["dedup/duplicate", "lookup/listed", "mark/marked", "shout/too_quiet"]
    assert {name: len(docs) for name, docs in kept.items()} == dropped
    summary = every.stats["dropped_kept"]
    assert summary["fraction"] == 1.0 and summary["documents"] == summary["of"] == sum(dropped.values())
    assert summary["by_reason"] == {name: {"kept": count, "of": count} for name, count in dropped.items()}
    assert {step["name"]: step["dropped_kept"] for step in every.stats["steps"] if "dropped_kept" in step} == {
        "mark": {"marked": dropped["mark/marked"]}, "lookup": {"listed": dropped["lookup/listed"]},
        "dedup": {"duplicate": dropped["dedup/duplicate"]}, "shout": {"too_quiet": dropped["shout/too_quiet"]}}
    # each reject as its step left it: earlier steps' meta, its own scores, no working state
    marked = kept["mark/marked"][0]
    assert marked["meta"]["says_drop"] is True and marked["meta"]["words"] >= 3 and "_work" not in marked["meta"]
    assert all(doc["meta"]["listed_url"] == doc["meta"]["url"] for doc in kept["lookup/listed"])
    for doc in kept["dedup/duplicate"]:  # the first of its key, by order key, is named
        first = doc["meta"]["duplicate_of"]
        assert _k(first) == doc["meta"]["k"] and _place(first) < _place(doc["meta"]["id"])
    assert all(doc["text"] == doc["text"].lower() for doc in kept["shout/too_quiet"])  # before its rewrite
    for shard in Path(every.slice_dir, "_dropped").rglob("*.jsonl.zst"):  # sorted by order key, as kept output
        data = zstandard.ZstdDecompressor().stream_reader(shard.open("rb")).read().decode()
        places = [_place(json.loads(line)["meta"]["id"]) for line in data.splitlines()]
        assert places == sorted(places) and places
    assert "boom" not in json.dumps(kept)  # a failure stays in _errors/
    # show reads them
    assert dropped_shards(every.slice_dir, "too_quiet") == dropped_shards(every.slice_dir, "shout/too_quiet")
    with pytest.raises(UsageError, match="--keep-dropped keeps them"):
        dropped_shards(plain.slice_dir, "too_quiet")
    # a finished run without the option is not taken for one with it
    with pytest.raises(UsageError, match="keep_dropped"):
        _run(tmp_path, "plain", 1.0)


def _place(record_id: str) -> tuple[str, int]:
    """``rows/<file>/<row>`` -> its order (file, row)."""
    _, file, row = record_id.split("/")
    return file, int(row)


def _k(record_id: str) -> str:
    file, row = _place(record_id)
    number = 2 * row + int(file[-1])  # rows alternate between the two files
    return f"k{number % 40}"


def test_a_fraction_keeps_the_same_rejects_every_run_and_a_subset_of_all(tmp_path):
    every = rejects(_run(tmp_path, "every", 1.0).slice_dir)
    half = _run(tmp_path, "half", 0.5)
    again = _run(tmp_path, "again", 0.5)
    assert kept_files(half.slice_dir) == kept_files(again.slice_dir)
    assert sorted(Path(half.slice_dir, "_dropped").rglob("*")) and _bytes(half) == _bytes(again)
    chosen = rejects(half.slice_dir)
    total = 0
    for name, docs in every.items():
        expected = sorted((doc for doc in docs if selected(doc, 0.5, 0)), key=lambda doc: doc["meta"]["id"])
        assert sorted(chosen.get(name, []), key=lambda doc: doc["meta"]["id"]) == expected  # shards differ in number
        total += len(expected)
    assert 0 < total < sum(map(len, every.values()))
    assert half.stats["dropped_kept"]["documents"] == total and half.stats["dropped_kept"]["fraction"] == 0.5


def _bytes(outcome):
    root = Path(outcome.slice_dir, "_dropped")
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("parked", [False, True], ids=["read twice", "first read parked (local runs)"])
def test_line_dedup_and_the_steps_before_it_keep_their_rejects_in_either_read(parked, tmp_path):
    units = [
        _unit("f1", [("g", "Cookie banner\nAlpha story"), ("g", "skip me\nGamma story"), ("g", "Cookie banner")]),
        _unit("f2", [("g", "Cookie Banner\nBeta story"), ("g", "cookie banner")]),
    ]
    with TestPipeline(runner=FnApiRunner()) as pipeline:
        spill = str(tmp_path / "spill") if parked else None
        read = pipeline | beam.Create(units) | ReadTwice(Documents(), [SkipMarked()], line_dedup_step(), spill, 1.0)
        lines = read[DROPPED] | beam.Map(lambda line: (line[0], line[2], json.loads(line[3])))
        assert_that(lines, equal_to([
            ("select/skipped/rejects", "f1|001", {"text": "skip me\nGamma story", "meta": {}}),
            ("line_dedup/duplicate_lines/rejects", "f1|002", {"text": "Cookie banner", "meta": {"shared_lines": 1}}),
            ("line_dedup/duplicate_lines/rejects", "f2|001", {"text": "cookie banner", "meta": {"shared_lines": 1}}),
        ]))


def test_a_join_keeps_the_records_its_drops_name(tmp_path):
    step = JoinStep("join_answers", parent_key=se._question_key, child_key=se._answer_key, join=se.JoinAnswers(None))
    posts = [("q/1", se_post(1, "Which?", title="Best")), ("q/2", se_post(2, "Yes", parent=1)),
             ("q/3", se_post(3, "Lost", parent=99))]
    with TestPipeline(runner=FnApiRunner()) as pipeline:
        records, dropped = pipeline | beam.Create(posts) | Join("se", step, str(tmp_path / "spill"), 1.0)
        lines = dropped | beam.Map(lambda line: (line[0], line[1], line[2], json.loads(line[3])["meta"].get("question")))
        assert_that(lines, equal_to([
            ("join_answers/answer_merged/rejects", "stackexchange/beer.stackexchange.com/2", "q/2",
             "stackexchange/beer.stackexchange.com/1"),
            ("join_answers/orphan_answer/rejects", "stackexchange/beer.stackexchange.com/3", "q/3", None),
        ]), label="rejects")
        assert_that(records | beam.Map(lambda item: item[1]["meta"]["id"]),
                    equal_to(["stackexchange/beer.stackexchange.com/1"]), label="kept")


def test_keep_dropped_on_the_command_line():
    parser = make_parser()
    base = ["run", "books", "--output", "out"]
    assert parser.parse_args(base).keep_dropped is None
    assert parser.parse_args([*base, "--keep-dropped"]).keep_dropped == 1.0
    assert parser.parse_args(["run", "books", "--keep-dropped", "--output", "out"]).keep_dropped == 1.0
    assert parser.parse_args([*base, "--keep-dropped", "0.01"]).keep_dropped == 0.01
    for wrong in ("0", "1.5", "half"):
        with pytest.raises(SystemExit):
            parser.parse_args([*base, "--keep-dropped", wrong])


@pytest.mark.parametrize("slice_name", sorted(registry()))
def test_each_slice_builds_a_dataflow_graph_that_keeps_its_rejects(slice_name, tmp_path):
    options = {**OPTIONS.get(slice_name, {}), **({"near_dedup": False} if slice_name == "commoncrawl" else {})}
    slc = registry()[slice_name](**options)
    pipeline = beam.Pipeline(runner=FnApiRunner(), options=pipeline_options(CONFIG))
    build(pipeline, slc, INPUTS.get(slice_name) or slc.default_inputs(),
          Layout(str(tmp_path / slice_name), keep_dropped=0.01))
    proto = pipeline.to_runner_api()  # every DoFn pickles, with its fraction
    beam.Pipeline.from_runner_api(proto, FnApiRunner(), pipeline_options(CONFIG))
    assert len(proto.SerializeToString()) < 1 << 20
    labels = {transform.unique_name for transform in proto.components.transforms.values()}
    assert "WriteDropped/GroupByShard" in labels
    if slice_name == "commoncrawl":  # exact dedup groups the records: the duplicates are kept too
        assert "Join1_digest_dedup/CoGroup" in labels and not any(label.startswith("KeepFirst") for label in labels)


def test_reject_folders_are_a_runs_own_files():
    assert own_name("_dropped/language_id/language_not_kept/rejects-00000-of-00003.jsonl.zst")
    assert own_name("_dropped/near_duplicate-00000-of-00001.jsonl.zst")
    assert not own_name("notes/language_id/language_not_kept/rejects-00000-of-00003.jsonl.zst")
    assert not own_name("_dropped/a/b/c/rejects-00000-of-00003.jsonl.zst")
