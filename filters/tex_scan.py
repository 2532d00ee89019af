"""Linear-time scanners for the TeX constructs arXiv cleaning looks for.

Each function gives exactly what its regular expression (quoted in its docstring) gives, but
where the expression would rescan to the end of the line or text at every occurrence of a
command whose argument never closes (``\\newcommand{\\a}{`` or ``\\input{`` a million times),
the scanners find each closing character once: :class:`NextIndex` answers "where is the next
``}`` from here" for positions asked in increasing order in amortised constant time.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterator
from dataclasses import dataclass


class NextIndex:
    """``text.find(needle, position)`` for positions asked mostly in increasing order: the last
    answer is reused while it still lies ahead, so increasing positions cost one pass in all."""

    def __init__(self, text: str, needle: str):
        self.text, self.needle = text, needle
        self.asked, self.found = len(text) + 1, -1

    def at_or_after(self, position: int) -> int:
        """Index of the first occurrence at or after ``position``; -1 if there is none."""
        if not (self.asked <= position and (self.found < 0 or self.found >= position)):
            self.asked, self.found = position, self.text.find(self.needle, position)
        return self.found


# --- sectioning commands ---------------------------------------------------------------------------
SECTION_NAME = re.compile(r"\\(?:chapter|part|section|subsection|subsubsection|paragraph|subparagraph)\b\*?")


def first_section(text: str, start: int = 0) -> int | None:
    """Start of the first ``\\section``-like command at or after ``start``, as
    ``\\\\(?:chapter|...|subparagraph)\\b\\*?(?:\\[[^\\]]*\\])?\\{`` finds it: the name, an optional
    star, an optional ``[...]`` and then ``{``."""
    closing = NextIndex(text, "]")
    position = start
    while match := SECTION_NAME.search(text, position):
        after = match.end()
        if text.startswith("{", after):
            return match.start()
        if text.startswith("[", after):
            close = closing.at_or_after(after + 1)
            if close >= 0 and text.startswith("{", close + 1):
                return match.start()
        position = match.start() + 1
    return None


# RedPajama's header expression: single headers, and \paragraph{..}\subparagraph{..} glued (the missing "|")
RP_HEADER_NAME = re.compile(r"\\(?:(chapter|part|section|subsection|subsubsection)|(paragraph))\b")
RP_SUBPARAGRAPH = re.compile(r"\}\\subparagraph\b")


def rp_first_header(text: str) -> int | None:
    """Where RedPajama's section expression (``^(.*?)(\\\\\\bsection\\b\\*?(?:\\[(.*?)\\])?\\{(.*?)\\}|...)``,
    DOTALL) puts the start of its group 2: the first header followed by an optional star, then
    ``[...]{`` or ``{``, and somewhere later a ``}``; a ``\\paragraph`` counts only when that ``}``
    starts a ``}\\subparagraph`` header of the same kind (its alternation lacked a ``|``)."""
    last_brace = text.rfind("}")

    def closes(after: int, options: NextIndex, closing: int) -> bool:
        """After a header's name: a star, then ``[...]{`` or ``{``, closed by the ``}`` at ``closing``."""
        after += text.startswith("*", after)
        if text.startswith("{", after):
            return closing >= after + 1
        if text.startswith("[", after):
            close = options.at_or_after(after + 1)
            return close >= 0 and closing >= close + 2
        return False

    sub_options = NextIndex(text, "]{")
    subparagraph = max((match.start() for match in RP_SUBPARAGRAPH.finditer(text)
                        if closes(match.end(), sub_options, last_brace)), default=-1)
    options = NextIndex(text, "]{")
    for match in RP_HEADER_NAME.finditer(text):
        if closes(match.end(), options, last_brace if match.group(1) else subparagraph):
            return match.start()
    return None


RP_END_MARKS = ("\\appendix", "\\begin{references}", "\\begin{REFERENCES}", "\\begin{thebibliography}")


