"""Books on the real Gutenberg sample with planted near-duplicates; PG-19 rows and ids."""

import json

from redpajama.slices.books import Books

from bench.books_sample import GUTENBERG, components, ground_truth, plant, sample_books
from tests.conftest import need
from tests.integration.helpers import dropped, output_bytes, records, run


def test_planted_and_real_near_duplicates_are_removed(tmp_path):
    need(GUTENBERG)
    plant(tmp_path / "planted")
    paths = sample_books() + sorted((tmp_path / "planted").glob("*.txt"))
    outcome = run(Books(), paths, tmp_path / "out")
    stats, kept, gone = outcome.stats, records(outcome.slice_dir), dropped(outcome.slice_dir)
    assert stats["read"] == 28 and stats["failed"] == 0
    assert stats["kept"] + len(gone) == 28 and stats["dropped"] == {"near_duplicate": len(gone)}
    cluster = {d["meta"]["id"].rsplit("/", 1)[1]: f"gutenberg|{d['meta']['id'].removeprefix('gutenberg/')}|{0:09d}"
               for d in kept}
    kept_files = set(cluster)
    cluster.update({d["meta"]["id"].rsplit("/", 1)[1]: d["meta"]["cluster"] for d in gone})
    # each planted copy above the threshold lands in its original's cluster; the 5 % edit
    # (Jaccard about 0.6) is a different text and stays alone
    for copy, original in (("holmes-new-front-matter.txt", "1661.txt"), ("moby-dick-1pct-edits.txt", "2701-0.txt"),
                           ("christmas-carol-first-85pct.txt", "46-0.txt")):
        assert cluster[copy] == cluster[original]
    assert "moby-dick-5pct-edits.txt" in kept_files and cluster["moby-dick-5pct-edits.txt"] != cluster["2701-0.txt"]
    # distinct works stay, the retelling of Alice (Jaccard 0.34) and the 1818 Frankenstein (0.74) too
    assert {"19033.txt", "41445-0.txt", "2000-8.txt"} <= kept_files
    truth = components(ground_truth(paths), 0.8, [str(p) for p in paths])
    assert len(kept) == len(set(truth.values()))
    for doc in kept:
        assert doc["meta"]["cluster_size"] >= 1 and doc["meta"]["source"] == "gutenberg"
    assert sum(d["meta"]["cluster_size"] for d in kept) == 28
    for doc in gone:  # the cluster names the order key of the book that was kept
        assert doc["meta"]["cluster"].split("|")[1].rsplit("/", 1)[1] in kept_files
        assert doc["meta"]["cluster"] < f"gutenberg|{doc['meta']['id'].removeprefix('gutenberg/')}|{0:09d}"
    step = next(s for s in stats["steps"] if s["name"] == "near_dedup")
    assert step["in"] == 28 and step["out"] == len(kept)


def test_pg19_rows_ids_per_corpus_exact_duplicates_and_determinism(tmp_path):
    text = (GUTENBERG / "Frankenstein_84" / "84-0.txt").read_text(encoding="utf-8")
    pg19 = tmp_path / "pg19-train.jsonl"
    rows = [{"short_book_title": "Frankenstein", "publication_date": 1818, "url": "http://www.gutenberg.org/ebooks/84",
             "text": text},
            {"short_book_title": "Frankenstein (reflowed)", "publication_date": 1818, "url": "u2",
             "text": text.replace("\n", " ").upper()}]  # the same words: an exact duplicate
    pg19.write_text("\n".join(json.dumps(r) for r in rows) + "\n{not json\n")
    books3 = tmp_path / "books3.jsonl"
    books3.write_text(json.dumps({"title": "Short", "text": "A different short book about whales and seas."}) + "\n")
    outcome = run(Books(), [pg19, books3], tmp_path / "out", executor="beam")
    assert outcome.stats["dropped"] == {"exact_duplicate": 1} and outcome.stats["failed"] == 1
    ids = sorted(d["meta"]["id"] for d in records(outcome.slice_dir))
    assert ids == ["books3/books3/0", "pg19/pg19-train/0"]  # corpora never share ids
    first = next(d for d in records(outcome.slice_dir) if d["meta"]["source"] == "pg19")
    assert first["meta"]["short_book_title"] == "Frankenstein" and first["meta"]["cluster_size"] == 1
    again = run(Books(), [pg19, books3], tmp_path / "one", workers=1, executor="beam")
    assert output_bytes(again.slice_dir) == output_bytes(outcome.slice_dir)


def test_ids_do_not_depend_on_where_the_books_live(tmp_path):
    from redpajama.pipelines.commands import cli

    books = sorted(need(GUTENBERG).glob("Alice*/**/*.txt"))[:2]
    outputs = []
    for place in ("here", "elsewhere/deeper"):
        folder = tmp_path / place / "gutenberg"
        for book in books:
            target = folder / book.relative_to(GUTENBERG)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(book.read_bytes())
        out = tmp_path / place / "out"
        assert cli.main(["run", "books", "--input", f"{folder}/**/*.txt", "--output", str(out), "--executor", "inprocess",
                         "--count-tokens", "off"]) == 0
        outputs.append(output_bytes(out / "books"))
    assert outputs[0] == outputs[1] and any(name.endswith(".jsonl.zst") for name in outputs[0])
    here = tmp_path / "here" / "out" / "books"
    ids = sorted(d["meta"]["id"] for d in records(here) + dropped(here))
    assert ids == sorted(f"gutenberg/{b.relative_to(GUTENBERG)}" for b in books)
