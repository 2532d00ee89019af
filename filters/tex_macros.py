"""Argument-less TeX macros: a project's one-line definitions, and their expansion within a size bound.

The table maps each ``\\newcommand{\\name}{value}`` / ``\\def\\name{value}`` (value on one line)
to its value, in the order the names were first defined (a later definition's value wins).
Expansion gives what replacing the macros one after the other in table order gives: each macro
in the text becomes its value, in which only the macros defined after it are expanded in turn.
It is done by tokens in one pass, with the size of the result (at most the limit) and of the
expansions held while building it (at most twice the limit) computed before anything is built:
macros that double at each level fail with :class:`ExpansionTooLarge` instead of filling the memory.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping

from redpajama.core.errors import LimitExceeded
from redpajama.filters.tex_scan import one_line_definitions

# RedPajama's definition expressions as its cleaner wrote them (``.*?\}$`` rescans to the end of the
# line at every occurrence); the heads below and :func:`one_line_definitions` find the same pairs.
RP_NEWCOMMAND = re.compile(r"\\\bnewcommand\b\*?\{(\\[a-zA-Z0-9]+?)\}\{(.*?)\}$", re.MULTILINE)
RP_DEF = re.compile(r"\\def\s*(\\[a-zA-Z0-9]+?)\s*\{(.*?)\}$", re.MULTILINE)
NEWCOMMAND_HEAD = re.compile(r"\\newcommand\*?\{(\\[a-zA-Z0-9]+)\}\{")
DEF_HEAD = re.compile(r"\\def\s*(\\[a-zA-Z0-9]+)\s*\{")
TOKEN = re.compile(r"\\[a-zA-Z0-9]+")  # a macro's name with all its letters and digits
LEADING_WORD = re.compile(r"[a-zA-Z0-9]+")
TEMPLATE_CHECK = re.compile(r"(x)(.)", re.DOTALL)  # any two groups: RedPajama's templates end in \2


class ExpansionTooLarge(LimitExceeded):
    """Expanding the macros would make a text larger than the record limit (``record_too_large``)."""


class MacroTemplateError(ValueError):
    """RedPajama's ``re.sub`` rejected a macro (a non-ASCII value, a bad escape): it dropped the paper."""


def definitions(text: str) -> Iterator[tuple[str, str]]:
    """The one-line ``\\newcommand`` definitions of ``text``, then its ``\\def`` ones."""
    yield from one_line_definitions(text, NEWCOMMAND_HEAD)
    yield from one_line_definitions(text, DEF_HEAD)


def _too_large(limit: int) -> ExpansionTooLarge:
    return ExpansionTooLarge("record_too_large", f"macros expand to more than {limit / (1 << 20):g} MB")