def rp_end(text: str, keep_appendix: bool) -> int | None:
    """Where RedPajama's ``(\\\\appendix|\\\\begin\\{references\\}|...|\\\\bibliography\\{.*\\}).*$``
    (DOTALL) starts to match: the first mark, or ``\\bibliography{`` with a ``}`` after it."""
    found = [text.find(mark) for mark in RP_END_MARKS[keep_appendix:]]
    bibliography = text.find("\\bibliography{")
    if bibliography >= 0 and text.rfind("}") >= bibliography + len("\\bibliography{"):
        found.append(bibliography)
    found = [index for index in found if index >= 0]
    return min(found) if found else None


# --- one-line definitions ---------------------------------------------------------------------------
def one_line_definitions(text: str, head: re.Pattern) -> Iterator[tuple[str, str]]:
    """``(name, value)`` of each ``head`` match (ending in ``{``, the name its group 1) whose line
    ends in ``}``: the value is what lies between, as ``head + (.*?)\\}$`` (MULTILINE) finds it.
    Like ``finditer``, a match resumes the search at the end of its line."""
    line_end = NextIndex(text, "\n")
    position = 0
    while match := head.search(text, position):
        end = line_end.at_or_after(match.end())
        end = len(text) if end < 0 else end
        if end > match.end() and text[end - 1] == "}":
            yield match.group(1), text[match.end() : end - 1]
            position = end
        else:
            position = match.start() + 1


# --- \input, \include, \subfile, \import ------------------------------------------------------------
INCLUDE_HEAD = re.compile(
    r"\\(?:(?P<plain>input|include)|(?P<subfile>subfile)|(?P<pair>(?:sub)?(?:import|inputfrom|includefrom)))"
    r"(?![a-zA-Z@])\s*"
)
BARE_NAME = re.compile(r"[^\s{}\\%]+")
SPACE = re.compile(r"\s*")


@dataclass(frozen=True)
class Include:
    """One include command: where it stands in the text, its kind and the file name it gives."""

    start: int
    end: int
    kind: str  # "plain" (\input, \include), "subfile" or "pair" (\import{folder}{name} and kin)
    name: str


def includes(text: str) -> Iterator[Include]:
    """Every include command, left to right, as this expression matches them::

        \\\\(?:(input|include)(?![a-zA-Z@])\\s*(?:\\{([^}]+)\\}|([^\\s{}\\\\%]+))
          |subfile(?![a-zA-Z@])\\s*\\{([^}]+)\\}
          |(?:sub)?(?:import|inputfrom|includefrom)(?![a-zA-Z@])\\s*\\{([^}]*)\\}\\s*\\{([^}]+)\\})
    """
    first_close, second_close = NextIndex(text, "}"), NextIndex(text, "}")
    spaces_after = (-1, -1)  # (a folder's closing brace, where the space after it ends): reused by repeats
    position = 0
    while head := INCLUDE_HEAD.search(text, position):
        at = head.end()
        found: tuple[int, str] | None = None  # (end, name)
        if text.startswith("{", at):
            close = first_close.at_or_after(at + 1)
            if head["pair"]:
                if close >= 0:
                    if spaces_after[0] != close:
                        spaces_after = (close, SPACE.match(text, close + 1).end())
                    second = spaces_after[1]
                    if text.startswith("{", second):
                        name_close = second_close.at_or_after(second + 1)
                        if name_close > second + 1:
                            folder, name = text[at + 1 : close].strip(), text[second + 1 : name_close].strip()
                            found = name_close + 1, posixpath.join(folder, name)
            elif close > at + 1:
                found = close + 1, text[at + 1 : close]
        elif head["plain"] and (bare := BARE_NAME.match(text, at)):
            found = bare.end(), bare.group()
        if found is None:
            position = head.start() + 1
            continue
        kind = "plain" if head["plain"] else "subfile" if head["subfile"] else "pair"
        yield Include(head.start(), found[0], kind, found[1])
        position = found[0]


def document_body(text: str) -> str | None:
    """What lies between ``\\begin{document}`` and ``\\end{document}`` (or the end of the text)."""
    begin = text.find("\\begin{document}")
    if begin < 0:
        return None
    begin += len("\\begin{document}")
    end = text.find("\\end{document}", begin)
    return text[begin : end if end >= 0 else len(text)]
