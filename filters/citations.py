"""Web pages cited by Wikipedia: the URLs inside an article's ``<ref>...</ref>`` tags.

RedPajama's ``extract_urls.py`` scanned the dump's XML line by line and took, per line, the
first greedy ``&lt;ref&gt;(.*)&lt;/ref&gt;`` match: a ref spanning lines was missed, and on
a line with several refs the greedy match ran from the first ``<ref>`` to the last
``</ref>``, text between refs included. Here every ``<ref>`` element of the page's wikitext
is read on its own (named ones too; ``<ref name=x/>`` reuses and holds nothing), every URL in
it is taken, and URLs are normalised so that one page cited twice counts once.
"""

from __future__ import annotations

import html
import re
from urllib.parse import urlsplit, urlunsplit

from redpajama.filters.tex_scan import NextIndex

REF = re.compile(r"<ref\b[^>]*?(?<!/)>(.*?)</ref\s*>", re.IGNORECASE | re.DOTALL)  # what refs() finds
REF_OPEN = re.compile(r"<ref\b", re.IGNORECASE)
REF_CLOSE = re.compile(r"</ref\s*>", re.IGNORECASE)
SCHEMES = ("http", "https", "ftp")
# A URL runs until whitespace or a wikitext delimiter: ] and | close links and template
# parameters, {{ }} templates, <> tags, quotes attribute values.
URL = re.compile(r"(?:https?|ftp)://[^\s\[\]<>\"{}|]+", re.IGNORECASE)
TRAILING = ".,;:!?'\u2019\u201d"  # punctuation that ends a sentence, not a URL (as MediaWiki trims it)
DEFAULT_PORTS = {"http": "80", "https": "443", "ftp": "21"}


def refs(wikitext: str) -> list[str]:
    """The content of every ``<ref>...</ref>`` element, in order: what ``REF.finditer`` gives, in
    time linear in the page. The expression rescans to the end of the page for every ``<ref``
    that is never closed (a page of them took minutes, and this runs as the dump is read);
    here the next ``>`` and the next closing tag are each found once for a run of openings."""
    found = []
    tag_ends = NextIndex(wikitext, ">")
    closing: re.Match | None = None
    asked = len(wikitext) + 1  # where ``closing`` was looked for from
    position = 0
    while opening := REF_OPEN.search(wikitext, position):
        tag_end = tag_ends.at_or_after(opening.end())
        if tag_end < 0:
            break  # no opening tag ends after here
        if wikitext[tag_end - 1] == "/":  # <ref name=x/>: holds nothing
            position = opening.start() + 1
            continue
        if not (asked <= tag_end + 1 and (closing is None or closing.start() > tag_end)):
            asked, closing = tag_end + 1, REF_CLOSE.search(wikitext, tag_end + 1)
        if closing is None:
            break  # nothing after here is closed
        found.append(wikitext[tag_end + 1 : closing.start()])
        position = closing.end()
    return found


def normalize_url(url: str) -> str | None:
    """A cited URL in one canonical form, or None if it is not a usable web address.

    Entities are decoded (``&amp;``), trailing punctuation and an unbalanced ``)`` are
    removed, scheme and host are lower-cased, a default port and the fragment dropped.
    """
    url = html.unescape(url).strip().rstrip(TRAILING)
    surplus, end = url.count(")") - url.count("("), len(url)
    while surplus > 0 and url.endswith(")", 0, end):  # counted once: a URL of 100,000 ")" stays linear
        end, surplus = end - 1, surplus - 1
        while end and url[end - 1] in TRAILING:
            end -= 1
    url = url[:end]
    try:
        parts = urlsplit(url)
        host = (parts.hostname or "").rstrip(".")
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in SCHEMES or not host or "." not in host:
        return None
    netloc = host if port is None or str(port) == DEFAULT_PORTS[scheme] else f"{host}:{port}"
    return urlunsplit((scheme, netloc, parts.path or "/", parts.query, ""))


def cited_urls(wikitext: str) -> list[str]:
    """Distinct normalised URLs cited in a page's refs, in the order they first appear."""
    found: dict[str, None] = {}
    for content in refs(wikitext):
        for match in URL.finditer(content):
            url = normalize_url(match.group(0))
            if url:
                found.setdefault(url, None)
    return list(found)


def domain(url: str) -> str:
    """The host a normalised URL points at (``www.`` dropped, so a site counts once)."""
    host = urlsplit(url).hostname or ""
    return host.removeprefix("www.")
