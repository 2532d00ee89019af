"""arXiv LaTeX to text as RedPajama cleaned it (recipe §5.2), with its bugs fixed.

By default a project's files are assembled from the root file (the one with
``\\documentclass``) by following ``\\input``/``\\include`` in place, not in tar order.
Then, on the document: comments go (whole-line ones, then inline ones without eating the
character before ``%``); everything before the first sectioning command after
``\\begin{document}`` goes; the text is cut at the first ``\\appendix`` command or
bibliography (``--keep-appendix``: at the bibliography only), so appendix chapters kept in
their own files go too; argument-less ``\\newcommand``/``\\def`` macros are expanded
literally.

:class:`LatexRules` switches each of these back to what RedPajama's code did, one rule at a
time (``--redpajama-compat``): concatenating every ``.tex`` file in archive order, each
cleaned on its own (``archive-order``); its section, appendix and bibliography regexes
(``cut-regexes``); its comment regexes (``comments``); its ``re.sub`` macro templates, whose
errors drop the paper (``macros``). With every rule on, the text is RedPajama's byte for byte.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Mapping
from dataclasses import dataclass

from redpajama.core.records import Drop, Record, Step, StepResult

# RedPajama's alternation lacked a "|" between \paragraph and \subparagraph; fixed here.
SECTION = re.compile(
    r"\\(?:chapter|part|section|subsection|subsubsection|paragraph|subparagraph)\b\*?(?:\[[^\]]*\])?\{"
)
FULL_LINE_COMMENT = re.compile(r"(?m)^%.*\n?")
INLINE_COMMENT = re.compile(r"(?m)(?<!\\)%.*$")
COMMAND_END = r"(?![a-zA-Z@])"  # a control word ends where its letters end: \appendix, not \appendixname
BIBLIOGRAPHY = r"\\begin\{references\}|\\begin\{REFERENCES\}|\\begin\{thebibliography\}|\\bibliography\{"
END_WITH_APPENDIX = re.compile(r"\\appendix" + COMMAND_END + "|" + BIBLIOGRAPHY)
END_AT_BIBLIOGRAPHY = re.compile(BIBLIOGRAPHY)
NEWCOMMAND = re.compile(r"(?m)\\newcommand\*?\{(\\[a-zA-Z0-9]+?)\}\{(.*?)\}$")
DEF = re.compile(r"(?m)\\def\s*(\\[a-zA-Z0-9]+?)\s*\{(.*?)\}$")
INCLUDE = re.compile(
    r"\\(?:(?P<plain>input|include)" + COMMAND_END + r"\s*(?:\{(?P<braced>[^}]+)\}|(?P<bare>[^\s{}\\%]+))"
    r"|(?P<subfile>subfile)" + COMMAND_END + r"\s*\{(?P<subfile_name>[^}]+)\}"
    r"|(?:sub)?(?:import|inputfrom|includefrom)" + COMMAND_END + r"\s*\{(?P<folder>[^}]*)\}\s*\{(?P<name>[^}]+)\})"
)
DOCUMENT_BODY = re.compile(r"\\begin\{document\}(.*?)(?:\\end\{document\}|\Z)", re.DOTALL)
BEGIN_DOCUMENT = re.compile(r"\\begin\{document\}")
DOCUMENTCLASS = re.compile(r"(?m)^[^%\n]*\\documentclass")
MAX_INCLUDE_DEPTH = 20

# --- RedPajama's own expressions, exactly as its cleaner wrote them (used by the compat rules) ---
_RP_HEADER = r"\\\b{name}\b\*?(?:\[(.*?)\])?\{{(.*?)\}}"
RP_SECTION = re.compile(
    r"^(.*?)("
    + "|".join(_RP_HEADER.format(name=name) for name in ("chapter", "part", "section", "subsection", "subsubsection"))
    + "|" + _RP_HEADER.format(name="paragraph") + _RP_HEADER.format(name="subparagraph")  # the missing "|"
    + r")",
    re.DOTALL,
)
RP_INLINE_COMMENT = re.compile(r"[^\\]%.+$", re.MULTILINE)
_RP_BIBLIOGRAPHY = r"\\begin\{references\}|\\begin\{REFERENCES\}|\\begin\{thebibliography\}|\\bibliography\{.*\}"
RP_END = re.compile(r"(\\appendix|" + _RP_BIBLIOGRAPHY + r").*$", re.DOTALL)
RP_END_AT_BIBLIOGRAPHY = re.compile(r"(" + _RP_BIBLIOGRAPHY + r").*$", re.DOTALL)
RP_NEWCOMMAND = re.compile(r"\\\bnewcommand\b\*?\{(\\[a-zA-Z0-9]+?)\}\{(.*?)\}$", re.MULTILINE)
RP_DEF = re.compile(r"\\def\s*(\\[a-zA-Z0-9]+?)\s*\{(.*?)\}$", re.MULTILINE)


@dataclass(frozen=True)
class LatexRules:
    """How TeX becomes text. All False is this project's cleaning; each True is RedPajama's."""

    archive_order: bool = False  # every .tex file in archive order, each cleaned alone, joined by "\n"
    cut_regexes: bool = False  # RedPajama's section / appendix / bibliography expressions
    comments: bool = False  # RedPajama's comment expressions
    macros: bool = False  # RedPajama's macro table and re.sub templates
    utf8_only: bool = False  # a paper with a .tex file that is not UTF-8 is dropped (read as Latin-1 here)
    keep_appendix: bool = False  # cut at the bibliography only

    @classmethod
    def redpajama(cls) -> LatexRules:
        return cls(archive_order=True, cut_regexes=True, comments=True, macros=True, utf8_only=True)


class MacroTemplateError(ValueError):
    """RedPajama's ``re.sub`` rejected a macro (a non-ASCII value, a bad escape): it dropped the paper."""