class Expansion:
    """A macro table prepared for expanding texts up to ``limit`` characters."""

    def __init__(self, table: Mapping[str, str], limit: int):
        self.index = {name: number for number, name in enumerate(table)}
        self.names = list(table)
        self.values = list(table.values())
        self.limit = limit
        self.sizes: dict[int, int] = {}  # expanded length of each macro met so far (limit + 1: too large)
        self.expanded: dict[int, str] = {}

    def _uses(self, text: str, after: int) -> Iterator[int]:
        """Macros of ``text`` that are expanded in it: those defined after macro ``after``."""
        for token in TOKEN.finditer(text):
            number = self.index.get(token.group())
            if number is not None and number > after:
                yield number

    def _size(self, text: str, uses: list[int]) -> int:
        """Length of ``text`` with ``uses`` expanded (``limit + 1`` when beyond the limit)."""
        size = len(text)
        for number in uses:
            grown = self.sizes[number]
            if grown > self.limit:
                return self.limit + 1
            size += grown - len(self.names[number])
        return min(size, self.limit + 1)

    def _prepare(self, roots: set[int]) -> None:
        """Sizes of ``roots`` and of every macro their values expand, deepest first (no recursion)."""
        uses: dict[int, list[int]] = {}
        pending = sorted(roots - self.sizes.keys())
        while pending:
            number = pending.pop()
            if number in uses or number in self.sizes:
                continue
            uses[number] = list(self._uses(self.values[number], number))
            pending.extend(used for used in set(uses[number]) if used not in uses and used not in self.sizes)
        for number in sorted(uses, reverse=True):  # a value expands only macros defined after it
            self.sizes[number] = self._size(self.values[number], uses[number])
        held = sum(self.sizes[number] for number in uses)
        if held > 2 * self.limit:  # a doubling chain holds twice its result; a chain of n one-character steps n**2/2
            raise _too_large(self.limit)
        for number in sorted(uses, reverse=True):
            value, last, pieces = self.values[number], 0, []
            for token in TOKEN.finditer(value):
                used = self.index.get(token.group())
                if used is not None and used > number:
                    pieces += (value[last : token.start()], self.expanded[used])
                    last = token.end()
            pieces.append(value[last:])
            self.expanded[number] = "".join(pieces)

    def __call__(self, text: str) -> str:
        counts: dict[int, int] = {}
        for number in self._uses(text, -1):
            counts[number] = counts.get(number, 0) + 1
        self._prepare(set(counts))
        size = len(text)
        for number, count in counts.items():
            size += count * (self.sizes[number] - len(self.names[number]))
        if size > self.limit:
            raise _too_large(self.limit)
        if not counts:
            return text
        table = {self.names[number]: self.expanded[number] for number in counts}
        return TOKEN.sub(lambda token: table.get(token.group(), token.group()), text)


def expand(text: str, table: Mapping[str, str], limit: int) -> str:
    """``text`` with the macros of ``table`` expanded, each value inserted literally."""
    return Expansion(table, limit)(text) if table else text


def expand_redpajama(text: str, table: Mapping[str, str], limit: int) -> str:
    """RedPajama's passes: for each macro in turn, ``re.sub("(" + name + ")([^a-zA-Z0-9])",
    value + r"\\2", text)`` with the name and value ``unicode-escape``d. A template ``re``
    rejects raises :class:`MacroTemplateError` whether or not the macro is used, as there; a
    pass that would make the text longer than ``limit`` raises :class:`ExpansionTooLarge`.

    A pass runs only when the macro's name can be in the text: among its tokens, kept up to date
    from each inserted value, or ending in the letters and digits an inserted value starts with
    (they merge with a name or backslash before it). Unused definitions cost nothing."""
    present, merged = set(TOKEN.findall(text)), set()
    for name, value in table.items():
        try:  # the value's part of the template is the same for every match: expand it once
            inserted = TEMPLATE_CHECK.sub(value + r"\2", "x ")[:-1]
        except re.error as error:
            raise MacroTemplateError(f"{name}: {error}") from error
        plain = name.encode("utf-8").decode("unicode-escape")
        if plain not in present and not any(plain[start:] in merged for start in range(1, len(plain))):
            continue
        text, replaced = _redpajama_pass(text, plain, inserted, limit)
        if replaced:
            present.update(TOKEN.findall(inserted))
            if word := LEADING_WORD.match(inserted):
                merged.add(word.group())
    return text


def _redpajama_pass(text: str, plain: str, inserted: str, limit: int) -> tuple[str, int]:
    """``plain`` followed by a character that is no letter or digit becomes ``inserted``; the
    character was consumed and put back, so a match cannot start on it. Where the name never
    follows itself, a lookahead finds the same matches and ``re`` inserts a literal in C."""
    if plain + plain not in text:
        pattern = re.compile(re.escape(plain) + "(?=[^a-zA-Z0-9])")
        replacement = inserted.replace("\\", "\\\\")
    else:
        pattern = re.compile(re.escape(plain) + "([^a-zA-Z0-9])")
        replacement = lambda match: inserted + match[1]  # noqa: E731
    grows = len(inserted) - len(plain)
    if grows > 0 and len(text) + grows * text.count(plain) > limit:  # at most; then exactly
        if len(text) + grows * pattern.subn("", text)[1] > limit:
            raise _too_large(limit)
    return pattern.subn(replacement, text)
