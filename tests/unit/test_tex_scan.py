"""The linear-time TeX scanners give what the regular expressions they replace gave, on any text,
and papers built to make those expressions quadratic finish far inside the per-document budget."""

import posixpath
import random
import re

import pytest
from redpajama.core.isolation import Budget, IsolatedSteps
from redpajama.core.records import Drop
from redpajama.filters import tex_macros, tex_scan
from redpajama.filters.latex import CleanLatex, LatexRules

# The expressions the scanners replace (each rescans to the end of the line or text at every
# occurrence of a command whose argument never closes): the reference for what they must give.
SECTION = re.compile(r"\\(?:chapter|part|section|subsection|subsubsection|paragraph|subparagraph)\b\*?(?:\[[^\]]*\])?\{")
NEWCOMMAND = re.compile(r"(?m)\\newcommand\*?\{(\\[a-zA-Z0-9]+?)\}\{(.*?)\}$")
DEF = re.compile(r"(?m)\\def\s*(\\[a-zA-Z0-9]+?)\s*\{(.*?)\}$")
INCLUDE = re.compile(
    r"\\(?:(?P<plain>input|include)(?![a-zA-Z@])\s*(?:\{(?P<braced>[^}]+)\}|(?P<bare>[^\s{}\\%]+))"
    r"|(?P<subfile>subfile)(?![a-zA-Z@])\s*\{(?P<subfile_name>[^}]+)\}"
    r"|(?:sub)?(?:import|inputfrom|includefrom)(?![a-zA-Z@])\s*\{(?P<folder>[^}]*)\}\s*\{(?P<name>[^}]+)\})"
)
_RP_HEADER = r"\\\b{name}\b\*?(?:\[(.*?)\])?\{{(.*?)\}}"
RP_SECTION = re.compile(
    r"^(.*?)("
    + "|".join(_RP_HEADER.format(name=name) for name in ("chapter", "part", "section", "subsection", "subsubsection"))
    + "|" + _RP_HEADER.format(name="paragraph") + _RP_HEADER.format(name="subparagraph") + r")",
    re.DOTALL,
)
_RP_BIBLIOGRAPHY = r"\\begin\{references\}|\\begin\{REFERENCES\}|\\begin\{thebibliography\}|\\bibliography\{.*\}"
RP_END = re.compile(r"(\\appendix|" + _RP_BIBLIOGRAPHY + r").*$", re.DOTALL)
RP_END_AT_BIBLIOGRAPHY = re.compile(r"(" + _RP_BIBLIOGRAPHY + r").*$", re.DOTALL)

PIECES = ["\\section", "\\subsection", "\\paragraph", "\\subparagraph", "\\sections", "\\input", "\\include",
          "\\includegraphics", "\\subfile", "\\import", "\\subimport", "\\inputfrom", "\\newcommand", "\\def",
          "\\appendix", "\\bibliography", "\\begin{thebibliography}", "\\a", "\\b1", "*", "[", "]", "{", "}", "]{",
          "}{", "\n", " ", "  ", "%", "x", "dir/", "ab", "\\", "}\\subparagraph", "\\newcommand{\\a}{",
          "\\newcommand*{\\b1}{", "\\def \\a {", "\\paragraph{", "\\paragraph*[", "}\\subparagraph{", "\\section{",
          "\\input{", "\\import{", "}\n", "\\section*["]


def random_texts(count: int, seed: int = 7):
    rng = random.Random(seed)
    for _ in range(count):
        yield "".join(rng.choice(PIECES) for _ in range(rng.randint(0, 40)))


def test_scanners_match_the_expressions_they_replace():
    for text in random_texts(6000):
        for start in (0, len(text) // 2):
            match = SECTION.search(text, start)
            assert tex_scan.first_section(text, start) == (match.start() if match else None), text
        expected = [(m.start(), m.end(), m["braced"] or m["bare"] or m["subfile_name"]
                     or posixpath.join(m["folder"].strip(), m["name"].strip())) for m in INCLUDE.finditer(text)]
        assert [(i.start, i.end, i.name) for i in tex_scan.includes(text)] == expected, text
        for head, pattern in ((tex_macros.NEWCOMMAND_HEAD, NEWCOMMAND), (tex_macros.DEF_HEAD, DEF)):
            assert list(tex_scan.one_line_definitions(text, head)) == pattern.findall(text), text
        match = RP_SECTION.search(text)
        assert tex_scan.rp_first_header(text) == (match.start(2) if match else None), text
        for keep_appendix, pattern in ((False, RP_END), (True, RP_END_AT_BIBLIOGRAPHY)):
            match = pattern.search(text)
            assert tex_scan.rp_end(text, keep_appendix) == (match.start() if match else None), text


def test_include_names_join_folder_and_file():
    names = [i.name for i in tex_scan.includes(r"\import{parts/}{two}\subimport{ a }{ b.tex }\inputfrom{}{c}\input x")]
    assert names == ["parts/two", "a/b.tex", "c", "x"]



def passes_in_table_order(text: str, table: dict[str, str]) -> str:
    """How macros were expanded before: one ``re.sub`` pass over the whole text per macro."""
    for macro, value in table.items():
        text = re.sub(re.escape(macro) + r"(?![a-zA-Z0-9])", lambda _match, value=value: value, text)
    return text


def test_expansion_by_tokens_equals_one_pass_per_macro_in_table_order():
    """The same result wherever a value cannot merge with the text beside it (it starts with no
    letter or digit), at any depth, in linear time."""
    rng = random.Random(11)
    names = ["\\a", "\\b", "\\ab", "\\a1", "\\c"]
    pieces = names + [" ", "{x}", "\\\\", "\\", "1", "y", "\\d"]
    for _ in range(4000):
        table = {}
        for name in rng.sample(names, rng.randint(1, len(names))):
            value = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 4)))
            table[name] = value if not value[:1].isalnum() else " " + value
        text = "".join(rng.choice(pieces + names) for _ in range(rng.randint(0, 12)))
        assert tex_macros.expand(text, table, 1 << 20) == passes_in_table_order(text, table), (text, table)


