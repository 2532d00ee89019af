"""A bug planted in our output is never explained away by a deviation.

Each test takes the real outputs of a case (run once per session), plants a bug of the kind
a deviation could hide in our documents (the default run and, where the bug would be in
code every run shares, the compat reruns too) and requires the document to be unexplained.
The checks of single deviations are also tried on small documents: what the row describes
passes, a bug next to it does not.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Hashable

import pytest

from tests.fidelity import arxiv, stackexchange, wikipedia
from tests.fidelity.harness import DuplicateKey, LazyContext, Runs, Situation, classify, index
from tests.fidelity.stackexchange import Answer, Thread

pytestmark = pytest.mark.xdist_group("fidelity")  # one worker runs every case once (make test: --dist loadgroup)


def planted(runs: Runs, key: Hashable, bug: Callable[[dict], None], everywhere: bool = False) -> Runs:
    """The runs of one document, with ``bug`` applied to our default document (and to every
    switch's rerun when ``everywhere``)."""
    only = Runs({k: v for k, v in runs.reference.items() if k == key}, copy.deepcopy({key: runs.ours[key]}))
    for row, docs in runs.variants.items():
        only.variants[row] = copy.deepcopy({k: v for k, v in docs.items() if k == key})
    only.emulated = {row: {k: v for k, v in docs.items() if k == key} for row, docs in runs.emulated.items()}
    for docs in [only.ours, *(only.variants.values() if everywhere else ())]:
        if key in docs:
            bug(docs[key])
    return only


def explained(case, runs: Runs, key: Hashable) -> bool:
    result = classify(case, runs)
    assert result.compared == 1
    return key in result.explained


# --- arXiv -------------------------------------------------------------------------------------


def test_a_dropped_input_file_is_not_archive_order(arxiv_runs):
    case, runs = arxiv_runs
    paper = arxiv.read_papers(case.inputs)["1907.10121"]
    [document] = [d for d in arxiv.documents(paper.texts) if d.lines]
    lost = [line for line, origin in zip(document.lines, document.origins, strict=True) if origin == "scipy-optimize.tex"]
    assert len(lost) > 20

    def drop_file(doc):
        for line in lost:
            doc["text"] = doc["text"].replace(line + "\n", "", 1)

    assert explained(case, planted(runs, "1907.10121", lambda doc: None), "1907.10121")
    result = classify(case, planted(runs, "1907.10121", drop_file))
    assert "scipy-optimize.tex" in result.unexplained["1907.10121"]


def test_an_arxiv_language_label_that_is_not_the_texts(arxiv_runs):
    case, runs = arxiv_runs
    result = classify(case, planted(runs, "1907.10121", lambda doc: doc["meta"].update(language="fr"), everywhere=True))
    assert "1907.10121" in result.unexplained


# --- StackExchange ---------------------------------------------------------------------------------


def _layout_key(case, runs) -> str:
    """A thread whose text differs from RedPajama's by layout only."""
    result = classify(case, Runs(runs.reference, runs.ours, runs.variants))
    return next(key for key, rows in result.explained.items() if rows[-1] == "se-html-layout")


def test_a_glued_word_is_not_layout(stackexchange_runs):
    case, runs = stackexchange_runs
    key = _layout_key(case, runs)

    def glue(doc):  # two words of the body become one
        head, body = doc["text"].split("\n", 1)
        doc["text"] = head + "\n" + re.sub(r"(?<=[a-z]) (?=[a-z])", "", body, count=1)

    assert explained(case, planted(runs, key, lambda doc: None), key)
    assert key in classify(case, planted(runs, key, glue, everywhere=True)).unexplained


def test_broken_pre_indentation_is_not_layout(stackexchange_runs):
    case, runs = stackexchange_runs
    threads = stackexchange.read_threads(case.inputs)
    key = next(url for url, thread in threads.items() if "<pre" in thread.all_html and url in runs.ours
               and re.search(r"(?m)^    \S", runs.ours[url]["text"]))

    def dedent(doc):
        doc["text"] = re.sub(r"(?m)^    (?=\S)", "", doc["text"], count=1)

    assert explained(case, planted(runs, key, lambda doc: None), key)
    assert key in classify(case, planted(runs, key, dedent, everywhere=True)).unexplained


def test_a_changed_language_label_is_not_layout(stackexchange_runs):
    case, runs = stackexchange_runs
    key = _layout_key(case, runs)
    bug = planted(runs, key, lambda doc: doc["meta"].update(language="de"), everywhere=True)
    assert key in classify(case, bug).unexplained


def test_answers_in_the_wrong_order_are_not_the_score_strings(stackexchange_runs):
    case, runs = stackexchange_runs
    threads = stackexchange.read_threads(case.inputs)
    key = next(url for url, thread in threads.items() if url in runs.ours
               and len({answer.score for answer in thread.answers}) > 2)

    def ascending(doc):
        question, *answers = doc["text"].split("\nA: ")
        doc["text"] = "\nA: ".join([question, *reversed(answers)])

    result = classify(case, planted(runs, key, ascending))
    assert result.unexplained[key].startswith("se-answer-order: ")


# --- Wikipedia and keys ----------------------------------------------------------------------------


def test_glued_sections_are_not_empty_sections(wikipedia_runs):
    case, runs = wikipedia_runs
    result = classify(case, runs)
    key = next(key for key, rows in result.explained.items() if "wiki-empty-sections" in rows)
    glued = classify(case, planted(runs, key, lambda doc: doc.update(text=doc["text"].replace("\n\n", " ", 1))))
    assert glued.unexplained[key].startswith("wiki-empty-sections: ")


def test_a_duplicate_key_fails_and_titles_are_keyed_by_language():
    pages = [{"text": "x", "meta": {"language": language, "title": "Paris"}} for language in ("en", "fr")]
    assert set(index(pages, wikipedia.page_key, "ours")) == {("en", "Paris"), ("fr", "Paris")}
    with pytest.raises(DuplicateKey, match="Paris"):
        index([*pages, pages[0]], wikipedia.page_key, "ours")


def test_a_duplicate_key_in_a_run_fails(wikipedia_runs, tmp_path):
    from tests.fidelity.harness import reference_lines

    case, _ = wikipedia_runs
    lines = case.reference.read_text("utf-8").splitlines()
    doubled = tmp_path / "doubled.jsonl"
    doubled.write_text("\n".join([*lines, lines[3]]) + "\n", "utf-8")
    with pytest.raises(DuplicateKey, match="RedPajama"):
        index(reference_lines(doubled), case.key, "RedPajama's output")


# --- GitHub ----------------------------------------------------------------------------------------


def test_github_comment_lines_of_any_kind_are_not_the_deviation(github_runs):
    case, runs = github_runs
    key = ("acme/geo", "refs/heads/main", "tools/run.sh")
    assert explained(case, planted(runs, key, lambda doc: None), key)
    # RedPajama's stripping (a shebang and a comment without "copyright") is not what ours documents
    stripped = planted(runs, key, lambda doc: doc.update(text=doc["text"].split("\n", 2)[2]))
    assert key in classify(case, stripped).unexplained


def test_a_file_lost_by_github_is_unexplained(github_runs):
    case, runs = github_runs
    key = ("earwig/mwparserfromhell", "refs/heads/main", "wikicode.py")
    lost = planted(runs, key, lambda doc: None)
    del lost.ours[key]
    assert classify(case, lost).unexplained[key] == "only in RedPajama's output"


# --- the checks on small documents -------------------------------------------------------------------


def doc(text: str, **meta) -> dict:
    return {"text": text, "meta": {"language": "en", **meta}}


def situation(key, context) -> Situation:
    return Situation(key, context, None, [])


PAPER = arxiv.Paper({
    "main.tex": rb"""\documentclass{article}
\newcommand{\sys}{SymPy}
\begin{document}
\title{T}
\input{intro}
\section{Method}
We use \sys{} here. % why
\appendix
\section{Proofs}
\end{document}
""",
    "intro.tex": rb"""\section{Introduction}
Text of the introduction.
""",
})


def test_arxiv_assembly_check_on_a_small_paper():
    context = {"p": PAPER}
    ours = "\\section{Introduction}\nText of the introduction.\n\n\\section{Method}\nWe use SymPy{} here. \n"
    theirs = "\\section{Method}\nWe use SymPy{} here. \n\n\\section{Introduction}\nText of the introduction.\n"
    assert arxiv.check_assembly(doc(ours), doc(theirs), situation("p", context)) is None
    lost = ours.replace("Text of the introduction.\n", "")
    assert "differs at its line 1" in arxiv.check_assembly(doc(lost), doc(theirs), situation("p", context))
    extra = ours + "\\section{Proofs}\n"  # past the appendix
    assert "belongs to no document" in arxiv.check_assembly(doc(extra), doc(theirs), situation("p", context))


def test_arxiv_comment_check():
    ok = arxiv.check_comments(doc("a\nWe use it here. \nb"), doc("a\nWe use it here.\nb%"), situation("p", {}))
    assert ok is None
    assert arxiv.check_comments(doc("We use it here. "), doc("We use it her"), situation("p", {}))
    assert arxiv.check_comments(doc("a\nb"), doc("a"), situation("p", {}))


def test_arxiv_macro_check():
    context = {"p": PAPER}
    assert arxiv.check_macros(doc("We use SymPy{} here."), doc(r"We use \sys{} here."), situation("p", context)) is None
    assert arxiv.check_macros(doc("We use SymPy{} here."), doc(r"We use \sys{} there."), situation("p", context))
    bad = arxiv.Paper({"main.tex": "\\newcommand{\\name}{Gödel}\n".encode()})
    assert arxiv.check_macros(doc("x"), None, situation("p", {"p": bad})) is None  # its template fails
    assert arxiv.check_macros(doc("x"), None, situation("p", context))  # nothing fails there


def test_arxiv_cut_check():
    ours = "\\section{A}\ntext\n\\section{B}\nmore"
    assert arxiv.check_cut(doc(ours), doc("\\paragraph{P}\nlead\n" + ours), situation("p", {})) is None
    assert arxiv.check_cut(doc(ours + "\n\\appendixname{} x"), doc(ours + "\n"), situation("p", {})) is None
    assert arxiv.check_cut(doc(ours), doc("lead without a section\n" + ours), situation("p", {}))
    assert arxiv.check_cut(doc(ours), doc(ours.replace("text", "txet")), situation("p", {}))


def test_arxiv_latin1_check():
    latin = arxiv.Paper({"main.tex": "caf\xe9".encode("latin-1")})
    assert arxiv.check_latin1(doc("x"), None, situation("p", {"p": latin})) is None
    assert arxiv.check_latin1(doc("x"), None, situation("p", {"p": PAPER}))


def test_score_string_check():
    thread = Thread("T", "<p>q</p>", "12", [])
    context = {"u": thread}
    assert stackexchange.check_score_strings(doc("Q", question_score=12), doc("Q", question_score="12"),
                                             situation("u", context)) is None
    assert stackexchange.check_score_strings(doc("Q", question_score=13), doc("Q", question_score="12"),
                                             situation("u", context))


def test_answer_order_check():
    thread = Thread("T", "", "1", [Answer(2, 9, "9", ""), Answer(3, 10, "10", ""), Answer(4, 10, "10", "")])
    context = {"u": thread}
    ours, theirs = "Q: T\nA: b\nA: c\nA: a", "Q: T\nA: a\nA: b\nA: c"
    assert stackexchange.check_answer_order(doc(ours), doc(theirs), situation("u", context)) is None
    assert stackexchange.check_answer_order(doc("Q: T\nA: c\nA: b\nA: a"), doc(theirs), situation("u", context))
    assert stackexchange.check_answer_order(doc("Q: T\nA: b\nA: c"), doc(theirs), situation("u", context))


def test_html_layout_rewrite():
    thread = Thread("T", "<ol><li>one</li><li>two</li></ol><p>a<br>b</p><pre>    code</pre>", "1", [])
    context = LazyContext(lambda inputs: {"u": thread}, [])
    theirs = "Q: T \n*\n*one\n*two\nab\n    code"
    ours = "Q: T \n*one\n*two\na\nb\n    code"
    ref, mine = stackexchange.html_layout(doc(theirs), doc(ours), situation("u", context))
    assert ref == mine
    for bug in (ours.replace("*two\n", "*two"), ours.replace("    code", "code"), ours.replace("two", "tow"),
                ours.replace("*one\n", "")):
        ref, mine = stackexchange.html_layout(doc(theirs), doc(bug), situation("u", context))
        assert ref != mine, bug


def test_wikipedia_empty_sections_check():
    assert wikipedia.check_empty_sections(doc("A\n\nB"), doc("\n\nA\n\n\n\nB"), situation("k", {})) is None
    assert wikipedia.check_empty_sections(doc("A B"), doc("\n\nA\n\n\n\nB"), situation("k", {}))
    assert wikipedia.check_empty_sections(None, doc("\n\n"), situation("k", {})) is None


def test_wikipedia_namespace_names_check():
    page = wikipedia.Page("Lead [[Dosiero:X.png|thumb|A caption]] text.\n\n[[Kategorio:Birds]]", ["Dosiero"],
                          ["Kategorio"])
    context = {("xx", "T"): page}
    theirs = "Lead thumb|A caption text.\n\nKategorio:Birds"
    assert wikipedia.check_namespace_names(doc("Lead  text.\n\nBirds"), doc(theirs), situation(("xx", "T"), context)) \
        is None
    assert wikipedia.check_namespace_names(doc("Lead text.\n\nBirds"), doc(theirs.replace("Lead ", "")),
                                           situation(("xx", "T"), context))
    assert wikipedia.check_namespace_names(doc("Leadtext.\n\nBirds"), doc(theirs), situation(("xx", "T"), context))
