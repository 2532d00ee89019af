"""Token counts identical to Hugging Face ``tokenizers``, at tiktoken's speed.

For a byte-level BPE tokenizer.json such as GPT-NeoX-20B's, ``tokenizers`` (the reference)
NFC-normalises the text, cuts it at its added tokens (leftmost-longest match: NeoX's are
``<|endoftext|>``, ``<|padding|>`` and runs of 2 to 24 spaces), splits each remaining piece
with GPT-2's pattern and merges byte pairs by the merges' priority. :class:`TokenCounter`
does the same cut in Python and hands each piece to tiktoken, whose ranks here are the
merges' order, so that both merge the same pairs; a tokenizer.json outside that family is
counted by ``tokenizers`` itself. Equality with ``tokenizers`` on every text of the sample
data is a test (``tests/unit/test_token_count.py``).
"""

from __future__ import annotations

import functools
import json
import os
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable
from operator import mul

from redpajama.models import catalog

# GPT-2's pre-tokenisation pattern, which byte-level ``tokenizers`` applies (``use_regex``).
GPT2_PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
# Unicode White_Space, the ``\s`` of that pattern (Python's ``\s`` also takes U+001C-U+001F).
WHITE_SPACE = "\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
# A text is a sequence of units: white space, then what follows it up to the next white space.
# No pre-token crosses into the next unit, and how a unit splits never depends on what is
# around it (the pattern's one look-ahead, ``(?!\S)``, looks at most one character on, into
# the unit's own word), so a unit's count is the same wherever it occurs: counts are cached,
# and a text's units not seen before are counted together in one call.
UNITS = re.compile(f"[{WHITE_SPACE}]*[^{WHITE_SPACE}]+|[{WHITE_SPACE}]+")
CACHE_LIMIT = 1 << 20
MANY_UNITS = 4096


