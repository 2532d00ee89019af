"""Repository licences as GitHub determines them, and RedPajama's licence whitelist.

RedPajama kept BigQuery rows whose ``license`` starts with ``mit``, ``bsd`` or ``apache``;
that column is GitHub's own detection, made by licensee. For local checkouts this module
applies licensee's rules (v9.15) so that a repository gets the licence GitHub would give it:

- licence files are the root files whose names licensee scores (``LICENSE``, ``COPYING``,
  ``LICENSE.md``, ``MIT-LICENSE``...); a repository whose files name more than one licence,
  or a licence file that matches nothing (``other``), is not one licence;
- a file is normalised as licensee normalises it (title, version and copyright lines,
  Markdown, bullets, quotes and dashes, British spellings, text after "END OF TERMS AND
  CONDITIONS"...), then matched to the choosealicense.com texts: only copyright lines
  (``no-license``), the same set of words, or a Dice similarity of at least 98 % with a
  penalty for the difference in length.

Licence texts are choosealicense.com's, as shipped in the ``identify`` package (and, for the
two allowed licences it lacks, in ``manifests/licenses.json``). ``tests/unit/test_license.py``
compares the decisions with the real licensee where it is installed.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass

from redpajama import manifests

ALLOWED_PREFIXES = ("mit", "bsd", "apache")
THRESHOLD = 98.0
OTHER = "other"
NO_LICENSE = "no-license"
WHITESPACE = " \t\n\v\f\r\0"  # what Ruby's strip removes

FLAGS = re.ASCII | re.MULTILINE  # Ruby: ^ and $ always match at lines; \w \s \d \b are ASCII
START = r"\A\s*"
COPYRIGHT_LINES = START + r"(?:[_*\-\s]*(?:copyright|\(c\)|\u00a9).*$)+$"
ALL_RIGHTS_RESERVED = START + r"all rights reserved\.?$"
HRS = re.compile(r"^\s*[=\-*]{3,}\s*$", FLAGS)
COMMENT = re.compile(r"^\s*?[/*]{1,2}", FLAGS)
MARKDOWN_HEADING = re.compile(r"^\s*#+", FLAGS)
LINK = re.compile(r"\[(.+?)\]\(.+?\)", FLAGS)
VERSION = re.compile(START + r"version.*$", FLAGS | re.IGNORECASE)
BOM = re.compile(START + "\ufeff", FLAGS)
BORDER = re.compile(r"^[*-](.*?)[*-]$", FLAGS)
URL = re.compile(START + r"https?://[^ ]+\n", FLAGS)
COPYRIGHT = re.compile(f"(?:{COPYRIGHT_LINES})|(?:{ALL_RIGHTS_RESERVED})", FLAGS | re.IGNORECASE)
COPYRIGHT_ONLY = re.compile(f"(?:{COPYRIGHT_LINES})+\\Z", FLAGS | re.IGNORECASE)
BLOCK_QUOTE = re.compile(r"^\s*>", FLAGS)
DEVELOPED_BY = re.compile(START + r"developed by:.*?\n\n", FLAGS | re.IGNORECASE | re.DOTALL)
END_OF_TERMS = re.compile(r"^[\s#*_]*end of (?:the )?terms and conditions[\s#*_]*$", FLAGS | re.IGNORECASE)
MIT_OPTIONAL = re.compile(r"\(including the next paragraph\)", FLAGS | re.IGNORECASE)
CC_DEDICATION = re.compile(r"The\s+text\s+of\s+the\s+Creative\s+Commons.*?Public\s+Domain\s+Dedication.",
                           FLAGS | re.IGNORECASE | re.DOTALL)
CC_WIKI = re.compile(r"wiki.creativecommons.org", FLAGS | re.IGNORECASE)
CC_LEGAL_CODE = re.compile(r"^\s*Creative Commons Legal Code\s*$", FLAGS | re.IGNORECASE)
CC0_INFO = re.compile(r"For more information, please see\s*\S+zero\S+", FLAGS | re.IGNORECASE | re.DOTALL)
CC0_DISCLAIMER = re.compile(r"CREATIVE COMMONS CORPORATION.*?\n\n", FLAGS | re.IGNORECASE | re.DOTALL)
UNLICENSE_INFO = re.compile(r"For more information, please.*\S+unlicense\S+", FLAGS | re.IGNORECASE | re.DOTALL)
LISTS = re.compile(r"^\s*(?:\d\.|\*)\s+([^\n])", FLAGS)
DASHES = re.compile(r"(?<!^)([\u2014\u2013-]+)(?!$)", FLAGS)
QUOTES = re.compile("[`'\"\u2018\u201c\u2019\u201d]")
SPAN = re.compile(r"[_*~]+(.*?)[_*~]+", FLAGS)
BULLET = re.compile(r"\n\n\s*(?:[*-]|\(?[\da-z]{1,2}[).])\s+", FLAGS | re.IGNORECASE)
PARENS = re.compile(r"\)\s+\(", FLAGS)
WORD = re.compile(r"(?:[\w/-](?:'s|(?<=s)')?)+", FLAGS)
CC_FALSE_POSITIVE = re.compile(r"^(?:creative commons )?Attribution-(?:NonCommercial|NoDerivatives)", FLAGS | re.IGNORECASE)
# Legally equivalent words (SPDX matching guidelines), as licensee folds them.
SPELLINGS = {
    "acknowledgment": "acknowledgement", "analogue": "analog", "analyse": "analyze", "artefact": "artifact",
    "authorisation": "authorization", "authorised": "authorized", "calibre": "caliber", "cancelled": "canceled",
    "capitalisations": "capitalizations", "catalogue": "catalog", "categorise": "categorize", "centre": "center",
    "emphasised": "emphasized", "favour": "favor", "favourite": "favorite", "fulfil": "fulfill",
    "fulfilment": "fulfillment", "initialise": "initialize", "judgment": "judgement", "labelling": "labeling",
    "labour": "labor", "licence": "license", "maximise": "maximize", "modelled": "modeled", "modelling": "modeling",
    "offence": "offense", "optimise": "optimize", "organisation": "organization", "organise": "organize",
    "practise": "practice", "programme": "program", "realise": "realize", "recognise": "recognize",
    "signalling": "signaling", "sub-license": "sublicense", "sub license": "sublicense",
    "utilisation": "utilization", "whilst": "while", "wilful": "wilfull", "non-commercial": "noncommercial",
    "cent": "percent", "owner": "holder",
}
SPELLING = re.compile(r"\b(?:" + "|".join(re.escape(word) for word in SPELLINGS) + r")\b", FLAGS)

# Licence file names and licensee's scores (the highest first; a score of 0 is not a licence file).
_LICENSE, _COPYING = r"(?:un)?licen[sc]e", r"copy(?:ing|right)"
_PREFERRED_EXT, _LICENSE_EXT = r"\.(?:md|markdown|txt|html)", r"\.(?!spdx|header)[^./]+"
_OTHER_EXT, _ANY_EXT = r"\.(?!xml|go|gemspec)[^./]+", r"\.[^./]+"
FILE_NAMES = [(re.compile(pattern + r"\Z", re.IGNORECASE), score) for pattern, score in (
    (rf"{_LICENSE}", 1.00), (rf"{_LICENSE}{_PREFERRED_EXT}", 0.95), (rf"{_COPYING}", 0.90),
    (rf"{_COPYING}{_PREFERRED_EXT}", 0.85), (rf"{_LICENSE}{_LICENSE_EXT}", 0.80), (rf"{_COPYING}{_ANY_EXT}", 0.75),
    (rf"{_LICENSE}[-_][^.]*(?:{_OTHER_EXT})?", 0.70), (rf"{_COPYING}[-_][^.]*(?:{_OTHER_EXT})?", 0.65),
    (rf"\w+[-_]{_LICENSE}[^.]*(?:{_OTHER_EXT})?", 0.60), (rf"\w+[-_]{_COPYING}[^.]*(?:{_OTHER_EXT})?", 0.55),
)] + [(re.compile(pattern, re.IGNORECASE), score) for pattern, score in (
    (rf"ofl{_PREFERRED_EXT}", 0.50), (rf"ofl{_OTHER_EXT}", 0.45), (r"ofl\Z", 0.40), (r"patents\Z", 0.35),
    (rf"patents{_OTHER_EXT}\Z", 0.30),
)]


def file_score(name: str) -> float:
    """How surely a root file with this name is a licence file (0: it is not one)."""
    return next((score for pattern, score in FILE_NAMES if pattern.match(name)), 0.0)


def is_license_file(name: str) -> bool:
    return file_score(name) > 0


# --- normalisation ------------------------------------------------------------------------------


def _strip(text: str, pattern: re.Pattern) -> str:
    """Replace matches by a space, squeeze runs of spaces, trim (licensee's ``strip``)."""
    return re.sub(" +", " ", pattern.sub(" ", text)).strip(WHITESPACE)


def _strip_all(text: str, pattern: re.Pattern) -> str:
    while pattern.search(text):
        text = _strip(text, pattern)
    return text


def _without_title_and_version(content: str) -> str:
    text = content.strip(WHITESPACE)
    text = _strip(text, HRS)
    lines = text.split("\n")
    while lines and lines[-1] == "":
        lines.pop()
    if len(lines) > 1 and all(COMMENT.search(line) for line in lines):
        text = _strip(text, COMMENT)
    text = _strip(text, MARKDOWN_HEADING)
    text = LINK.sub(r"\1", text)
    text = _strip_all(text, _titles())
    return _strip(text, VERSION)


def normalize(content: str) -> str:
    """A licence text as licensee compares it: lower-cased, stripped of everything optional."""
    text = _without_title_and_version(content).lower()
    text = LISTS.sub(r"- \1", text).replace("http:", "https:").replace("&", "and")
    text = QUOTES.sub("'", DASHES.sub("-", text))
    text = SPELLING.sub(lambda match: SPELLINGS[match.group(0)], text)
    text = SPAN.sub(r"\1", text)
    text = PARENS.sub(")(", BULLET.sub("\n\n- ", text))
    text = _strip(text, BOM)
    if "creative commons" in text:
        text = _strip(_strip(text, CC_DEDICATION), CC_WIKI)
    if "associating cc0" in text:
        text = _strip(_strip(_strip(text, CC_LEGAL_CODE), CC0_INFO), CC0_DISCLAIMER)
    if "unlicense" in text:
        text = _strip(text, UNLICENSE_INFO)
    text = BORDER.sub(r"\1", text)
    text = _strip(_strip(_strip_all(text, _titles()), VERSION), URL)
    text = _strip_all(_strip_all(text, COPYRIGHT), _titles())
    text = _strip(_strip(text, BLOCK_QUOTE), DEVELOPED_BY)
    end = END_OF_TERMS.search(text)
    if end:
        text = text[: end.start()]
    return _strip(_strip(text, re.compile(r"\s+")), MIT_OPTIONAL)


def wordset(normalized: str) -> frozenset[str]:
    return frozenset(WORD.findall(normalized))


# --- the licences -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Template:
    key: str
    spdx: str
    title: str
    nickname: str | None
    alt_segments: int
    text: str

    @functools.cached_property
    def normalized(self) -> str:
        return normalize(self.text)

    @functools.cached_property
    def wordset(self) -> frozenset[str]:
        return wordset(self.normalized)

    @functools.cached_property
    def fields(self) -> list[str]:
        return _fields().findall(self.normalized)

    def similarity(self, normalized: str, words: frozenset[str]) -> float:
        """licensee's score: shared words over all words, less a quarter point per character
        of length difference beyond what the template's fields and alternatives allow."""
        fields = set(self.fields)
        fieldless = self.wordset - fields
        delta = abs(len(self.normalized) - len(normalized)) - max(len(self.fields), self.alt_segments) * 4
        total = len(fieldless) + len(words) - len(fields) + max(delta, 0) // 4
        return len(fieldless & words) * 200.0 / total if total else 0.0

    def title_pattern(self) -> str:
        """licensee's title expression: the title, a looser form of it, the key, the nickname."""
        name = self.title.lower().replace("*", "u", 1)
        loose = re.sub(r"v(\d+\.\d+)", r"\1", re.sub(r",? version ", " ", re.sub(r"\Athe ", "", name, flags=re.I), count=1),
                       count=1)
        loose = re.escape(loose)
        loose = re.sub(r"\\ licen[sc]e", lambda _: r"(?:\ licen[sc]e)?", loose, count=1, flags=re.I)
        loose = re.sub(r"\\ (\d+\\.\d+)", lambda m: r",?\s+(?:version\ |v(?:\.\ )?)?" + m.group(1), loose, count=1)
        loose = re.sub(r"\bgnu\\ ", lambda _: r"(?:GNU\ )?", loose, count=1)
        key = self.key.replace("-", "[- ]", 1).replace(".", r"\.", 1) + r"(?:\ licen[sc]e)?"
        parts = [name, loose, key]
        if self.nickname:
            parts.append("(?-i:" + re.sub(r"\bGNU ", "(?:GNU )?", self.nickname, count=1, flags=re.I) + ")")
        return "|".join(f"(?:{part})" for part in parts)

    def name_without_version(self) -> str:
        return re.match(r"(.+?)(?:( v?\d\.\d)|$)", self.title).group(1)


@functools.lru_cache(maxsize=1)
def templates() -> tuple[Template, ...]:
    """licensee's licences, in its (alphabetical) order, with their choosealicense.com texts."""
    from identify.vendor.licenses import LICENSES

    texts = dict(LICENSES)
    found = []
    for row in manifests.load("licenses")["licenses"]:
        text = row.get("text") or texts.get(row["spdx"])
        if text:
            found.append(Template(row["key"], row["spdx"], row["title"], row.get("nickname"), row["alt_segments"], text))
    return tuple(found)


@functools.lru_cache(maxsize=1)
def _titles() -> re.Pattern:
    rows = manifests.load("licenses")["licenses"]
    everything = [Template(r["key"], r["spdx"], r["title"], r.get("nickname"), r["alt_segments"], "") for r in rows]
    parts = [template.title_pattern() for template in everything]
    parts += [re.escape(t.name_without_version()) for t in everything if t.name_without_version() != t.title]
    return re.compile(START + r"\(?(?:the )?(?:" + "|".join(f"(?:{p})" for p in parts) + r").*?$", FLAGS | re.IGNORECASE)


@functools.lru_cache(maxsize=1)
def _fields() -> re.Pattern:
    return re.compile(r"\[(" + "|".join(manifests.load("licenses")["fields"]) + r")\]")


# --- matching -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class FileMatch:
    """The licence of one file (a licensee key, ``other`` or ``no-license``) and how sure."""

    key: str
    confidence: float  # 0-100, as licensee reports it
    copyright_only: bool = False


def match_file(content: str) -> FileMatch:
    """One licence file's licence, by licensee's matchers: copyright lines only, same words, Dice."""
    content = content.replace("\r\n", "\n").replace("\r", "\n")
    if COPYRIGHT_ONLY.match(content.strip(WHITESPACE)):
        return FileMatch(NO_LICENSE, 100.0, copyright_only=True)
    normalized = normalize(content)
    words = wordset(normalized)
    for template in templates():
        if template.wordset == words:
            return FileMatch(template.key, 100.0)
    skip_cc = bool(CC_FALSE_POSITIVE.search(content.strip(WHITESPACE)))
    best, best_score = None, 0.0
    for template in templates():
        if skip_cc and template.key.startswith("cc-"):
            continue
        score = template.similarity(normalized, words)
        if score > best_score:
            best, best_score = template, score
    if best is not None and best_score >= THRESHOLD:
        return FileMatch(best.key, round(best_score, 2))
    return FileMatch(OTHER, round(best_score, 2))


@dataclass(frozen=True)
class Detected:
    license: str | None  # a licensee key (``mit``, ``apache-2.0``), ``other``, ``no-license``, or None
    confidence: float  # 0-1
    allowed: bool
    files: tuple[tuple[str, str], ...] = ()  # (file name, its licence)


def detect(files: Mapping[str, str]) -> Detected:
    """The licence of a repository from its root files (name -> text), as licensee decides it.

    Files that are not licence files by name are ignored. One licence across the licence
    files is the repository's; several (or a file that matches none) make it ``other``; a
    ``COPYRIGHT`` file holding only copyright lines does not count.
    """
    named = sorted((name for name in files if is_license_file(name)), key=lambda n: (-file_score(n), n))
    matches = [(name, match_file(files[name])) for name in named]
    counted = [(name, m) for name, m in matches if not (m.copyright_only and re.match(r"copyright", name, re.I))]
    keys = list(dict.fromkeys(m.key for _, m in counted))
    if _lesser_gpl(matches):
        keys = [matches[0][1].key]
    if not keys:
        return Detected(None, 0.0, False, tuple((n, m.key) for n, m in matches))
    key = keys[0] if len(keys) == 1 else OTHER
    confidence = min(m.confidence for _, m in counted if m.key == key) / 100 if key != OTHER else 0.0
    return Detected(key, round(confidence, 3), bigquery_allowed(key), tuple((n, m.key) for n, m in matches))


def _lesser_gpl(matches: list[tuple[str, FileMatch]]) -> bool:
    """licensee names a project with COPYING.LESSER (LGPL) beside COPYING (GPL) by its LGPL."""
    if len(matches) != 2 or len({m.key for _, m in matches}) != 2:
        return False
    (first, lesser), (_, full) = sorted(matches, key=lambda item: item[0].lower() != "copying.lesser")
    return (first.lower() == "copying.lesser" and lesser.key in ("lgpl-2.1", "lgpl-3.0")
            and full.key in ("gpl-2.0", "gpl-3.0"))


def bigquery_allowed(license_value) -> bool:
    """RedPajama's query: ``license LIKE 'mit%' OR 'bsd%' OR 'apache%'``."""
    return isinstance(license_value, str) and license_value.lower().startswith(ALLOWED_PREFIXES)
