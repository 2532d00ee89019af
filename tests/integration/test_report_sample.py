"""``redpajama report`` and ``redpajama sample`` on real slice outputs."""

import gzip
import json

from redpajama.pipelines.commands.cli import main
from redpajama.pipelines.commands.report import build_report, markdown, write_report
from redpajama.pipelines.commands.sample import sample
from redpajama.slices.c4 import C4
from redpajama.slices.wikipedia import Wikipedia
from tokenizers import Tokenizer

from tests.conftest import SHARED, WIKI_EN, need
from tests.integration.helpers import records, run

TOKENIZER = SHARED / "models" / "gpt-neox-20b" / "20B_tokenizer.json"
C4_TRAIN = SHARED / "c4" / "hf-datasets-dummy-en" / "c4-train.00000-of-01024.json.gz"


def outputs(tmp_path):
    out = tmp_path / "out"
    run(Wikipedia(), [need(WIKI_EN)], out)
    run(C4(), [need(C4_TRAIN)], out)
    return out


def test_report_counts_tokens_and_projects_to_full_scale(tmp_path):
    out = outputs(tmp_path)
    report = build_report(str(out), str(need(TOKENIZER)), eod=True, processes=2)
    rows = {row["slice"]: row for row in report["slices"]}
    assert set(rows) == {"c4", "wikipedia"}
    tokenizer = Tokenizer.from_file(str(TOKENIZER))
    for name in rows:
        texts = [d["text"] for d in records(out / name)]
        expected = sum(len(tokenizer.encode(t, add_special_tokens=False).ids) for t in texts) + len(texts)
        assert rows[name]["documents"] == len(texts) and rows[name]["tokens"] == expected
    c4 = rows["c4"]
    assert c4["units_processed"] == 1 and c4["projected_tokens"] == c4["tokens"] * 1024
    assert c4["redpajama_tokens"] == 175e9 and c4["llama_tokens_estimate"] == 210e9
    assert rows["wikipedia"]["units_processed"] == 1 and rows["wikipedia"]["units_full_scale"] == 20
    assert abs(sum(r["share"] for r in rows.values()) - 1) < 1e-3
    no_eod = build_report(str(out), str(TOKENIZER), eod=False)
    assert {r["slice"]: r["tokens"] for r in no_eod["slices"]}["c4"] == c4["tokens"] - 3
    paths = write_report(report, str(out))
    assert [p.rsplit("/", 1)[1] for p in paths] == ["report.json", "report.md", "report.png"]
    assert (out / "report.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "| wikipedia | 106 |" in (out / "report.md").read_text()


def test_sample_is_deterministic_and_follows_the_fraction(tmp_path):
    out = outputs(tmp_path)
    first = sample(str(out), str(tmp_path / "a"), {"*": 0.3}, seed=7, tokenizer=str(TOKENIZER))
    sample(str(out), str(tmp_path / "b"), {"*": 0.3}, seed=7, tokenizer=None)
    written = (tmp_path / "a" / "wikipedia_sample.jsonl").read_bytes()
    assert written and written == (tmp_path / "b" / "wikipedia_sample.jsonl").read_bytes()
    wiki = next(r for r in first["slices"] if r["slice"] == "wikipedia")
    assert 15 <= wiki["documents"] <= 50 and wiki["read"] == 106 and wiki["tokens"] > 0
    lines = (tmp_path / "a" / "wikipedia_sample.jsonl").read_text().splitlines()
    assert len(lines) == wiki["documents"] and json.loads(lines[0])["meta"]["source"] == "wikipedia"
    other_seed = sample(str(out), str(tmp_path / "c"), {"*": 0.3}, seed=8, tokenizer=None)
    assert (tmp_path / "c" / "wikipedia_sample.jsonl").read_bytes() != (tmp_path / "a" / "wikipedia_sample.jsonl").read_bytes()
    assert other_seed["slices"][0]["read"] == first["slices"][0]["read"]


def test_cli_report_sample_and_their_mistakes(tmp_path, capsys):
    out = outputs(tmp_path)
    assert main(["report", str(out), "--tokenizer", str(TOKENIZER), "--workers", "1"]) == 0
    assert "| c4 | 3 |" in capsys.readouterr().out
    assert main(["sample", str(out), "--dest", str(tmp_path / "s"), "--tokens", "50000",
                 "--tokenizer", str(TOKENIZER)]) == 0
    report = json.loads((tmp_path / "s" / "sample_report.json").read_text())
    spent = sum(row["tokens"] for row in report["slices"])
    assert 0 < spent < 50000 * 1.5
    capsys.readouterr()
    assert main(["report", str(tmp_path / "nothing")]) == 2
    assert capsys.readouterr().err.count("\n") == 1


def test_report_reads_a_redpajama_download_layout(tmp_path):
    folder = tmp_path / "download" / "book"
    folder.mkdir(parents=True)
    (folder / "book.jsonl").write_text(json.dumps({"meta": {"title": "T"}, "text": "Call me Ishmael."}) + "\n")
    with gzip.open(need(C4_TRAIN)) as handle:
        (tmp_path / "download" / "c4").mkdir()
        rows = [json.loads(line) for line in handle.read().decode().split("\n")]
        (tmp_path / "download" / "c4" / "c4-train.00000-of-01024.jsonl").write_text(
            "\n".join(json.dumps({"text": r["text"], "meta": {"url": r["url"]}}) for r in rows) + "\n")
    report = build_report(str(tmp_path / "download"), str(need(TOKENIZER)))
    assert {r["slice"]: r["documents"] for r in report["slices"]} == {"c4": 3, "books": 1}


def test_commoncrawl_and_arxiv_are_projected_with_intervals_from_their_listings(tmp_path):
    from tests.integration.loopback import Reply, Server

    out = tmp_path / "out"
    texts = {"commoncrawl": [f"Alpha beta gamma {n}. " * (10 + 3 * n) for n in range(20)],
             "arxiv": ["\\section{Intro} We prove a theorem. " * 20, "\\section{Result} The bound holds. " * 12]}
    for name, documents in texts.items():
        folder = out / name
        folder.mkdir(parents=True)
        (folder / f"{name}-00000-of-00001.jsonl").write_text(
            "".join(json.dumps({"text": t, "meta": {}}) + "\n" for t in documents))
        per_unit = [[1, len(t.encode())] for t in documents]  # one document per unit; one more unit kept nothing
        stats = {"units": {"planned": len(documents) + 1}, "read": 10,
                 "unit_yields": {"per_unit": per_unit, "per_input": per_unit, "unattributed": [0, 0]},
                 "recipe": {"wikiref": {"recipe": "built by RedPajama's recipe"}} if name == "commoncrawl" else {}}
        (folder / "stats.json").write_text(json.dumps(stats))
    listing = gzip.compress(b"".join(f"crawl-data/x/segments/1/wet/{n}.warc.wet.gz\n".encode() for n in range(40)))
    server = Server("127.0.0.1", lambda path, query, headers: Reply(body=listing, headers={"Content-Type": "application/gzip"}))
    manifest = tmp_path / "arXiv_src_manifest.xml"
    manifest.write_text("<arXivSRC>" + "".join(f"<file><filename>src/arXiv_src_{m}_001.tar</filename></file>"
                                                for m in ("9108", "0001", "1201", "2303", "2304")) + "</arXivSRC>")
    try:
        report = build_report(str(out), str(need(TOKENIZER)), cc_mirror=server.base, arxiv_manifest=str(manifest),
                              arxiv_until="2303")
        offline = build_report(str(out), str(TOKENIZER), cc_mirror="http://127.0.0.1:9")
    finally:
        server.close()
    rows = {row["slice"]: row for row in report["slices"]}
    cc, arxiv = rows["commoncrawl"], rows["arxiv"]
    assert (cc["units_processed"], cc["units_full_scale"]) == (21, 5 * 40)
    assert cc["projected_tokens"] == round(cc["tokens"] * 200 / 21)
    low, high = cc["projected_interval"]
    assert 0 < low < cc["projected_tokens"] < high
    assert (arxiv["units_processed"], arxiv["units_full_scale"]) == (3, 4)  # 2304 is after --arxiv-until
    assert arxiv["projected_interval"] is None and arxiv["certainty"].startswith("no interval: only 3 processed")
    text = markdown(report)
    assert "Wikipedia-reference classifier built by RedPajama's recipe" in text and " (" in text
    cc_offline = {row["slice"]: row for row in offline["slices"]}["commoncrawl"]
    assert cc_offline["projected_tokens"] is None and "unreachable" in cc_offline["units_full_scale_source"]
    assert {row["slice"]: row for row in offline["slices"]}["arxiv"]["units_full_scale_source"].startswith("unknown")
