"""arXiv cleaning: RedPajama's rules, and each of its bugs with our behaviour."""

from redpajama.filters.base import Drop
from redpajama.filters.latex import CleanLatex, assemble, expand_macros, macros, project_text, root_file
from redpajama.slices.arxiv import format_arxiv_id, safe_name, yymm_of

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
    assert project_text({"p.tex": PREAMBLE + "\\paragraph{Only}\nbody\n"}) == "\\paragraph{Only}\nbody"


def test_no_sectioning_command_means_no_text():
    record = {"text": "", "meta": {"_files": {"x.tex": PREAMBLE + "just text\n"}}}
    assert CleanLatex().apply(record) == Drop("no_text_after_cleaning")


def test_comments_removed_without_eating_the_previous_character():
    files = {"m.tex": PREAMBLE + "\\section{S}\nabc% note\n% whole line\n50\\% of it\ntrailing%\n"}
    # RedPajama's [^\\]%.+$ gave "ab" and left "trailing%"
    assert project_text(files) == "\\section{S}\nabc\n50\\% of it\ntrailing"


def test_cut_at_appendix_by_default_and_at_bibliography_always():
    body = "\\section{Intro}\ntext\n\\appendix\n\\section{Proofs}\nproof\n\\bibliography{refs}\nbib\n"
    files = {"m.tex": PREAMBLE + body}
    assert project_text(files) == "\\section{Intro}\ntext"
    assert project_text(files, keep_appendix=True) == "\\section{Intro}\ntext\n\\appendix\n\\section{Proofs}\nproof"


def test_macros_expand_with_non_ascii_values_and_at_the_end_of_the_text():
    body = "\\section{S}\nIn \\R, \\eps>0 and \\Rx stays \\R"
    files = {"m.tex": PREAMBLE + "\\newcommand{\\R}{ℝ}\n\\def\\eps{\\varepsilon}\n" + body}
    table = macros(files)
    assert table == {"\\R": "ℝ", "\\eps": "\\varepsilon"}
    # RedPajama: re.sub with an escaped non-ASCII template raised and dropped the paper,
    # and a macro at the very end of the text was left
    assert project_text(files) == "\\section{S}\nIn ℝ, \\varepsilon>0 and \\Rx stays ℝ"
    assert expand_macros("\\a\\a1", {"\\a": "\\1"}) == "\\1\\a1"  # values are literal, not templates


def test_section_in_a_preamble_macro_does_not_start_the_text():
    files = {"m.tex": "\\documentclass{book}\n\\newcommand{\\notes}{\\section*{Notes}}\n\\begin{document}\n"
                      "\\chapter{One}\nbody\n\\end{document}"}
    assert project_text(files).startswith("\\chapter{One}")


def test_include_cycles_and_missing_files_are_harmless():
    files = {"m.tex": PREAMBLE + "\\section{S}\n\\input{m}\\input{missing}\\input x\n", "x.tex": "ex\n"}
    assert assemble(files, "m.tex").count("\\section{S}") == 1
    assert project_text(files) == "\\section{S}\n\nex"


def test_ids_names_and_dates():
    assert format_arxiv_id("math0601001") == "math/0601001" and format_arxiv_id("0704.0001") == "0704.0001"
    assert yymm_of("2303.12345", "2303") == "2303" and yymm_of("math/0601001") == "0601"
    assert safe_name("../etc/passwd") is None and safe_name("/abs.gz") is None and safe_name("2303/x.gz") == "2303/x.gz"