def redpajama_passes(text: str, table: dict[str, str]) -> str:
    """RedPajama's own loop: every macro's ``re.sub`` over the whole text, in table order."""
    for macro, value in table.items():
        text = re.sub("(" + macro + ")([^a-zA-Z0-9])", value + r"\2", text)
    return text


def test_redpajama_passes_skip_only_macros_that_cannot_match():
    rng = random.Random(5)
    names = ["\\a", "\\b", "\\ab", "\\a1", "\\e"]
    pieces = names + [" ", "{x}", "\\\\", "\\", "1", "b", "e.g.", "\n", "é"]
    for _ in range(4000):
        table = {}
        for name in rng.sample(names, rng.randint(1, len(names))):
            value = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 4)))
            table[name.encode("unicode-escape").decode()] = value.encode("unicode-escape").decode()
        text = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 14)))
        try:
            expected = redpajama_passes(text, table)
        except re.error:
            with pytest.raises(tex_macros.MacroTemplateError):
                tex_macros.expand_redpajama(text, table, 1 << 20)
            continue
        assert tex_macros.expand_redpajama(text, table, 1 << 20) == expected, (text, table)

MB = 1 << 20
PREAMBLE = "\\documentclass{article}\n\\begin{document}\n"
HOSTILE = {  # (files, rules): each took from tens of seconds to minutes with the expressions above
    "unclosed newcommand": ({"m.tex": PREAMBLE + "\\section{S}\n" + "\\newcommand{\\a}{" * (320 << 10 >> 4)}, "default"),
    "unclosed def": ({"m.tex": PREAMBLE + "\\section{S}\n" + "\\def\\a{" * (320 << 10 >> 3)}, "default"),
    "unclosed input": ({"m.tex": PREAMBLE + "\\section{S}\n" + "\\input{" * (320 << 10 >> 3)}, "default"),
    "unclosed import": ({"m.tex": PREAMBLE + "\\section{S}\n" + "\\import{" * (320 << 10 >> 3)}, "default"),
    "unclosed section option": ({"m.tex": PREAMBLE + "\\section[" * (MB >> 3)}, "default"),
    "unclosed section option, RedPajama's rules": ({"m.tex": PREAMBLE + "\\section[" * (320 << 10 >> 4)}, "redpajama"),
    "unclosed bibliography, RedPajama's rules": ({"m.tex": "\\section{S}" + "\\bibliography{" * (MB >> 4)}, "redpajama"),
    "unclosed newcommand, RedPajama's rules": ({"m.tex": "\\section{S}\n" + "\\newcommand{\\a}{" * (320 << 10 >> 4)},
                                               "redpajama"),
    "3,000 documents that input each other": (
        {f"f{i}.tex": PREAMBLE + f"\\section{{Part {i}}}\n" + "word " * 100 + "\n\\input{hub}\n" for i in range(3000)}
        | {"hub.tex": "".join(f"\\input{{f{i}}}\n" for i in range(3000))}, "default"),
    "3,000 builds of one paper": (
        {f"build{i}.tex": PREAMBLE + f"build {i}\n\\input{{hub}}\n" for i in range(3000)}
        | {"hub.tex": "".join(f"\\input{{part{i}}}\n" for i in range(3000))}
        | {f"part{i}.tex": f"\\section{{Part {i}}}\n" + "word " * 100 for i in range(3000)}, "default"),
}


@pytest.fixture(scope="module")
def budgeted():
    """CleanLatex steps under the per-document budget, 20 s of CPU each paper: the bound that
    would stop these papers in a run, which only quadratic rescanning comes near."""
    steps = [CleanLatex(LatexRules()), CleanLatex(LatexRules.redpajama())]
    isolated = IsolatedSteps(steps, Budget(seconds=20, memory_mb=1024))
    yield lambda rules, files: isolated.apply(int(rules == "redpajama"), {"text": "", "meta": {"_files": files}})
    isolated.close()


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_papers_finish_far_inside_the_per_document_budget(case, budgeted):
    files, rules = HOSTILE[case]
    result = budgeted(rules, files)  # BudgetExceeded ("timeout") where it took 20 s of CPU
    assert isinstance(result, dict) or result == Drop("no_text_after_cleaning")