def strip_comments(text: str, rules: LatexRules = LatexRules()) -> str:
    text = FULL_LINE_COMMENT.sub("", text)
    return RP_INLINE_COMMENT.sub("", text) if rules.comments else INLINE_COMMENT.sub("", text)


def root_file(files: Mapping[str, str]) -> str | None:
    """The file a project is compiled from: it has ``\\documentclass`` and, of several,
    includes the most text; ties go to the first name."""
    candidates = sorted(name for name, text in files.items() if name.endswith(".tex") and DOCUMENTCLASS.search(text))
    if not candidates:
        return None
    return max(candidates, key=lambda name: (len(assemble(files, name)), [-ord(c) for c in name]))


def _resolve(files: Mapping[str, str], current: str, target: str) -> str | None:
    target = target.strip()
    base = posixpath.dirname(current)
    for name in (target, target + ".tex"):
        for candidate in (posixpath.normpath(posixpath.join(base, name)), posixpath.normpath(name)):
            if candidate in files:
                return candidate
    return None


def _included_name(match: re.Match) -> str:
    if match["plain"]:
        return match["braced"] or match["bare"]
    if match["subfile"]:
        return match["subfile_name"]
    return posixpath.join(match["folder"].strip(), match["name"].strip())


def assemble(files: Mapping[str, str], root: str, rules: LatexRules = LatexRules()) -> str:
    """The root file, comments removed, with every ``\\input``/``\\include`` (and the
    ``subfiles``/``import`` packages' ``\\subfile``, ``\\import``, ``\\subimport``, ...)
    replaced by the file it names (once each; a subfile by its document body)."""
    seen: set[str] = set()

    def expand(name: str, depth: int) -> str:
        seen.add(name)
        text = strip_comments(files[name], rules)

        def replace(match: re.Match) -> str:
            target = _resolve(files, name, _included_name(match))
            if target is None or target in seen or depth >= MAX_INCLUDE_DEPTH:
                return ""
            included = expand(target, depth + 1)
            if match["subfile"]:  # a subfile is a document of its own: its body is what goes in
                body = DOCUMENT_BODY.search(included)
                included = body.group(1) if body else included
            return "\n" + included + "\n"

        return INCLUDE.sub(replace, text)

    return expand(root, 0)


def macros(files: Mapping[str, str], rules: LatexRules = LatexRules()) -> dict[str, str]:
    """Argument-less ``\\newcommand{\\name}{value}`` and ``\\def\\name{value}`` of all files, in
    archive order (a later definition wins). RedPajama's table reads the files as they are,
    comments included, and stores names and values escaped for ``re.sub``."""
    table: dict[str, str] = {}
    for text in files.values():
        if rules.macros:
            for pattern in (RP_NEWCOMMAND, RP_DEF):
                for match in pattern.finditer(text):
                    name, value = (group.encode("unicode-escape").decode("utf-8") for group in match.groups())
                    table[name] = value
        else:
            text = strip_comments(text)
            for pattern in (NEWCOMMAND, DEF):
                for macro, value in pattern.findall(text):
                    table[macro] = value
    return table


