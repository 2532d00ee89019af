"""The report says for each slice how sure its projection is: intervals only from enough units,
Books by book and by corpus against RedPajama's own parts, a chart that tells projected from
measured, and ``sample --tokens`` that says when and why it delivers less than asked."""

import json
import random

import pytest
import zstandard
from redpajama.pipelines.commands import projection
from redpajama.pipelines.commands.cli import main
from redpajama.pipelines.commands.report import build_report, chart_bars, figure, markdown
from redpajama.slices.books import Books

from tests.conftest import SHARED, need

TOKENIZER = SHARED / "models" / "gpt-neox-20b" / "20B_tokenizer.json"
WORDS = "the of and to in a was he that it his her with as had for you not but she".split()


def text(rng: random.Random, words: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(words)) + "."


def shard(path, records):
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = "".join(json.dumps(r) + "\n" for r in records)
    path.write_bytes(zstandard.ZstdCompressor().compress(lines.encode()))


def books_output(out, rng, pg19=20, books3=0, rejects=2, exact=2):
    kept = [{"text": text(rng, rng.randint(50, 2000)), "meta": {"source": "pg19", "id": f"pg19/t/{n}"}}
            for n in range(pg19)]
    kept += [{"text": text(rng, rng.randint(50, 2000)), "meta": {"source": "books3", "id": f"books3/t/{n}"}}
             for n in range(books3)]
    shard(out / "book" / "book-00000-of-00001.jsonl.zst", kept)
    shard(out / "book" / "_dropped" / "near_duplicate-00000-of-00001.jsonl.zst",
          [{"text": "x", "meta": {"source": "pg19", "id": f"pg19/t/d{n}", "cluster": "k"}} for n in range(rejects)])
    read = pg19 + books3 + rejects + exact
    (out / "book" / "stats.json").write_text(json.dumps({"slice": "books", "read": read, "kept": pg19 + books3,
                                                         "dropped": {"near_duplicate": rejects,
                                                                     "exact_duplicate": exact}}))


def c4_output(out, rng, units):
    records = [{"text": text(rng, rng.randint(20, 400)), "meta": {"id": str(n)}} for n in range(units)]
    shard(out / "c4" / "c4-00000-of-00001.jsonl.zst", records)
    per_unit = [[1, len(r["text"].encode())] for r in records]
    (out / "c4" / "stats.json").write_text(json.dumps({
        "slice": "c4", "read": units, "kept": units, "units": {"planned": units},
        "unit_yields": {"per_unit": per_unit, "per_input": per_unit, "unattributed": [0, 0]}}))


def wikipedia_output(out, rng):
    shard(out / "wikipedia" / "wikipedia-00000-of-00001.jsonl.zst",
          [{"text": text(rng, 100), "meta": {"language": lang}} for lang in ("mr", "uk")])
    (out / "wikipedia" / "stats.json").write_text(json.dumps({
        "slice": "wikipedia", "read": 2, "kept": 2, "units": {"planned": 2, "inputs": 2},
        "unit_yields": {"per_unit": [[1, 600], [1, 700]], "per_input": [[1, 600], [1, 700]], "unattributed": [0, 0]}}))


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    rng = random.Random(7)
    out = tmp_path_factory.mktemp("certainty") / "out"
    books_output(out, rng)
    c4_output(out, rng, units=24)
    wikipedia_output(out, rng)
    return build_report(str(out), str(need(TOKENIZER)), processes=1)


def rows(report):
    return {row["slice"]: row for row in report["slices"]}


def test_books_are_projected_by_book_against_pg19s_part_of_redpajamas_books(report):
    books = rows(report)["books"]
    assert books["projected_tokens"] is None and books["certainty"].startswith("by corpus (rows below)")
    pg19, books3 = books["parts"]
    assert (pg19["corpus"], pg19["units_processed"], pg19["units_full_scale"]) == ("pg19", 24, 28752)
    assert pg19["projected_tokens"] == round(pg19["tokens"] * 28752 / 24)
    low, high = pg19["projected_interval"]
    assert low < pg19["projected_tokens"] < high
    assert "95 % bootstrap interval (BCa, 2,000 resamples) over the 24 books processed" in pg19["certainty"]
    words = Books.report_target().published_by_corpus["pg19"]["words_read"]
    assert pg19["redpajama_tokens_estimate"] == round(words * pg19["tokens"] / pg19["words"])
    assert pg19["projected_vs_redpajama"] == float(f"{pg19['projected_tokens'] / pg19['redpajama_tokens_estimate']:.4g}")
    assert books3["reproducible"] is False and books3["tokens"] is None
    assert books3["certainty"].startswith("not reproducible: Books3 was taken down for copyright infringement")
    assert books3["redpajama_tokens_estimate"] == round(26e9 - words * pg19["tokens"] / pg19["words"])


def test_every_slice_says_how_sure_its_projection_is(report):
    c4, wiki = rows(report)["c4"], rows(report)["wikipedia"]
    assert c4["projected_interval"][0] < c4["projected_tokens"] < c4["projected_interval"][1]
    assert c4["certainty"].startswith("95 % bootstrap interval (BCa, 2,000 resamples) over the 24 train files processed")
    assert wiki["projected_tokens"] == wiki["tokens"] * 10 and wiki["projected_interval"] is None
    assert wiki["certainty"].startswith("no interval. The 20 languages are chosen, not drawn")
    text = markdown(report)
    assert "## How sure each projection is" in text and f"needs at least {projection.MIN_UNITS} of them" in text
    assert "- **wikipedia**: no interval. The 20 languages are chosen" in text
    assert "  - PG-19: 95 % bootstrap interval" in text and "  - Books3: not reproducible" in text
    assert "| books: Books3 | 0 | n/a | n/a | | | " in text and "| not reproducible | n/a |" in text
    assert "(no interval) |" in text  # wikipedia's projection


