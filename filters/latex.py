"""arXiv LaTeX to text as RedPajama cleaned it (recipe §5.2), with its bugs fixed.

By default each document of a project (see :mod:`redpajama.filters.tex_project`: the main one,
then a supplement, a reply to referees...) is assembled from its root file by following
``\\input``/``\\include`` in place, not in tar order. Then, on each document: comments go
(whole-line ones, then inline ones without eating the character before ``%``); everything
before the first sectioning command after ``\\begin{document}`` goes; the text is cut at the
first ``\\appendix`` command or bibliography (``--keep-appendix``: at the bibliography only),
so appendix chapters kept in their own files go too. The documents are joined by newlines and
argument-less ``\\newcommand``/``\\def`` macros are expanded literally, within the record size.

:class:`LatexRules` switches each of these back to what RedPajama's code did, one rule at a
time (``--redpajama-compat``): concatenating every ``.tex`` file in archive order, each
cleaned on its own (``archive-order``); its section, appendix and bibliography regexes
(``cut-regexes``); its comment regexes (``comments``); its ``re.sub`` macro templates, whose
errors drop the paper (``macros``). With every rule on, the text is RedPajama's byte for byte.
Every expression runs in time linear in the text (:mod:`redpajama.filters.tex_scan`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from redpajama.core.errors import LimitExceeded
from redpajama.core.records import Drop, Record, Step, StepResult, utf8_len
from redpajama.filters import tex_macros
from redpajama.filters.tex_macros import RP_DEF, RP_NEWCOMMAND, ExpansionTooLarge, MacroTemplateError
from redpajama.filters.tex_project import Project
from redpajama.filters.tex_scan import first_section, rp_end, rp_first_header

__all__ = ["RP_DEF", "RP_NEWCOMMAND", "CleanLatex", "ExpansionTooLarge", "LatexRules", "MacroTemplateError",
           "project_text"]

FULL_LINE_COMMENT = re.compile(r"(?m)^%.*\n?")
INLINE_COMMENT = re.compile(r"(?m)%(?<!\\%).*$")  # a % not after a backslash, to the end of the line
COMMAND_END = r"(?![a-zA-Z@])"  # a control word ends where its letters end: \appendix, not \appendixname
BIBLIOGRAPHY = r"\\begin\{references\}|\\begin\{REFERENCES\}|\\begin\{thebibliography\}|\\bibliography\{"
END_WITH_APPENDIX = re.compile(r"\\appendix" + COMMAND_END + "|" + BIBLIOGRAPHY)
END_AT_BIBLIOGRAPHY = re.compile(BIBLIOGRAPHY)
DEFAULT_LIMIT = 64 << 20  # --max-record-mb's default

RP_INLINE_COMMENT = re.compile(r"[^\\]%.+$", re.MULTILINE)  # RedPajama's: eats the character before %


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


def strip_comments(text: str, rules: LatexRules = LatexRules()) -> str:
    text = FULL_LINE_COMMENT.sub("", text)
    return RP_INLINE_COMMENT.sub("", text) if rules.comments else INLINE_COMMENT.sub("", text)


def macros(files: Mapping[str, str], rules: LatexRules = LatexRules()) -> dict[str, str]:
    """Argument-less ``\\newcommand{\\name}{value}`` and ``\\def\\name{value}`` of all files, in
    archive order (a later definition wins). RedPajama's table reads the files as they are,
    comments included, and stores names and values escaped for ``re.sub``."""
    table: dict[str, str] = {}
    for text in files.values():
        if rules.macros:
            for name, value in tex_macros.definitions(text):
                table[name.encode("unicode-escape").decode("utf-8")] = value.encode("unicode-escape").decode("utf-8")
        else:
            table.update(tex_macros.definitions(strip_comments(text)))
    return table


def expand_macros(text: str, table: Mapping[str, str], rules: LatexRules = LatexRules(),
                  limit: int = DEFAULT_LIMIT) -> str:
    """Replace each macro not followed by a letter or digit (also at the very end of the text).

    The value is inserted literally. RedPajama passed it to ``re.sub`` as a template, which
    raises on non-ASCII values (the paper was dropped), consumed the character after each
    macro (so of two adjacent macros only the first was replaced) and left a macro at the
    very end of the text. Beyond ``limit`` characters: :class:`ExpansionTooLarge`.
    """
    if rules.macros:
        return tex_macros.expand_redpajama(text, table, limit)
    return tex_macros.expand(text, table, limit)


def clean_document(text: str, rules: LatexRules = LatexRules()) -> str:
    """One document (or, with ``archive_order``, one file) cut to its text, comments removed:
    what precedes the first sectioning command and what follows the end marker go.

    The first sectioning command is looked for after ``\\begin{document}`` when there is
    one, so a ``\\section`` inside a preamble macro definition does not start the text.
    """
    if rules.cut_regexes:
        start = rp_first_header(text)
    else:
        body = text.find("\\begin{document}")
        start = first_section(text, body + len("\\begin{document}") if body >= 0 else 0)
    if start is None:
        return ""
    text = strip_comments(text[start:], rules)
    if rules.cut_regexes:
        end = rp_end(text, rules.keep_appendix)
        return text if end is None else text[:end]
    marker = (END_AT_BIBLIOGRAPHY if rules.keep_appendix else END_WITH_APPENDIX).search(text)
    return text if marker is None else text[: marker.start()]


def project_text(files: Mapping[str, str], rules: LatexRules = LatexRules(), limit: int = DEFAULT_LIMIT) -> str:
    """A whole project (file name -> TeX source, in archive order) to the cleaned text: every
    document cut on its own, macros expanded, documents joined by newlines.

    Raises :class:`MacroTemplateError` where RedPajama's macro templates would have failed, and
    :class:`ExpansionTooLarge` where the text would exceed ``limit`` characters.
    """
    table = macros(files, rules)
    if rules.archive_order:  # an empty file still adds its newline
        texts = [clean_document(text, rules) for name, text in files.items() if name.endswith(".tex")]
    else:
        documents = Project(files, lambda text: strip_comments(text, rules)).documents()
        texts = [text for text in (clean_document(document, rules) for document in documents) if text]
    if not rules.macros:
        return expand_macros("\n".join(texts), table, rules, limit)
    expanded, room = [], limit  # RedPajama's passes ran on each file alone (a macro ending one stays)
    for text in texts:
        expanded.append(expand_macros(text, table, rules, room))
        room -= len(expanded[-1])
    return "\n".join(expanded)


class CleanLatex(Step):
    """Project files (in ``meta._files``) -> cleaned document text; empty results are dropped.

    A text beyond ``max_bytes`` (``--max-record-mb``), macros expanded, fails the paper as
    ``record_too_large`` before it is built.
    """

    name = "clean_latex"
    unbounded_cost = True

    def __init__(self, rules: LatexRules = LatexRules(), max_bytes: int = DEFAULT_LIMIT):
        self.rules = rules
        self.max_bytes = max_bytes
        self.description = (
            "clean_latex: "
            + ("every .tex file in archive order, each cleaned alone (RedPajama)" if rules.archive_order
               else "every root document (main first) assembled along \\input/\\include")
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
            text = project_text(files, self.rules, self.max_bytes)
        except MacroTemplateError:
            return Drop("macro_template_error")
        # RedPajama skipped only a text of length 0; "\n" from two empty files stayed.
        if not (text if self.rules.archive_order else text.strip()):
            return Drop("no_text_after_cleaning")
        if utf8_len(text) > self.max_bytes:
            raise LimitExceeded("record_too_large", f"the text is larger than {self.max_bytes / (1 << 20):g} MB")
        record["text"] = text
        return record
