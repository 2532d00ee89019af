"""HTML fragments (StackExchange post bodies) to plain text, by lxml's own parser events.

RedPajama replaced ``<li>`` and ``<ol>`` with ``"\\n*"`` in the raw HTML and took
BeautifulSoup's ``get_text()`` (lxml tree builder): the text of every node in document
order, a whitespace-only string between tags shortened to one newline (or one space) unless
it sits in ``<pre>``/``<textarea>``, and nothing from comments, ``<script>``, ``<style>`` or
``<template>``. :func:`redpajama_text` reproduces that byte for byte.

:func:`html_to_text` keeps those semantics and fixes what they broke: ``<br>`` is a line
break (RedPajama glued the two lines), adjacent blocks (``<p>a</p><p>b</p>``) are split by
a newline instead of glued, each list item starts a line with ``*`` in ordered and
unordered lists alike (RedPajama left ``<ul>`` items unmarked when an attribute or case
differed and gave every ``<ol>`` an extra empty ``*`` line), and table cells are apart.
Where the source already separates its blocks, which is how StackExchange renders posts,
the two agree byte for byte.
"""

from __future__ import annotations

from lxml import etree

FEED_CHARS = 512
ASCII_SPACES = " \n\t\x0c\r"
WHITESPACE_KEPT = frozenset({"pre", "textarea"})
NOT_TEXT = frozenset({"script", "style", "template"})
BLOCKS = frozenset(
    "p div h1 h2 h3 h4 h5 h6 pre blockquote ul ol dl dt dd table thead tbody tfoot tr hr "
    "section article header footer aside nav figure figcaption details summary address".split()
)
CELLS = frozenset({"td", "th"})


class _Text:
    """A parser target collecting text the way BeautifulSoup's ``get_text()`` sees it.

    With ``layout`` on, line breaks, block boundaries, list items and cells add the
    separators described in the module docstring.
    """

    def __init__(self, layout: bool):
        self.layout = layout
        self.parts: list[str] = []
        self.pending: list[str] = []
        self.open: list[str] = []
        self.separator = ""  # what must stand between the text so far and the next text
        self.item_start = False  # a list marker was just written: the item's first block follows it

    # --- BeautifulSoup's string handling --------------------------------------------------
    def _flush(self) -> None:
        if not self.pending:
            return
        data = "".join(self.pending)
        self.pending = []
        if not data.strip(ASCII_SPACES) and not WHITESPACE_KEPT.intersection(self.open):
            data = "\n" if "\n" in data else " "
        if NOT_TEXT.intersection(self.open):
            return
        self._emit(data)

    def _emit(self, data: str) -> None:
        if data.strip(ASCII_SPACES):
            self.item_start = False
        if self.separator and data.strip(ASCII_SPACES):
            junction = (self.parts[-1][-1:] if self.parts else "\n") + data[0]
            needed = "\n" not in junction if "\n" in self.separator else not junction.isspace()
            if needed:
                self.parts.append(self.separator)
            self.separator = ""
        self.parts.append(data)

    # --- parser events ------------------------------------------------------------------------
    def start(self, tag, attrib) -> None:
        self._flush()
        tag = tag.lower() if isinstance(tag, str) else ""
        self.open.append(tag)
        if not self.layout:
            return
        if tag == "br":
            self.separator = self.separator.replace(" ", "") + "\n"
        elif tag == "li":
            self.separator = ""
            self._emit("\n*")
            self.item_start = True
        elif tag in BLOCKS and not self.item_start:
            self.separator = "\n"
        elif tag in CELLS:
            self.separator = self.separator or " "

    def end(self, tag) -> None:
        self._flush()
        tag = tag.lower() if isinstance(tag, str) else ""
        if tag in self.open:
            while self.open.pop() != tag:
                pass
        if self.layout and (tag in BLOCKS or tag == "li"):
            self.separator = "\n"
        elif self.layout and tag in CELLS:
            self.separator = self.separator or " "

    def data(self, data: str) -> None:
        self.pending.append(data)

    def comment(self, text: str) -> None:
        self._flush()

    def pi(self, target, data=None) -> None:
        self._flush()

    def doctype(self, *args) -> None:
        self._flush()

    def close(self) -> str:
        self._flush()
        return "".join(self.parts)


def _parse(html: str, layout: bool, chunk: int) -> str:
    parser = etree.HTMLParser(target=_Text(layout), recover=True)
    for start in range(0, max(len(html), 1), chunk):
        parser.feed(html[start : start + chunk])
    return parser.close()


def html_to_text(html: str) -> str:
    """Plain text of an HTML fragment (see the module docstring); never raises."""
    if not html:
        return ""
    try:
        return _parse(html, layout=True, chunk=1 << 30)
    except etree.LxmlError:
        return html


def redpajama_text(html: str) -> str:
    """RedPajama's ``cleanhtml``: the ``<li>``/``<ol>`` replacements, then ``get_text()``."""
    html = html.replace("<li>", "\n*").replace("</li>", "").replace("<ol>", "\n*").replace("</ol>", "")
    try:
        return _parse(html, layout=False, chunk=FEED_CHARS)
    except etree.LxmlError:
        return html