def test_one_unit_gives_no_interval_and_the_table_says_so(tmp_path):
    out = tmp_path / "out"
    c4_output(out, random.Random(1), units=1)
    (out / "c4" / "stats.json").write_text(json.dumps({**json.loads((out / "c4" / "stats.json").read_text()),
                                                      "units": {"planned": 1}}))
    row = build_report(str(out), str(need(TOKENIZER)))["slices"][0]
    assert row["projected_interval"] is None
    assert row["certainty"].startswith("no interval: only 1 processed (train files); a bootstrap needs at least 18, "
                                       "and one unit shows no spread at all.")


def test_mixed_corpora_are_projected_apart_and_unattributed_drops_are_said(tmp_path):
    out = tmp_path / "out"
    books_output(out, random.Random(3), pg19=18, books3=3, rejects=2, exact=1)
    books = build_report(str(out), str(need(TOKENIZER)))["slices"][0]
    pg19, books3 = books["parts"]
    assert pg19["units_processed"] == 20 and books3["units_processed"] == 3
    assert books3["units_full_scale"] == 196640 and books3["projected_interval"] is None and books3["tokens"] > 0
    assert books3["certainty"].startswith("not reproducible: Books3 was taken down")
    assert "1 books dropped without a kept record (exact duplicates, failures) name no corpus" in pg19["certainty"]


def test_the_chart_tells_projected_from_measured_and_draws_the_intervals(report):
    bars = {bar.label: bar for bar in chart_bars(report)}
    assert list(bars) == ["c4", "books: PG-19", "books: Books3", "wikipedia"]
    assert bars["c4"].projected and bars["c4"].interval and not bars["c4"].estimated
    assert bars["books: PG-19"].projected and bars["books: PG-19"].interval and bars["books: PG-19"].estimated
    assert bars["books: Books3"].ours is None and bars["books: Books3"].note == "not reproducible"
    assert bars["wikipedia"].projected and bars["wikipedia"].interval is None
    measured = {**report, "slices": [{**rows(report)["c4"], "projected_tokens": None, "projected_interval": None}]}
    assert chart_bars(measured)[0].projected is False and chart_bars(measured)[0].ours == rows(report)["c4"]["tokens"]
    drawn = figure(report)
    axis = drawn.axes[0]
    labels = [t.get_text() for t in axis.get_legend().get_texts()]
    assert labels == ["this output, projected to full scale", "this output, measured (no projection)", "95 % interval",
                      "RedPajama published", "RedPajama's part (estimated)"]
    assert len(axis.containers) - sum(1 for c in axis.containers if c.__class__.__name__ == "BarContainer") == 2


def test_sample_says_when_it_delivers_less_than_asked_and_why(tmp_path, capsys):
    out = tmp_path / "out"
    rng = random.Random(5)
    c4_output(out, rng, units=30)
    wikipedia_output(out, rng)
    asked = 10_000_000
    assert main(["sample", str(out), "--dest", str(tmp_path / "s"), "--tokens", str(asked),
                 "--tokenizer", str(need(TOKENIZER))]) == 0
    printed = capsys.readouterr().out.strip().splitlines()[-1]
    budget = json.loads((tmp_path / "s" / "sample_report.json").read_text())["budget"]
    assert budget["asked"] == asked and budget["delivered"] < asked
    assert printed.startswith(f"delivered {budget['delivered']:,} of {asked:,} tokens asked (") and "less than asked" in printed
    assert any(reason.startswith("c4 holds ") and reason.endswith("all of it taken") for reason in budget["short_because"])
    assert "the budget was split among the slices present only (arxiv, books, commoncrawl, github, stackexchange" in printed


def test_a_corpus_that_cannot_be_reproduced_is_reported_whatever_its_name(tmp_path, monkeypatch):
    """The report takes from the slice's manifest which corpus RedPajama's part cannot be rebuilt:
    named otherwise than books3, it is still listed, with the rest of RedPajama's tokens."""
    import dataclasses

    target = Books.report_target()
    corpora = {("lost" if name == "books3" else name): spec for name, spec in target.full_scale["corpora"].items()}
    published = {("lost" if name == "books3" else name): part for name, part in target.published_by_corpus.items()}
    corpora["lost"] = {**corpora["lost"], "like": "lost"}
    renamed = dataclasses.replace(target, full_scale={**target.full_scale, "corpora": corpora},
                                  published_by_corpus=published)
    monkeypatch.setattr(Books, "report_target", classmethod(lambda cls: renamed))
    out = tmp_path / "out"
    books_output(out, random.Random(7))
    pg19, lost = build_report(str(out), str(need(TOKENIZER)), processes=1)["slices"][0]["parts"]
    assert (lost["corpus"], lost["reproducible"], lost["tokens"]) == ("lost", False, None)
    words = published["pg19"]["words_read"]
    assert lost["redpajama_tokens_estimate"] == round(26e9 - words * pg19["tokens"] / pg19["words"])
