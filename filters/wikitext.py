"""Wikitext to plain text, as the Wikipedia slice of RedPajama cleaned it.

RedPajama used the Hugging Face ``wikipedia`` builder, which works section by section
with mwparserfromhell: File/Image/Media links (and their per-language aliases) are
removed, Category links keep their text without the prefix, ``<ref>`` and ``<table>``
tags are removed, ``strip_code`` drops templates and keeps link text, and magic words
such as ``__NOTOC__`` go. Sections are joined by a blank line.

One deliberate difference: sections that clean to nothing are skipped instead of
leaving runs of blank lines (the builder joined empty strings too).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import mwparserfromhell
from mwparserfromhell.parser import ParserError

MAGIC_WORD = re.compile(r"__[A-Z]*__")
REMOVED_TAGS = frozenset({"ref", "table"})
DEFAULT_MEDIA_PREFIXES = ("File", "Image", "Media")
DEFAULT_CATEGORY_PREFIXES = ("Category",)


class WikitextError(ValueError):
    """mwparserfromhell could not parse a page."""


def _prefix_pattern(prefixes: Iterable[str]) -> re.Pattern[str]:
    # Longest first so that an alias never shadows a longer one sharing its start.
    unique = sorted({p for p in prefixes if p}, key=lambda p: (-len(p), p))
    alternatives = "|".join(re.escape(p).replace(r"\ ", "[ _]") for p in unique)
    return re.compile(f"^(?:{alternatives}):", re.IGNORECASE)


class WikitextCleaner:
    """Cleans the wikitext of one wiki (one language's namespace names and aliases)."""

    def __init__(self, media_prefixes: Iterable[str] = (), category_prefixes: Iterable[str] = ()):
        self._media = _prefix_pattern([*DEFAULT_MEDIA_PREFIXES, *media_prefixes])
        self._category = _prefix_pattern([*DEFAULT_CATEGORY_PREFIXES, *category_prefixes])

    def clean(self, wikitext: str) -> str:
        """Plain text of ``wikitext``; raises :class:`WikitextError` if it cannot be parsed."""
        try:
            code = mwparserfromhell.parse(wikitext)
        except ParserError as error:
            raise WikitextError(str(error)) from error
        sections = []
        for section in code.get_sections(flat=True, include_lead=True, include_headings=True):
            self._clean_section(section)
            text = MAGIC_WORD.sub("", section.strip_code().strip())
            if text:
                sections.append(text)
        return "\n\n".join(sections)

    def _clean_section(self, section) -> None:
        for link in section.ifilter_wikilinks(recursive=True):
            title = str(link.title).strip()
            if self._media.match(title):
                _remove(section, link)
            elif self._category.match(title):
                # Keep the category's text in place, without its namespace prefix.
                link.text = self._category.sub("", link.__strip__() or title)
        for tag in section.ifilter_tags(recursive=True):
            if str(tag.tag).strip().lower() in REMOVED_TAGS:
                _remove(section, tag)


def _remove(section, node) -> None:
    try:
        section.remove(node)
    except ValueError:
        # The node was inside one already removed (a link in a removed ref, say).
        pass
