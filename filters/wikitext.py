"""Wikitext to plain text, as the Wikipedia slice of RedPajama cleaned it.

RedPajama used the Hugging Face ``wikipedia`` builder, which works section by section
with mwparserfromhell: links whose title starts with a media prefix (``File``, ``Image``,
``Media`` and the wiki's own names and aliases) are removed, Category links keep their
text without the prefix, ``<ref>`` and ``<table>`` tags are removed, ``strip_code`` drops
templates and keeps link text, and magic words such as ``__NOTOC__`` go. Sections are
joined by a blank line. The prefixes are matched as the builder matched them: its alias
table joined into one case-insensitive expression; the names in the dump's own siteinfo
are added (escaped) so that wikis newer than that table work too.

One deliberate difference: sections that clean to nothing are skipped instead of
leaving runs of blank lines (``keep_empty_sections`` restores the builder's output).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import mwparserfromhell
from mwparserfromhell.parser import ParserError

MAGIC_WORD = re.compile(r"__[A-Z]*__")
REMOVED_TAGS = frozenset({"ref", "table"})  # compared as written: the builder did not fold case
DEFAULT_MEDIA_PREFIXES = ("File", "Image", "Media")
DEFAULT_CATEGORY_PREFIXES = ("Category",)


class WikitextError(ValueError):
    """mwparserfromhell could not parse a page."""


def prefix_pattern(table: Iterable[str], names: Iterable[str] = ()) -> re.Pattern[str]:
    """``^(?:a|b|...):`` as the builder built it from its alias ``table`` (unescaped, in order),
    followed by the dump's own namespace ``names`` (escaped, with spaces and underscores)."""
    extra = []
    for name in names:
        for form in (name, name.replace(" ", "_")):
            if form and re.escape(form) not in extra:
                extra.append(re.escape(form))
    return re.compile(f"^(?:{'|'.join([*table, *extra])}):", re.IGNORECASE | re.UNICODE)


class WikitextCleaner:
    """Cleans the wikitext of one wiki: its media and category prefixes are given."""

    def __init__(
        self,
        media: Iterable[str] = DEFAULT_MEDIA_PREFIXES,
        category: Iterable[str] = DEFAULT_CATEGORY_PREFIXES,
        media_names: Iterable[str] = (),
        category_names: Iterable[str] = (),
        keep_empty_sections: bool = False,
    ):
        self._media = prefix_pattern(media, media_names)
        self._category = prefix_pattern(category, category_names)
        self.keep_empty_sections = keep_empty_sections

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
            if text or self.keep_empty_sections:
                sections.append(text)
        return "\n\n".join(sections)

    def _clean_section(self, section) -> None:
        for link in section.ifilter_wikilinks(recursive=True):
            if self._media.match(str(link.title)):
                _remove(section, link)
            elif self._category.match(str(link.title)):
                # Keep the category's text in place, without its namespace prefix.
                link.text = self._category.sub("", link.__strip__())
        for tag in section.ifilter_tags(recursive=True):
            if str(tag.tag) in REMOVED_TAGS:
                _remove(section, tag)


def _remove(section, node) -> None:
    try:
        section.remove(node)
    except ValueError:
        # The node was inside one already removed (a link in a removed ref, say).
        pass
