"""arXiv cleaning: RedPajama's rules, and each of its bugs with our behaviour."""

from redpajama.core.records import Drop
from redpajama.filters.latex import CleanLatex, LatexRules, assemble, expand_macros, macros, project_text, root_file
from redpajama.slices.arxiv import format_arxiv_id, month_start, safe_name, yymm_of

PREAMBLE = "\\documentclass{article}\n\\begin{document}\n"


def test_files_are_assembled_in_input_order_from_the_documentclass_file():
    files = {
        "a.tex": "\\section{Alpha}\nalpha text\n",
        "b.tex": "\\section{Beta}\nbeta text\n",
        "main.tex": PREAMBLE + "\\input{b}\n\\include{a.tex}\n\\end{document}\n",
        "notes.tex": "\\section{Unused}\n",
    }
    assert root_file(files) == "main.tex"
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
    assert assemble(files, "m.tex").count("\\section{S}") == 1
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
    assert root_file(files) == "main.tex"
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
