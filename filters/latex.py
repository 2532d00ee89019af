"""arXiv LaTeX to text as RedPajama cleaned it (recipe §5.2), with its bugs fixed.

A project's files are assembled from the root file (the one with ``\\documentclass``) by
following ``\\input``/``\\include`` in place, not in tar order. Then, on the document:
everything before the first sectioning command goes; comments are removed (whole-line,
then inline ones without eating the character before ``%``); the text is cut at the
bibliography (and, by default as RedPajama did, at ``\\appendix``); argument-less
``\\newcommand``/``\\def`` macros are expanded, non-ASCII values included.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Mapping

from redpajama.filters.base import Drop, Record, Step, StepResult

# RedPajama's alternation lacked a "|" between \paragraph and \subparagraph; fixed here.
SECTION = re.compile(
    r"\\(?:chapter|part|section|subsection|subsubsection|paragraph|subparagraph)\b\*?(?:\[[^\]]*\])?\{"
)
FULL_LINE_COMMENT = re.compile(r"(?m)^%.*\n?")
INLINE_COMMENT = re.compile(r"(?m)(?<!\\)%.*$")
BIBLIOGRAPHY = r"\\begin\{references\}|\\begin\{REFERENCES\}|\\begin\{thebibliography\}|\\bibliography\{"
END_WITH_APPENDIX = re.compile(r"\\appendix|" + BIBLIOGRAPHY)
END_AT_BIBLIOGRAPHY = re.compile(BIBLIOGRAPHY)
NEWCOMMAND = re.compile(r"(?m)\\newcommand\*?\{(\\[a-zA-Z0-9]+?)\}\{(.*?)\}$")
DEF = re.compile(r"(?m)\\def\s*(\\[a-zA-Z0-9]+?)\s*\{(.*?)\}$")
INCLUDE = re.compile(r"\\(input|include)\s*(?:\{([^}]+)\}|([^\s{}\\%]+))")
BEGIN_DOCUMENT = re.compile(r"\\begin\{document\}")
DOCUMENTCLASS = re.compile(r"(?m)^[^%\n]*\\documentclass")
MAX_INCLUDE_DEPTH = 20


def strip_comments(text: str) -> str:
    return INLINE_COMMENT.sub("", FULL_LINE_COMMENT.sub("", text))


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


def assemble(files: Mapping[str, str], root: str) -> str:
    """The root file with every ``\\input``/``\\include`` replaced by the file it names (once each)."""
    seen: set[str] = set()

    def expand(name: str, depth: int) -> str:
        seen.add(name)
        text = strip_comments(files[name])

        def replace(match: re.Match) -> str:
            target = _resolve(files, name, match.group(2) or match.group(3))
            if target is None or target in seen or depth >= MAX_INCLUDE_DEPTH:
                return ""
            return "\n" + expand(target, depth + 1) + "\n"

        return INCLUDE.sub(replace, text)

    return expand(root, 0)


def macros(files: Mapping[str, str]) -> dict[str, str]:
    """Argument-less ``\\newcommand{\\name}{value}`` and ``\\def\\name{value}`` of all files."""
    table: dict[str, str] = {}
    for name in sorted(files):
        text = strip_comments(files[name])
        for pattern in (NEWCOMMAND, DEF):
            for macro, value in pattern.findall(text):
                table[macro] = value
    return table


def expand_macros(text: str, table: Mapping[str, str]) -> str:
    """Replace each macro not followed by a letter or digit (also at the very end of the text).

    The value is inserted literally: RedPajama passed it through ``re.sub`` as a
    template, which crashed on non-ASCII values and dropped the paper.
    """
    for macro, value in table.items():
        text = re.sub(re.escape(macro) + r"(?![a-zA-Z0-9])", lambda _m, v=value: v, text)
    return text


def clean_document(text: str, table: Mapping[str, str], keep_appendix: bool = False) -> str:
    """RedPajama's per-file cleaning, applied to the assembled document.

    The first sectioning command is looked for after ``\\begin{document}`` when there is
    one, so a ``\\section`` inside a preamble macro definition does not start the text.
    """
    body = BEGIN_DOCUMENT.search(text)
    start = SECTION.search(text, body.end() if body else 0)
    if start is None:
        return ""
    text = strip_comments(text[start.start() :])
    end = (END_AT_BIBLIOGRAPHY if keep_appendix else END_WITH_APPENDIX).search(text)
    if end is not None:
        text = text[: end.start()]
    return expand_macros(text, table).strip()


def project_text(files: Mapping[str, str], keep_appendix: bool = False) -> str:
    """A whole project (file name -> TeX source) to the cleaned text of its document."""
    root = root_file(files)
    if root is None:
        tex = sorted(name for name in files if name.endswith(".tex"))
        if len(tex) != 1:
            return ""
        root = tex[0]  # a single file without a preamble (arXiv's gzipped single .tex)
    return clean_document(assemble(files, root), macros(files), keep_appendix)


class CleanLatex(Step):
    """Project files (in ``meta._files``) -> cleaned document text; empty results are dropped."""

    name = "clean_latex"

    def __init__(self, keep_appendix: bool = False):
        self.keep_appendix = keep_appendix
        self.description = (
            "clean_latex: assemble from the \\documentclass file along \\input/\\include, drop the preamble, "
            "comments and the bibliography" + ("" if keep_appendix else " and appendices (as RedPajama)")
            + ", expand argument-less macros"
        )

    def apply(self, record: Record) -> StepResult:
        meta = record["meta"]
        skip = meta.pop("_skip", None)
        files = meta.pop("_files", None) or {}
        if skip:
            return Drop(skip)
        text = project_text(files, self.keep_appendix)
        if not text:
            return Drop("no_text_after_cleaning")
        record["text"] = text
        return record
