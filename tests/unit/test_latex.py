"""arXiv cleaning: RedPajama's rules, and each of its bugs with our behaviour."""

import pickle
import tracemalloc

import pytest
from redpajama.core.errors import LimitExceeded
from redpajama.core.records import Drop
from redpajama.filters.latex import (
    CleanLatex,
    ExpansionTooLarge,
    LatexRules,
    expand_macros,
    macros,
    project_text,
    strip_comments,
)
from redpajama.filters.tex_project import Project
from redpajama.slices.arxiv import format_arxiv_id, month_start, safe_name, yymm_of

PREAMBLE = "\\documentclass{article}\n\\begin{document}\n"


def roots(files: dict) -> list[str]:
    return Project(files, strip_comments).roots()


def test_files_are_assembled_in_input_order_from_the_documentclass_file():
    files = {
        "a.tex": "\\section{Alpha}\nalpha text\n",
        "b.tex": "\\section{Beta}\nbeta text\n",
        "main.tex": PREAMBLE + "\\input{b}\n\\include{a.tex}\n\\end{document}\n",
        "notes.tex": "\\section{Unused}\n",
    }
    assert roots(files) == ["main.tex"]
    text = project_text(files)
    # RedPajama joined files in tar order (a, b, ...), each cut before its own first section
    assert text.index("Beta") < text.index("Alpha") and "Unused" not in text


def test_paragraph_alone_starts_the_text():
    # RedPajama's regex lacked "|" between \paragraph and \subparagraph: this became ""
    assert project_text({"p.tex": PREAMBLE + "\\paragraph{Only}\nbody\n"}) == "\\paragraph{Only}\nbody\n"
    assert project_text({"p.tex": PREAMBLE + "\\paragraph{Only}\nbody\n"}, LatexRules(cut_regexes=True)) == ""


def test_no_sectioning_command_means_no_text():
    record = {"text": "", "meta": {"_files": {"x.tex": PREAMBLE + "just text\n"}}}
    assert CleanLatex().apply(record) == Drop("no_text_after_cleaning")


def test_comments_removed_without_eating_the_previous_character():
    files = {"m.tex": PREAMBLE + "\\section{S}\nabc% note\n% whole line\n50\\% of it\ntrailing%\n"}
    # RedPajama's [^\\]%.+$ gave "ab" and left "trailing%"
    assert project_text(files) == "\\section{S}\nabc\n50\\% of it\ntrailing\n"
    assert project_text(files, LatexRules(comments=True)) == "\\section{S}\nab\n50\\% of it\ntrailing%\n"


def test_cut_at_appendix_by_default_and_at_bibliography_always():
    body = "\\section{Intro}\ntext\n\\appendix\n\\section{Proofs}\nproof\n\\bibliography{refs}\nbib\n"
    files = {"m.tex": PREAMBLE + body}
    assert project_text(files) == "\\section{Intro}\ntext\n"
    kept = project_text(files, LatexRules(keep_appendix=True))
    assert kept == "\\section{Intro}\ntext\n\\appendix\n\\section{Proofs}\nproof\n"
    assert project_text(files, LatexRules(cut_regexes=True, keep_appendix=True)) == kept
    # \appendixname is not \appendix (RedPajama's expression cut there too)
    named = {"m.tex": PREAMBLE + "\\section{A}\nsee \\appendixname{} B\n"}
    assert project_text(named) == "\\section{A}\nsee \\appendixname{} B\n"
    assert project_text(named, LatexRules(cut_regexes=True)) == "\\section{A}\nsee "


def test_appendix_cut_applies_to_the_assembled_document():
    files = {"main.tex": PREAMBLE + "\\input{one}\n\\appendix\n\\input{extra}\n\\end{document}\n",
             "one.tex": "\\section{One}\nfirst\n", "extra.tex": "\\section{Extra}\nappendix text\n"}
    assert "appendix text" not in project_text(files)
    # RedPajama cleaned each file alone: the appendix kept in its own file stayed
    assert "appendix text" in project_text(files, LatexRules(archive_order=True))