def _byte_decoder() -> dict[str, int]:
    """GPT-2's byte-to-printable-character table, inverted."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    characters = printable[:]
    extra = 0
    for byte in range(256):
        if byte not in printable:
            printable.append(byte)
            characters.append(256 + extra)
            extra += 1
    return {chr(c): b for b, c in zip(printable, characters, strict=True)}


class Unsupported(ValueError):
    """The tokenizer.json is not a plain byte-level BPE: count with ``tokenizers``."""


class _Runs:
    """Added tokens that are runs of one character with every length from ``low`` to ``high``."""

    def __init__(self, char: str, low: int, high: int):
        self.char, self.low, self.high = char, low, high

    def tokens(self, length: int) -> tuple[int, int]:
        """(tokens, characters left over) of a run: greedy longest matches from the left."""
        whole, rest = divmod(length, self.high)
        if rest >= self.low:
            return whole + 1, 0
        return whole, rest


class ReferenceCounter:
    """Counts with ``tokenizers`` itself (any tokenizer.json), batched."""

    def __init__(self, tokenizer_json: str):
        from tokenizers import Tokenizer

        self.tokenizer = Tokenizer.from_file(tokenizer_json)

    def count(self, texts: Iterable[str]) -> list[int]:
        return [len(item.ids) for item in self.tokenizer.encode_batch_fast(list(texts), add_special_tokens=False)]


@functools.lru_cache(maxsize=4)
def load_token_counter(location: str) -> TokenCounter | ReferenceCounter:
    """A token counter for a tokenizer.json (path, URL or gs://, fetched into the model cache),
    once per process: exact ``tokenizers`` counts, through tiktoken when the tokenizer is a plain
    byte-level BPE."""
    return token_counter(catalog.fetch(location, os.path.basename(location)))


def token_counter(tokenizer_json: str) -> TokenCounter | ReferenceCounter:
    """The fast exact counter when the tokenizer allows it, else ``tokenizers``."""
    try:
        return TokenCounter(tokenizer_json)
    except Unsupported:
        return ReferenceCounter(tokenizer_json)


class TokenCounter:
    """``count(texts)`` = ``len(tokenizer.encode(text, add_special_tokens=False).ids)`` per text."""

    def __init__(self, tokenizer_json: str):
        with open(tokenizer_json, encoding="utf-8") as handle:
            spec = json.load(handle)
        self._check(spec)
        self.nfc = (spec.get("normalizer") or {}).get("type") == "NFC"
        import numpy

        self.encoding, ranks = self._encoding(spec["model"])
        self._token_bytes = numpy.zeros(len(ranks) + 256, dtype=numpy.int64)
        for token, rank in ranks.items():
            self._token_bytes[rank] = len(token)
        self._cut, self._runs = self._added(spec.get("added_tokens") or [])
        self._cache: dict[str, int] = {}

    @staticmethod
    def _check(spec: dict) -> None:
        model, pre = spec.get("model") or {}, spec.get("pre_tokenizer") or {}
        normalizer = spec.get("normalizer")
        problems = [
            model.get("type") != "BPE" and "not BPE",
            bool(model.get("dropout")) and "BPE dropout",
            bool(model.get("continuing_subword_prefix") or model.get("end_of_word_suffix")) and "subword affixes",
            bool(model.get("byte_fallback")) and "byte fallback",
            pre.get("type") != "ByteLevel" and "not byte-level",
            bool(pre.get("add_prefix_space")) and "prefix space",
            pre.get("use_regex", True) is not True and "no pre-tokenisation regex",
            normalizer is not None and normalizer.get("type") != "NFC" and "normaliser",
        ]
        for token in spec.get("added_tokens") or []:
            if token.get("lstrip") or token.get("rstrip") or token.get("single_word") or not token["content"].isascii():
                problems.append(f"added token {token['content']!r}")
        problems = [p for p in problems if p]
        if problems:
            raise Unsupported(", ".join(problems))

    @staticmethod
    def _encoding(model: dict):
        import tiktoken

        decode = _byte_decoder()
        ranks = {bytes([byte]): byte for byte in range(256)}
        for priority, merge in enumerate(model["merges"]):
            left, right = merge.split(" ") if isinstance(merge, str) else merge
            token = bytes(decode[c] for c in left + right)
            ranks.setdefault(token, 256 + priority)
        if len(ranks) != len(set(ranks.values())):
            raise Unsupported("merge ranks")
        return tiktoken.Encoding("bpe-count", pat_str=GPT2_PATTERN, mergeable_ranks=ranks, special_tokens={}), ranks

    @staticmethod
    def _added(tokens: list[dict]) -> tuple[re.Pattern | None, _Runs | None]:
        """A pattern finding added tokens; runs of one character are matched whole and counted
        by :class:`_Runs` (leftmost-longest over a run is greedy from the left)."""
        contents = sorted({token["content"] for token in tokens}, key=len, reverse=True)
        runs = None
        single = [c for c in contents if len(set(c)) == 1 and len(c) > 1]
        if single and len({c[0] for c in single}) == 1:
            lengths = sorted(len(c) for c in single)
            if lengths == list(range(lengths[0], lengths[-1] + 1)):
                runs = _Runs(single[0][0], lengths[0], lengths[-1])
                contents = [c for c in contents if c not in single]
        if runs is not None and any(c.startswith(runs.char) for c in contents):
            raise Unsupported("added tokens overlapping a run of one character")
        parts = [re.escape(c) for c in contents]
        if runs is not None:
            parts.append(f"{re.escape(runs.char)}{{{runs.low},}}")
        return (re.compile("|".join(parts)) if parts else None), runs

    def count(self, texts: Iterable[str]) -> list[int]:
        return [self.count_one(text) for text in texts]

    def count_one(self, text: str) -> int:
        if self.nfc and not unicodedata.is_normalized("NFC", text):
            text = unicodedata.normalize("NFC", text)
        units = UNITS.findall(text)
        if len(units) > MANY_UNITS:  # a long text repeats its units: look each up once
            tally = Counter(units)
            return sum(map(mul, self._lookup(list(tally)), tally.values()))
        return sum(self._lookup(units))

    def _lookup(self, units: list[str]) -> list[int]:
        """The tokens of each unit, from the cache or counted now (and cached)."""
        cache = self._cache
        counts = list(map(cache.get, units))  # every unit has a token, so None is "not counted yet"
        if None not in counts:
            return counts
        missing = [index for index, count in enumerate(counts) if count is None]
        new = list(dict.fromkeys(units[index] for index in missing))  # in text order
        fresh = dict(zip(new, self._count_units(new), strict=True))
        for index in missing:
            counts[index] = fresh[units[index]]
        if len(cache) + len(fresh) > CACHE_LIMIT:
            cache.clear()
        cache.update(fresh)
        return counts

    def _count_units(self, units: list[str]) -> list[int]:
        """Tokens of each unit, from one pass over the units joined in text order (a text of its
        own with the same pieces): each token is given to the unit its first byte falls in."""
        import numpy

        text = "".join(units)
        ends = numpy.cumsum([len(unit.encode("utf-8")) for unit in units])
        lengths = []  # bytes of every token, in order
        for piece, added, width in self._pieces(text):
            if added:
                size = len(piece.encode("utf-8"))
                lengths.append(numpy.array([width] * (added - 1) + [size - width * (added - 1)], dtype=numpy.int64))
            else:
                lengths.append(self._token_bytes[self.encoding.encode_ordinary(piece)])
        sizes = numpy.concatenate(lengths) if len(lengths) > 1 else lengths[0]
        starts = numpy.cumsum(sizes) - sizes
        owners = numpy.searchsorted(ends, starts, side="right")
        return numpy.bincount(owners, minlength=len(units)).tolist()

    def _pieces(self, text: str):
        """``(text, added tokens, characters per added token)``: the text cut at its added tokens;
        text pieces have 0 added tokens."""
        if self._cut is None:
            yield text, 0, 0
            return
        start = 0
        for match in self._cut.finditer(text):
            found = match.group(0)
            end = match.end()
            if self._runs is not None and found[0] == self._runs.char and len(found) >= self._runs.low \
                    and found.count(self._runs.char) == len(found):
                added, left = self._runs.tokens(len(found))
                end -= left  # characters a run leaves over begin the next piece
                width = self._runs.high
            else:
                added, width = 1, len(found)
            if match.start() > start:
                yield text[start:match.start()], 0, 0
            yield text[match.start():end], added, width
            start = end
        if start < len(text):
            yield text[start:], 0, 0
