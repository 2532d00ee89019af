"""Web documents as cc_net sees them: WET text split into title and lines, HTML to WET-like text.

cc_net strips every line of a WET record, drops empty ones, takes the first as the
``title`` and joins the rest with ``\\n`` into the content; documents whose content is
shorter than 300 characters are dropped. A WARC ``response`` is first turned into the
same shape: its ``<title>`` on the first line, then the page's text (resiliparse).
"""

from __future__ import annotations

import re
from urllib.parse import urlparse

from redpajama.core.records import Drop, Record, Step, StepResult, utf8_len

MIN_LENGTH = 300
_LINE_BREAK = re.compile(r"\r\n|\r|\n")
HTML_TYPES = ("text/html", "application/xhtml+xml")


def split_title(text: str) -> tuple[str, list[str]]:
    """cc_net's WET parsing: stripped non-empty lines; the first is the title."""
    lines = [stripped for stripped in (line.strip() for line in _LINE_BREAK.split(text)) if stripped]
    if not lines:
        return "", []
    return lines[0], lines[1:]


def source_domain(url: str) -> str:
    try:
        return urlparse(url).netloc
    except ValueError:
        return ""


def is_html(content_type: str | None) -> bool:
    return bool(content_type) and content_type.split(";")[0].strip().lower() in HTML_TYPES


def html_to_wet_text(html: bytes) -> str:
    """Title line plus the page's plain text, as CC's WET conversion lays a page out."""
    from resiliparse.extract.html2text import extract_plain_text
    from resiliparse.parse.encoding import detect_encoding
    from resiliparse.parse.html import HTMLTree

    tree = HTMLTree.parse_from_bytes(html, detect_encoding(html))
    body = extract_plain_text(
        tree, main_content=False, alt_texts=False, links=False, form_fields=False, noscript=False, list_bullets=False
    )
    return f"{tree.title or ''}\n{body}"


class ParseWebDocument(Step):
    """WET text (or HTML of a WARC response) -> cc_net's document fields; drop short ones."""

    name = "parse"

    def __init__(self, min_length: int = MIN_LENGTH):
        self.min_length = min_length
        self.description = (
            "parse: cc_net's WET parsing (first line = title, stripped non-empty lines; WARC responses "
            f"through resiliparse), drop content under {min_length} characters"
        )

    def apply(self, record: Record) -> StepResult:
        meta = record["meta"]
        html = meta.pop("_html", None)
        if html is not None:
            if not is_html(meta.pop("_content_type", None)):
                return Drop("not_html")
            record["text"] = html_to_wet_text(html)
            meta["length"] = utf8_len(record["text"])  # what a WET record's Content-Length would say
        title, lines = split_title(record["text"])
        content = "\n".join(lines)
        meta["title"] = title
        meta["nlines"] = meta["original_nlines"] = len(lines)
        meta["original_length"] = meta["length"]
        record["text"] = content
        if len(content) < self.min_length:
            return Drop("too_short")
        return record