def test_macros_expand_with_non_ascii_values_and_at_the_end_of_the_text():
    body = "\\section{S}\nIn \\R, \\eps>0 and \\Rx stays \\R"
    files = {"m.tex": PREAMBLE + "\\newcommand{\\R}{ℝ}\n\\def\\eps{\\varepsilon}\n" + body}
    table = macros(files)
    assert table == {"\\R": "ℝ", "\\eps": "\\varepsilon"}
    # RedPajama: re.sub with an escaped non-ASCII template raised and dropped the paper,
    # and a macro at the very end of the text was left
    assert project_text(files) == "\\section{S}\nIn ℝ, \\varepsilon>0 and \\Rx stays ℝ"
    assert expand_macros("\\a\\a1", {"\\a": "\\1"}) == "\\1\\a1"  # values are literal, not templates
    record = {"text": "", "meta": {"_files": files}}
    assert CleanLatex(LatexRules(macros=True)).apply(record) == Drop("macro_template_error")


def test_a_macro_value_never_merges_with_the_name_before_it():
    # "\\eg" is defined first; replacing it first in the whole text used to turn "\\foo\\eg" into
    # "\\fooe.g." (another name); by tokens, as TeX reads them, both are expanded
    files = {"m.tex": PREAMBLE + "\\newcommand{\\eg}{e.g.}\n\\newcommand{\\foo}{F}\n\\section{S}\n\\foo\\eg\n"}
    assert project_text(files) == "\\section{S}\nFe.g.\n"


def test_redpajama_macro_templates_consume_the_next_character():
    files = {"m.tex": PREAMBLE + "\\newcommand{\\x}{X}\n\\section{S}\n\\x\\x and \\x"}
    assert project_text(files) == "\\section{S}\nXX and X"
    assert project_text(files, LatexRules(macros=True)) == "\\section{S}\nX\\x and \\x"


def test_section_in_a_preamble_macro_does_not_start_the_text():
    files = {"m.tex": "\\documentclass{book}\n\\newcommand{\\notes}{\\section*{Notes}}\n\\begin{document}\n"
                      "\\chapter{One}\nbody\n\\end{document}"}
    assert project_text(files).startswith("\\chapter{One}")


def test_include_cycles_and_missing_files_are_harmless():
    files = {"m.tex": PREAMBLE + "\\section{S}\n\\input{m}\\input{missing}\\input x\n", "x.tex": "ex\n"}
    assert Project(files, strip_comments).assemble("m.tex", set()).count("\\section{S}") == 1
    assert project_text(files) == "\\section{S}\n\nex\n\n\n"


def test_input_and_include_are_whole_commands():
    text = project_text({"m.tex": r"\documentclass{article}\begin{document}\section{A} x "
                                  r"\includegraphics[width=.5\linewidth]{f.pdf} y \inputencoding{latin1} z"})
    assert text == r"\section{A} x \includegraphics[width=.5\linewidth]{f.pdf} y \inputencoding{latin1} z"


def test_subfiles_and_import_packages_are_followed():
    files = {
        "main.tex": PREAMBLE + "\\subfile{chapters/one}\n\\import{parts/}{two}\n\\subimport{parts/}{three.tex}\n"
                    "\\inputfrom{parts}{four}\n\\end{document}\n",
        "chapters/one.tex": "\\documentclass[../main.tex]{subfiles}\n\\usepackage{x}\n\\begin{document}\n"
                            "\\section{One}\none text\n\\end{document}\ntrailing\n",
        "parts/two.tex": "\\section{Two}\ntwo text\n",
        "parts/three.tex": "three text\n",
        "parts/four.tex": "four text\n",
    }
    assert roots(files) == ["main.tex", "chapters/one.tex"]  # the subfile: a document only if main had not taken it
    text = project_text(files)
    assert [text.index(word) for word in ("One", "two text", "three text", "four text")] == sorted(
        text.index(word) for word in ("One", "two text", "three text", "four text"))
    assert "usepackage" not in text and "trailing" not in text and "subfiles" not in text


