"""cc_net's text normalisation, exactly: the forms used for line dedup and for the language model.

``normalize_for_dedup`` decides which lines count as repeats; ``normalize`` is what the
sentencepiece + KenLM perplexity sees. Both must match cc_net's ``text_normalizer`` to the
character, or dedup and perplexity buckets drift from the recipe.
"""

from __future__ import annotations

import re
import unicodedata

# cc_net's table of unicode punctuation and its ASCII replacement.
UNICODE_PUNCT = {
    "，": ",",
    "。": ".",
    "、": ",",
    "„": '"',
    "”": '"',
    "“": '"',
    "«": '"',
    "»": '"',
    "１": '"',
    "」": '"',
    "「": '"',
    "《": '"',
    "》": '"',
    "´": "'",
    "∶": ":",
    "：": ":",
    "？": "?",
    "！": "!",
    "（": "(",
    "）": ")",
    "；": ";",
    "–": "-",
    "—": " - ",
    "．": ". ",
    "～": "~",
    "’": "'",
    "…": "...",
    "━": "-",
    "〈": "<",
    "〉": ">",
    "【": "[",
    "】": "]",
    "％": "%",
    "►": "-",
}

_PUNCT_CLASS = "".join(UNICODE_PUNCT)
_NON_PRINTING_CLASS = "".join(map(chr, [*range(0, 32), *range(127, 160)]))
_NON_PRINTING = re.compile(f"[{re.escape(_NON_PRINTING_CLASS)}]")
_PUNCT_OR_NON_PRINTING = re.compile(f"[{re.escape(_PUNCT_CLASS + _NON_PRINTING_CLASS)}]")
_PUNCT_OR_NON_PRINTING_BUT_NEWLINE = re.compile(f"[{re.escape(_PUNCT_CLASS + _NON_PRINTING_CLASS.replace(chr(10), ''))}]")
_DIGIT = re.compile(r"\d")
_PUNCT_TRANSLATION = str.maketrans(UNICODE_PUNCT)


class _CombiningMarks(dict):
    """A ``str.translate`` table deleting every nonspacing mark (category Mn), filled in as
    characters are first seen (building it for all of Unicode took a second per process)."""

    def __missing__(self, point: int) -> int | None:
        kept = None if unicodedata.category(chr(point)) == "Mn" else point
        self[point] = kept
        return kept


_COMBINING_MARKS = _CombiningMarks()


def strip_accents(text: str) -> str:
    """Drop combining marks after NFD decomposition ("café" -> "cafe")."""
    if text.isascii():
        return text
    return unicodedata.normalize("NFD", text).translate(_COMBINING_MARKS)


def normalize(text: str) -> str:
    """cc_net's ``normalize`` with its defaults: the text the language model scores.

    Strip, lower-case, strip accents, digits to 0, unicode punctuation to ASCII, and
    remove control characters. Newlines are control characters: a multi-line text comes
    out as one line with its lines glued together, which is what cc_net scores.
    """
    text = text.strip()
    if not text:
        return text
    text = strip_accents(text.lower())
    text = _DIGIT.sub("0", text)
    text = text.translate(_PUNCT_TRANSLATION)
    return _NON_PRINTING.sub("", text)


def normalized_lines(text: str) -> list[str]:
    """A document as the lines a language model learns from: each paragraph, normalised (empty ones left out)."""
    return [line for line in (normalize(paragraph) for paragraph in text.split("\n")) if line]


def normalize_for_dedup(line: str) -> str:
    """cc_net's ``normalize_for_dedup``: strip, lower-case, digits to 0, drop punctuation
    from the unicode table and control characters (ASCII punctuation stays)."""
    line = line.strip()
    if not line:
        return line
    return _PUNCT_OR_NON_PRINTING.sub("", _DIGIT.sub("0", line.lower()))


def normalize_lines_for_dedup(text: str) -> str:
    """``text`` with each of its ``\\n``-separated lines put through ``normalize_for_dedup``,
    each rule run once over the whole text: the rules act on single characters (lower-casing
    sees no context across a newline), so every line comes out as it would alone."""
    stripped = "\n".join([line.strip() for line in text.split("\n")]).lower()
    return _PUNCT_OR_NON_PRINTING_BUT_NEWLINE.sub("", _DIGIT.sub("0", stripped))
