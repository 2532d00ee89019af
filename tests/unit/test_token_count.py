"""The fast token counter agrees with ``tokenizers`` on every text of the sample data.

``make test`` compares the first 64 K characters of every sample text (every file and every
language is represented); ``make test-exhaustive`` compares every character of every text too
(``--exhaustive``: ``tokenizers`` takes minutes on the whole 70 MB)."""

import bz2
import gzip
import json

import pytest
from redpajama.filters.token_count import ReferenceCounter, TokenCounter, Unsupported
from tokenizers import Tokenizer

from tests.conftest import SHARED, need

TOKENIZER = SHARED / "models" / "gpt-neox-20b" / "20B_tokenizer.json"


def reference(texts):
    tokenizer = Tokenizer.from_file(str(TOKENIZER))
    return [len(item.ids) for item in tokenizer.encode_batch(texts, add_special_tokens=False)]


def pieces(text: str, size: int = 1 << 18) -> list[str]:
    """A dump or a book as pieces of about ``size`` characters cut after a newline (so that
    the reference can spread them over the cores); each piece is a text of its own."""
    out, start = [], 0
    while start < len(text):
        end = text.find("\n", start + size)
        end = len(text) if end < 0 else end + 1
        out.append(text[start:end])
        start = end
    return out


@pytest.fixture(scope="module")
def counter():
    return TokenCounter(str(need(TOKENIZER)))


EDGES = [
    "", " ", "  ", "a  b", "a" + " " * 25 + "b", " " * 24, " " * 47, " " * 48 + "x", "x" + " " * 49,
    "tabs\t\tand  spaces \t  mixed", "<|endoftext|>", "a<|endoftext|>b <|padding|>  c", "<|endoftext",
    "e\u0301 composed by NFC", "Ｆｕｌｌ width ﬁ ligature", "emoji 👩‍👩‍👧 and \u200d joiner", "line\r\nbreaks\n\n\n  x",
    "'s 've 'LL numbers 12345678 3.14", "\u00a0non-breaking\u00a0 space", "z" * 5000,
]


def test_hand_picked_edges(counter):
    assert counter.count(EDGES) == reference(EDGES)


def sample_texts() -> dict[str, list[str]]:
    """Every text of the sample data: web, C4, Wikipedia wikitext, StackExchange posts, books, code, LaTeX."""
    found: dict[str, list[str]] = {}
    with gzip.open(need(SHARED / "commoncrawl" / "text" / "dolma-CC-MAIN-20190717121559-20190717143559-00140.jsonl.gz")) as f:
        found["web"] = [json.loads(line)["text"] for line in f]
    found["c4"] = [json.loads(line)["text"] for path in sorted((SHARED / "c4").rglob("*.json.gz"))
                   for line in gzip.open(path, "rt") if line.strip()]
    found["books"] = [p.read_bytes().decode("utf-8", "replace") for p in sorted((SHARED / "books").rglob("*.txt"))]
    found["wikitext"] = [bz2.decompress(p.read_bytes()).decode("utf-8", "replace")
                         for p in sorted((SHARED / "wikipedia").rglob("*.bz2"))]
    found["stackexchange"] = [p.read_text("utf-8", "replace") for p in sorted((SHARED / "stackexchange").rglob("*.xml"))]
    found["languages"] = [p.read_text("utf-8", "replace") for p in sorted((SHARED / "langid").rglob("*"))
                          if p.is_file() and p.stat().st_size < 4 << 20]
    found["files"] = [p.read_bytes().decode("utf-8", "replace") for folder in ("github", "arxiv")
                      for p in sorted((SHARED / folder).rglob("*")) if p.is_file() and p.stat().st_size < 4 << 20]
    return found


HEAD_CHARACTERS = 1 << 16


def assert_identical(counter, texts_by_source: dict[str, list[str]]) -> None:
    for name, texts in texts_by_source.items():
        assert texts, name
        ours, theirs = counter.count(texts), reference(texts)
        differing = [i for i, (a, b) in enumerate(zip(ours, theirs, strict=True)) if a != b]
        assert not differing, f"{name}: {len(differing)} texts differ, first {texts[differing[0]][:80]!r}"


def test_identical_counts_on_the_head_of_every_sample_text(counter):
    assert_identical(counter, {name: [text[:HEAD_CHARACTERS] for text in whole]
                               for name, whole in sample_texts().items()})


@pytest.mark.exhaustive
def test_identical_counts_on_every_sample_text(counter):
    assert_identical(counter, {name: [piece for text in whole for piece in pieces(text)]
                               for name, whole in sample_texts().items()})


def test_other_tokenizers_are_counted_by_tokenizers_itself(tmp_path, counter):
    spec = json.loads(need(TOKENIZER).read_text())
    spec["pre_tokenizer"]["add_prefix_space"] = True
    changed = tmp_path / "tokenizer.json"
    changed.write_text(json.dumps(spec))
    with pytest.raises(Unsupported, match="prefix space"):
        TokenCounter(str(changed))
    assert ReferenceCounter(str(changed)).count(["Hello world"]) == [len(Tokenizer.from_file(str(changed)).encode(
        "Hello world", add_special_tokens=False).ids)]


def test_counts_hold_when_the_unit_cache_fills_mid_text(monkeypatch):
    from redpajama.filters import token_count

    monkeypatch.setattr(token_count, "CACHE_LIMIT", 40)
    monkeypatch.setattr(token_count, "MANY_UNITS", 30)  # long texts take the tally path too
    counter = TokenCounter(str(need(TOKENIZER)))
    texts = sample_texts()["web"][:40] + EDGES
    assert counter.count(texts) == reference(texts)
    assert counter.count(texts[::-1]) == reference(texts[::-1])  # again, with some units cached
    assert 0 < len(counter._cache) <= 40 + max(len(set(token_count.UNITS.findall(t))) for t in texts)