def expand_macros(text: str, table: Mapping[str, str], rules: LatexRules = LatexRules()) -> str:
    """Replace each macro not followed by a letter or digit (also at the very end of the text).

    The value is inserted literally. RedPajama passed it to ``re.sub`` as a template, which
    raises on non-ASCII values (the paper was dropped), consumed the character after each
    macro (so of two adjacent macros only the first was replaced) and left a macro at the
    very end of the text.
    """
    for macro, value in table.items():
        if rules.macros:
            try:
                text = re.sub("(" + macro + ")([^a-zA-Z0-9])", value + r"\2", text)
            except re.error as error:
                raise MacroTemplateError(f"{macro}: {error}") from error
        else:
            text = re.sub(re.escape(macro) + r"(?![a-zA-Z0-9])", lambda _m, v=value: v, text)
    return text


def _cut(text: str, rules: LatexRules, *, after_document: bool) -> str:
    """Drop what precedes the first sectioning command and what follows the end marker."""
    if rules.cut_regexes:
        if not RP_SECTION.search(text):
            return ""
        text = RP_SECTION.sub(r"\2", text)
    else:
        body = BEGIN_DOCUMENT.search(text) if after_document else None
        start = SECTION.search(text, body.end() if body else 0)
        if start is None:
            return ""
        text = text[start.start() :]
    text = strip_comments(text, rules)
    if rules.cut_regexes:
        return (RP_END_AT_BIBLIOGRAPHY if rules.keep_appendix else RP_END).sub("", text)
    end = (END_AT_BIBLIOGRAPHY if rules.keep_appendix else END_WITH_APPENDIX).search(text)
    return text if end is None else text[: end.start()]


def clean_document(text: str, table: Mapping[str, str], rules: LatexRules = LatexRules()) -> str:
    """One document (or, with ``archive_order``, one file) to text: cut, comments, end, macros.

    The first sectioning command is looked for after ``\\begin{document}`` when there is
    one, so a ``\\section`` inside a preamble macro definition does not start the text.
    """
    return expand_macros(_cut(text, rules, after_document=True), table, rules)


def project_text(files: Mapping[str, str], rules: LatexRules = LatexRules()) -> str:
    """A whole project (file name -> TeX source, in archive order) to the cleaned text.

    Raises :class:`MacroTemplateError` where RedPajama's macro templates would have failed.
    """
    table = macros(files, rules)
    if rules.archive_order:
        return "\n".join(clean_document(text, table, rules) for name, text in files.items() if name.endswith(".tex"))
    root = root_file(files)
    if root is None:
        tex = sorted(name for name in files if name.endswith(".tex"))
        if len(tex) != 1:
            return ""
        root = tex[0]  # a single file without a preamble (arXiv's gzipped single .tex)
    return clean_document(assemble(files, root, rules), table, rules)


class CleanLatex(Step):
    """Project files (in ``meta._files``) -> cleaned document text; empty results are dropped."""

    name = "clean_latex"
    unbounded_cost = True

    def __init__(self, rules: LatexRules = LatexRules()):
        self.rules = rules
        self.description = (
            "clean_latex: "
            + ("every .tex file in archive order, each cleaned alone (RedPajama)" if rules.archive_order
               else "assemble from the \\documentclass file along \\input/\\include")
            + ", drop the preamble, comments and the bibliography"
            + ("" if rules.keep_appendix else " and appendices (as RedPajama)")
            + ", expand argument-less macros"
        )

    def apply(self, record: Record) -> StepResult:
        meta = record["meta"]
        skip = meta.pop("_skip", None)
        files = meta.pop("_files", None) or {}
        latin1 = meta.pop("_latin1", None)
        if skip:
            return Drop(skip)
        if latin1 and self.rules.utf8_only:
            return Drop("not_utf8")
        try:
            text = project_text(files, self.rules)
        except MacroTemplateError:
            return Drop("macro_template_error")
        # RedPajama skipped only a text of length 0; "\n" from two empty files stayed.
        if not (text if self.rules.archive_order else text.strip()):
            return Drop("no_text_after_cleaning")
        record["text"] = text
        return record
