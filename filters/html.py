"""HTML fragments (StackExchange post bodies) to readable plain text.

Paragraphs and headings become blocks separated by a blank line, list items become
``* item`` (``1. item`` in ordered lists), ``<pre>`` code keeps its lines and
indentation, ``<br>`` is a line break and ``<blockquote>`` lines start with ``> ``.
RedPajama instead called BeautifulSoup's ``get_text()`` with no separator, which glued
paragraphs and code lines together.
"""

from __future__ import annotations

import re

import lxml.html
from lxml import etree

BLOCK_TAGS = frozenset(
    "p div h1 h2 h3 h4 h5 h6 table thead tbody tr dl dt dd section article header footer "
    "figure figcaption details summary".split()
)
LIST_TAGS = frozenset({"ul", "ol"})
SKIPPED_TAGS = frozenset({"script", "style", "head", "title"})
_BREAK = "\x00"
_SPACES = re.compile(r"\s+")


def html_to_text(html: str) -> str:
    """Plain text of an HTML fragment; never raises on malformed markup."""
    if not html or not html.strip():
        return ""
    try:
        root = lxml.html.fragment_fromstring(html, create_parent="div")
    except (etree.ParserError, ValueError):
        return _collapse(html)
    return "\n\n".join(_blocks(root))


def _collapse(text: str) -> str:
    lines = (_SPACES.sub(" ", part).strip() for part in text.split(_BREAK))
    return "\n".join(lines).strip()


def _tag(node) -> str:
    return node.tag.lower() if isinstance(node.tag, str) else ""


def _inline_text(node) -> str:
    parts = []
    for piece in node.iter():
        tag = _tag(piece)
        if tag == "br":
            parts.append(_BREAK)
        elif tag and tag not in SKIPPED_TAGS and piece.text and piece is not None:
            parts.append(piece.text)
        if piece is not node and piece.tail:
            parts.append(piece.tail)
    return "".join(parts)


def _blocks(element) -> list[str]:
    blocks: list[str] = []
    inline: list[str] = []

    def flush() -> None:
        text = _collapse("".join(inline))
        if text:
            blocks.append(text)
        inline.clear()

    if element.text:
        inline.append(element.text)
    for child in element:
        tag = _tag(child)
        if not tag or tag in SKIPPED_TAGS:
            pass
        elif tag == "br":
            inline.append(_BREAK)
        elif tag == "hr":
            flush()
        elif tag == "pre":
            flush()
            code = child.text_content().strip("\n")
            if code.strip():
                blocks.append(code)
        elif tag in LIST_TAGS:
            flush()
            items = _list_items(child, ordered=tag == "ol")
            if items:
                blocks.append(items)
        elif tag == "blockquote":
            flush()
            quoted = "\n\n".join(_blocks(child))
            if quoted:
                blocks.append("\n".join(f"> {line}" if line else ">" for line in quoted.split("\n")))
        elif tag in BLOCK_TAGS or tag == "li":
            flush()
            blocks.extend(_blocks(child))
        else:
            inline.append(_inline_text(child))
        if child.tail:
            inline.append(child.tail)
    flush()
    return blocks


def _list_items(element, ordered: bool) -> str:
    lines = []
    number = 0
    for item in element:
        if _tag(item) != "li":
            continue
        number += 1
        marker = f"{number}." if ordered else "*"
        body = "\n".join(_blocks(item))
        indented = body.replace("\n", "\n  ")
        lines.append(f"{marker} {indented}")
    return "\n".join(lines)
