"""Wikipedia: what each deviation may change in a page's text.

- ``wiki-empty-sections``: RedPajama's text is ours with more blank lines (an empty section
  adds ``"\\n\\n"``, at the start too); nothing else.
- ``wiki-namespace-names``: RedPajama's text is ours plus the text of the links whose prefix
  is one of the dump's own media names missing from the builder's table, and plus the prefix
  of such category links; found in the page's wikitext with mwparserfromhell, as the builder
  found them. Spacing may differ where a link was taken out, never to the point of gluing words.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import mwparserfromhell
from redpajama import manifests
from redpajama.filters.wikitext import DEFAULT_CATEGORY_PREFIXES, DEFAULT_MEDIA_PREFIXES
from redpajama.slices.base import WorkUnit
from redpajama.slices.wikipedia import Wikipedia

from tests.fidelity.harness import Doc, Situation

BLANK_RUNS = re.compile(r"\n{3,}")


def page_key(doc: dict) -> tuple[str, str]:
    """Titles repeat across languages: a page is its wiki's language and its title."""
    return doc["meta"]["language"], doc["meta"]["title"]


@dataclass
class Page:
    wikitext: str
    media_names: list[str]
    category_names: list[str]


def read_pages(inputs: list[str]) -> dict[tuple[str, str], Page]:
    """(language, title) -> the page's wikitext and its dump's namespace names, by the slice's reader."""
    reader, pages = Wikipedia(), {}
    for source in inputs:
        for unit in reader.plan(source):
            if not isinstance(unit, WorkUnit):
                continue
            for item in reader.read(unit):
                if isinstance(item, tuple):
                    meta = item[1]["meta"]
                    pages[(meta["language"], meta["title"])] = Page(item[1]["text"], meta["_media_names"],
                                                                   meta["_category_names"])
    return pages


def check_empty_sections(before: Doc, after: Doc, situation: Situation) -> str | None:
    """RedPajama's text is ours with extra blank lines: runs of three or more newlines, and
    newlines at the start or end (an empty first or last section)."""
    if after is None:
        return "keeping empty sections dropped a page"
    theirs = BLANK_RUNS.sub("\n\n", after["text"].strip("\n"))
    if before is None:
        return None if not theirs.strip() else "a page with text only when empty sections are kept"
    if before["text"] != theirs:
        return "the texts differ by more than blank lines"
    return situation.same_meta(before, after)


def _prefixes(table: list[str], names: list[str]) -> tuple[re.Pattern, list[str]]:
    """The builder's table as one expression, and the dump's names it does not match."""
    pattern = re.compile(f"^(?:{'|'.join(table)}):", re.IGNORECASE)
    extra = [name for name in names for form in {name, name.replace(" ", "_")} if not pattern.match(form + ":")]
    return pattern, extra


def _spacing(text: str) -> str:
    """Spaces and blank lines evened out, never removed: a run of spaces is one space, a line's
    ends are trimmed, blank-line runs are one blank line."""
    lines = [re.sub(r"[ \t]+", " ", line).strip() for line in text.split("\n")]
    return BLANK_RUNS.sub("\n\n", "\n".join(lines)).strip()


def check_namespace_names(before: Doc, after: Doc, situation: Situation) -> str | None:
    page = situation.context.get(situation.key)
    if before is None or after is None or page is None:
        return "namespace names dropped or added a page"
    language = situation.key[0]
    table = manifests.load("wikipedia_namespaces")
    media, extra_media = _prefixes([*DEFAULT_MEDIA_PREFIXES, *table["media"].get(language, [])], page.media_names)
    category, extra_category = _prefixes([*DEFAULT_CATEGORY_PREFIXES, *table["category"].get(language, [])],
                                         page.category_names)
    theirs = after["text"]
    for link in mwparserfromhell.parse(page.wikitext).ifilter_wikilinks(recursive=True):
        title = str(link.title).strip()
        if media.match(title) or category.match(title):
            continue
        prefix = title.split(":", 1)[0]
        if any(prefix.lower() == name.lower() for name in extra_media):
            removed = link.__strip__(normalize=True, collapse=True)
        elif any(prefix.lower() == name.lower() for name in extra_category):
            removed = prefix + ":"
        else:
            continue
        if removed and removed in theirs:
            theirs = theirs.replace(removed, "", 1)
    if _spacing(theirs) != _spacing(before["text"]):
        return "the texts differ by more than links with the dump's own namespace names"
    return situation.same_meta(before, after)
