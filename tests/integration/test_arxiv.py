"""arXiv on the real LaTeX sources, packed in the bulk format (a tar of YYMM/<id>.gz)."""

import gzip
import io
import os
import tarfile
from pathlib import Path

from redpajama.core.streams import Limits
from redpajama.filters.latex import project_text
from redpajama.slices.arxiv import Arxiv, folder_files
from redpajama.slices.base import RunContext

from tests.conftest import LID_MODEL, SHARED, need
from tests.integration.helpers import errors, output_bytes, records, run

ARXIV = SHARED / "arxiv"
PAPERS = {"1708.00137": "1708", "1803.07574": "1803", "1907.10121-scipy-1.0": "1907", "sympy-paper": "1703"}


def project_gz(folder: Path) -> bytes:
    """A paper as arXiv ships a multi-file project: a gzipped tar of its sources."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                tar.add(path, arcname=str(path.relative_to(folder)))
    return gzip.compress(buffer.getvalue(), mtime=0)


def add(tar: tarfile.TarFile, name: str, data: bytes, mtime: int = 1_600_000_000) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mtime = len(data), mtime
    tar.addfile(info, io.BytesIO(data))


def bulk_tar(path: Path, hostile: bool = False) -> Path:
    with tarfile.open(path, "w") as tar:
        for folder, yymm in PAPERS.items():
            stem = folder.split("-")[0] if folder[0].isdigit() else "1703.00001"
            add(tar, f"{yymm}/{stem}.gz", project_gz(need(ARXIV / folder)))
        # a single-file paper: one gzipped .tex, as arXiv ships those
        add(tar, "1707/1707.08043.gz", gzip.compress((ARXIV / "1707.08043" / "main.tex").read_bytes()))
        add(tar, "1707/1707.99999.pdf", b"%PDF-1.4 only a pdf")
        add(tar, "0601/math0601001.gz", gzip.compress(b"\\documentclass{article}\\begin{document}\n"
                                                      b"\\section{Old}\nAn old-style identifier.\n\\end{document}"))
        if hostile:
            add(tar, "../escape.gz", gzip.compress(b"\\section{x}"))
            add(tar, "1707/1707.00001.gz", gzip.compress(b"\0" * (3 << 20)))  # beyond a 1 MB cap
            add(tar, "1707/1707.00002.gz", b"not gzip at all")
    return path


def test_bulk_tar_of_real_papers(tmp_path):
    outcome = run(Arxiv(lid_model=str(LID_MODEL)), [bulk_tar(tmp_path / "arXiv_src_1707_001.tar")], tmp_path / "out")
    stats = outcome.stats
    assert stats["read"] == 7 and stats["failed"] == 0
    assert stats["dropped"] == {"pdf_only": 1}
    docs = {d["meta"]["arxiv_id"]: d for d in records(outcome.slice_dir)}
    assert set(docs) == {"1708.00137", "1803.07574", "1907.10121", "1703.00001", "1707.08043", "math/0601001"}
    old = docs["math/0601001"]["meta"]
    assert old["url"] == "https://arxiv.org/abs/math/0601001" and old["yymm"] == "0601"
    assert old["timestamp"] == "2020-09-13T12:26:40"  # RedPajama: naive ISO, UTC here
    assert list(old) == ["timestamp", "yymm", "arxiv_id", "language", "url", "source", "id"]
    assert all(d["meta"]["language"] == "en" for d in docs.values())
    sympy = docs["1703.00001"]["text"]
    # \input order: the introduction comes before the architecture section, as in paper.tex
    assert sympy.startswith("\\section{Introduction}") and sympy.index("Introduction") < sympy.index("rchitecture")
    for doc in docs.values():
        assert "\\begin{thebibliography}" not in doc["text"] and "\\bibliography{" not in doc["text"]
        assert "\\documentclass" not in doc["text"]


def test_folders_hostile_members_bombs_and_determinism(tmp_path):
    tar = bulk_tar(tmp_path / "arXiv_src_1707_002.tar", hostile=True)
    slc = Arxiv(lid_model=str(LID_MODEL), max_paper_mb=1.0)
    outcome = run(slc, [tar, need(ARXIV / "eqs-magnetic-dual-layer")], tmp_path / "two", workers=2, executor="beam")
    reasons = sorted(e["reason"] for e in errors(outcome.slice_dir))
    assert reasons == ["corrupt_paper", "too_large", "unsafe_member_name"]
    # the bomb fails its paper only; everything else in the tar and the folder is kept
    assert outcome.stats["kept"] == 6 + 1 and outcome.stats["dropped"] == {"pdf_only": 1}
    assert not (tmp_path / "escape.gz").exists()
    single = run(Arxiv(lid_model=str(LID_MODEL), max_paper_mb=1.0), [tar, ARXIV / "eqs-magnetic-dual-layer"],
                 tmp_path / "one", workers=1, executor="beam")
    assert output_bytes(single.slice_dir) == output_bytes(outcome.slice_dir)


def test_appendix_kept_on_request(tmp_path):
    folder = need(ARXIV / "1803.07574")  # the only sample with \\appendix before its bibliography
    cut = records(run(Arxiv(lid_model=str(LID_MODEL)), [folder], tmp_path / "cut").slice_dir)[0]["text"]
    kept = records(run(Arxiv(lid_model=str(LID_MODEL), keep_appendix=True), [folder], tmp_path / "kept").slice_dir)
    assert "\\appendix" not in cut and "\\appendix" in kept[0]["text"] and len(kept[0]["text"]) > len(cut)


def test_every_root_document_of_the_shared_papers_is_kept():
    """sympy-paper's supplement (with the files it inputs) and replies to referees, and the HoTT
    book's exercise solutions, follow the main document; no file's text comes twice."""
    sympy = project_text(folder_files(str(need(ARXIV / "sympy-paper")), 1 << 30))
    assert sympy.startswith("\\section{Introduction}")
    places = [sympy.index(title) for title in ("\\section{Conclusion", "\\section{Comments from Editor}",
                                                 "\\section{Limits: The Gruntz Algorithm}", "\\section{Series}")]
    assert places == sorted(places)  # paper.tex, then rebuttal.tex ... supplement.tex by name
    assert sympy.count("\\section{Limits: The Gruntz Algorithm}") == 1  # gruntz.tex, input by supplement.tex
    hott = project_text(folder_files(str(need(ARXIV / "1308.0729-hott-book")), 1 << 30))
    assert hott.startswith("\\chapter*{Preface}")  # main.tex, though build wrappers (hott-a4.tex, ...) input it
    assert hott.index("\\chapter{Homotopy type theory}") < hott.index("\\section*{Exercises from \\cref{cha:typetheory}}")
    assert hott.count("\\chapter*{Preface}") == 1


def test_macro_bomb_fails_its_paper_only(tmp_path):
    defs = "".join(f"\\newcommand{{\\m{i}}}{{\\m{i + 1} \\m{i + 1}}}\n" for i in range(27)) + "\\newcommand{\\m27}{xx}\n"
    bomb = f"\\documentclass{{article}}\n{defs}\\begin{{document}}\n\\section{{S}}\n\\m0\n\\end{{document}}\n".encode()
    with tarfile.open(tmp_path / "arXiv_src_2301_001.tar", "w") as tar:
        add(tar, "2301/2301.00001.gz", gzip.compress(bomb))
        add(tar, "2301/2301.00002.gz", gzip.compress(b"\\documentclass{article}\\begin{document}\n\\section{Fine}\nok\n"))
    slc = Arxiv(lid_model=str(LID_MODEL), context=RunContext(limits=Limits(max_record_bytes=1 << 20)))
    outcome = run(slc, [tmp_path / "arXiv_src_2301_001.tar"], tmp_path / "out")
    assert [(e["reason"], e["location"].split("|")[1]) for e in errors(outcome.slice_dir)] == [
        ("record_too_large", "2301.00001")]
    assert outcome.stats["failed"] == 1 and [d["meta"]["arxiv_id"] for d in records(outcome.slice_dir)] == ["2301.00002"]


def read_folder(folder: Path) -> dict:
    slc = Arxiv(lid_model=str(LID_MODEL))
    [unit] = slc.plan(str(folder))
    [(_, record)] = slc.read(unit)
    return record["meta"]


def test_paper_folders_give_the_same_bytes_on_every_checkout(tmp_path):
    """A folder's timestamp is the first day of its arXiv id's month, whatever the files' mtimes."""
    metas = []
    for copy, mtime in (("one", 1_000_000_000), ("two", 1_700_000_000)):
        for name in ("1708.00137", "notes-paper"):
            folder = tmp_path / copy / name
            folder.mkdir(parents=True)
            (folder / "main.tex").write_text("\\documentclass{article}\\begin{document}\n\\section{A}\ntext\n")
            os.utime(folder / "main.tex", (mtime, mtime))
        metas.append([read_folder(tmp_path / copy / name) for name in ("1708.00137", "notes-paper")])
    assert metas[0] == metas[1]
    assert [meta["timestamp"] for meta in metas[0]] == ["2017-08-01T00:00:00", None]