def test_archive_order_joins_every_file_each_cleaned_alone():
    files = {"b.tex": "\\section{Beta}\nbeta\n", "main.tex": PREAMBLE + "\\input{b}\n\\end{document}\n",
             "a.tex": "no section here\n"}
    # main.tex has no section of its own and a.tex none at all: both give "" but still a newline each
    assert project_text(files, LatexRules(archive_order=True)) == "\\section{Beta}\nbeta\n\n\n"
    empty = {"x.tex": "a\n", "y.tex": "b\n"}
    record = {"text": "", "meta": {"_files": empty}}
    assert CleanLatex(LatexRules(archive_order=True)).apply(record)["text"] == "\n"
    assert CleanLatex().apply({"text": "", "meta": {"_files": empty}}) == Drop("no_text_after_cleaning")


def test_utf8_only_drops_papers_read_as_latin1():
    record = {"text": "", "meta": {"_files": {"m.tex": PREAMBLE + "\\section{S}\nx"}, "_latin1": ["m.tex"]}}
    assert CleanLatex(LatexRules(utf8_only=True)).apply(dict(record, meta=dict(record["meta"]))) == Drop("not_utf8")
    assert CleanLatex().apply(record)["text"] == "\\section{S}\nx"


def test_ids_names_and_dates():
    assert format_arxiv_id("math0601001") == "math/0601001" and format_arxiv_id("0704.0001") == "0704.0001"
    assert yymm_of("2303.12345", "2303") == "2303" and yymm_of("math/0601001") == "0601"
    assert month_start("1708") == "2017-08-01T00:00:00" and month_start("9108") == "1991-08-01T00:00:00"
    assert month_start("") is None and month_start("1713") is None
    assert safe_name("../etc/passwd") is None and safe_name("/abs.gz") is None and safe_name("2303/x.gz") == "2303/x.gz"


def doubling(levels: int, last: str = "xx", separator: str = " ") -> dict[str, str]:
    """A paper whose macro m0 is m1 twice, m1 is m2 twice, ...: 2**levels copies of ``last``."""
    defs = "".join(f"\\newcommand{{\\m{i}}}{{\\m{i + 1}{separator}\\m{i + 1}}}\n" for i in range(levels))
    return {"m.tex": f"\\documentclass{{article}}\n{defs}\\newcommand{{\\m{levels}}}{{{last}}}\n"
                     "\\begin{document}\n\\section{S}\n\\m0\n\\end{document}\n"}


def test_doubling_macros_fail_as_too_large_before_the_text_is_built():
    bomb = doubling(27)  # under 1 KB that expanded to 400 MB and more
    assert len(bomb["m.tex"]) < 1000
    tracemalloc.start()
    try:
        with pytest.raises(ExpansionTooLarge) as raised:
            project_text(bomb, limit=64 << 20)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert raised.value.reason == "record_too_large"
    assert peak < 4 << 20  # nothing near the 64 MB limit was ever allocated
    with pytest.raises(ExpansionTooLarge):  # RedPajama's passes stop at the pass that would pass the limit
        project_text(bomb, LatexRules.redpajama(), limit=1 << 20)
    # macros that double into nothing are no work either (2**27 empty expansions)
    assert project_text(doubling(27, last="", separator=""), limit=1 << 20) == "\\section{S}\n\n\\end{document}\n"


def test_macro_expansion_is_exact_up_to_the_limit():
    files = doubling(10)
    text = project_text(files)
    assert text == "\\section{S}\n" + " ".join(["xx"] * 1024) + "\n\\end{document}\n"
    assert project_text(files, limit=len(text)) == text
    with pytest.raises(ExpansionTooLarge):
        project_text(files, limit=len(text) - 1)
    with pytest.raises(ExpansionTooLarge):  # RedPajama's passes are bounded the same way
        project_text(files, LatexRules(macros=True), limit=len(text) - 1)


def test_clean_latex_fails_a_paper_beyond_the_record_limit():
    record = {"text": "", "meta": {"_files": doubling(16)}}
    with pytest.raises(LimitExceeded) as raised:
        CleanLatex(max_bytes=64 << 10).apply(record)
    assert raised.value.reason == "record_too_large"
    # the step runs in a child process under the per-document budget: its error comes back pickled
    again = pickle.loads(pickle.dumps(raised.value))
    assert type(again) is ExpansionTooLarge and again.reason == "record_too_large" and str(again) == str(raised.value)
    big = {"text": "", "meta": {"_files": {"m.tex": PREAMBLE + "\\section{S}\n" + "word " * 20_000}}}
    with pytest.raises(LimitExceeded, match="larger than"):  # no macro at all: the text itself
        CleanLatex(max_bytes=64 << 10).apply(big)


def test_every_root_document_is_kept_the_main_one_first_then_by_name():
    files = {
        "a-response.tex": PREAMBLE + "\\section{Reply to referee 1}\n" + "We thank the referee. " * 40 + "\\end{document}",
        "cover.tex": "\\documentclass{letter}\n\\begin{document}\nDear editor, no section here.\n\\end{document}\n",
        "paper.tex": PREAMBLE + "\\input{macros}\n\\input{intro}\n\\input{results}\n\\end{document}\n",
        "intro.tex": "\\section{Introduction}\n" + "intro " * 100,
        "results.tex": "\\section{Results}\nIn \\R.\n" + "result " * 100,
        "macros.tex": "\\newcommand{\\R}{\\mathbb{R}}\n",
        "supplement.tex": PREAMBLE + "\\input{macros}\n\\section{Supplementary proofs}\n\\input{proofs}\n\\end{document}\n",
        "proofs.tex": "proof text\n",
        "paper-a4.tex": "\\def\\papersize{a4}\n\\input{paper}\n",  # a build wrapper, no document of its own
    }
    # the paper has the most TeX with its inputs (the reply has the largest file of its own)
    assert roots(files) == ["paper.tex", "a-response.tex", "cover.tex", "supplement.tex"]
    text = project_text(files)
    places = [text.index(words) for words in ("Introduction", "Results", "Reply to referee 1",
                                                 "Supplementary proofs", "proof text")]
    assert places == sorted(places) and "Dear editor" not in text  # cut before the first section, as RedPajama
    assert "In \\mathbb{R}." in text and text.startswith("\\section{Introduction}")


def test_another_build_of_the_paper_is_left_out_and_a_document_sharing_little_is_kept_whole():
    body = "\\section{Body}\n" + "body text " * 50 + "\n"
    files = {"journal.tex": PREAMBLE + "\\input{content}\n\\end{document}\n",
             "preprint.tex": PREAMBLE + "Preprint disclaimer.\n\\input{content}\n\\end{document}\n",
             "content.tex": body,
             "reply.tex": PREAMBLE + "\\section{Reply}\n" + "we changed it " * 20 + "\n\\input{shared-table}\n",
             "shared-table.tex": "\\section{Table}\ncells\n"}
    assert roots(files)[0] == "preprint.tex"  # the most TeX with its inputs; the journal build reads the same
    text = project_text(files)
    assert text.count("\\section{Body}") == 1 and text.count("\\section{Reply}") == 1
    # the reply was read in no earlier document: kept whole, and so is the table it inputs
    files["paper.tex"] = PREAMBLE + "\\input{content}\n\\input{shared-table}\n"
    assert text.count("\\section{Table}") == 1 and project_text(files).count("\\section{Table}") == 2


def test_documents_that_input_each_other_are_kept_once():
    files = {"a.tex": PREAMBLE + "\\section{A}\nalpha\n\\input{b}\n", "b.tex": PREAMBLE + "\\section{B}\nbeta\n\\input{a}\n"}
    assert roots(files) == ["a.tex", "b.tex"]  # neither is a root: both kept, in name order
    text = project_text(files)
    assert text.count("alpha") == 1 and text.count("beta") == 1


def test_latex_209_documentstyle_is_a_root():
    files = {"paper.tex": "\\documentstyle[12pt]{article}\n\\begin{document}\n\\input{body}\n\\end{document}\n",
             "body.tex": "\\section{Old style}\ntext\n"}
    assert roots(files) == ["paper.tex"]
    assert project_text(files) == "\\section{Old style}\ntext\n\n\n\\end{document}\n"
