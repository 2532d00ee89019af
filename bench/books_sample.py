"""The Gutenberg sample plus planted near-duplicates, and exact-Jaccard ground truth for all of it.

Planted, from real books: another edition is already in the sample; here a copy with its
front matter rewritten, copies with 1 % and 5 % of words replaced at random (seeded), and a
copy truncated to its first 85 %. Ground truth: word 5-gram Jaccard as in
``jaccard-5gram-words.tsv`` (lower-cased ``\\w+`` words), computed for every pair.
"""

from __future__ import annotations

import itertools
import os
import random
from pathlib import Path

import numpy as np
from redpajama.dedup.minhash import jaccard, shingle_hashes, words
from redpajama.slices.books import decode_book

SHARED = Path(os.environ.get("REDPAJAMA_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
GUTENBERG = SHARED / "books" / "gutenberg"


def sample_books() -> list[Path]:
    return sorted(p for p in GUTENBERG.rglob("*.txt") if p.name != "GITenberg-LICENSE.txt")


def _edited(text: str, fraction: float, seed: int) -> str:
    rng = random.Random(seed)
    tokens = text.split(" ")
    for index in rng.sample(range(len(tokens)), int(len(tokens) * fraction)):
        tokens[index] = f"edit{rng.randrange(10**6)}"
    return " ".join(tokens)


def plant(folder: Path) -> dict[str, str]:
    """Write the planted copies into ``folder``; returns {planted file: what it is}."""
    folder.mkdir(parents=True, exist_ok=True)
    moby = decode_book((GUTENBERG / "Moby-Dick--Or-The-Whale_2701" / "2701-0.txt").read_bytes())
    holmes = decode_book((GUTENBERG / "The-Adventures-of-Sherlock-Holmes_1661" / "1661.txt").read_bytes())
    carol = decode_book((GUTENBERG / "A-Christmas-Carol_46" / "46-0.txt").read_bytes())
    cut = holmes.find("ADVENTURE I")
    planted = {
        "holmes-new-front-matter.txt": ("A reissue, newly typeset, with a preface by the editors.\n" * 40)
        + holmes[cut:],
        "moby-dick-1pct-edits.txt": _edited(moby, 0.01, 1),
        "moby-dick-5pct-edits.txt": _edited(moby, 0.05, 2),
        "christmas-carol-first-85pct.txt": carol[: int(len(carol) * 0.85)],
    }
    for name, text in planted.items():
        (folder / name).write_text(text, encoding="utf-8")
    return {name: "planted" for name in planted}


def ground_truth(paths: list[Path]) -> dict[tuple[str, str], float]:
    """Exact word 5-gram Jaccard of every pair (keys sorted)."""
    sets = {str(p): np.unique(shingle_hashes(decode_book(p.read_bytes()))) for p in paths}
    return {tuple(sorted((a, b))): jaccard(sets[a], sets[b]) for a, b in itertools.combinations(sorted(sets), 2)}


def components(pairs: dict[tuple[str, str], float], threshold: float, nodes: list[str]) -> dict[str, str]:
    """Each node's component (its smallest member) under the pairs at or above the threshold."""
    parent = {node: node for node in nodes}

    def root(node: str) -> str:
        while parent[node] != node:
            parent[node] = parent[parent[node]]
            node = parent[node]
        return node

    for (a, b), value in pairs.items():
        if value >= threshold:
            ra, rb = root(a), root(b)
            parent[max(ra, rb)] = min(ra, rb)
    return {node: root(node) for node in nodes}


def pair_scores(predicted: dict[str, str], truth: dict[str, str]) -> tuple[float, float, int, int]:
    """Pairwise precision and recall of predicted clusters against true ones."""
    def same(assignment):
        return {pair for pair in itertools.combinations(sorted(assignment), 2)
                if assignment[pair[0]] == assignment[pair[1]]}

    found, wanted = same(predicted), same(truth)
    precision = len(found & wanted) / len(found) if found else 1.0
    recall = len(found & wanted) / len(wanted) if wanted else 1.0
    return precision, recall, len(found), len(wanted)


__all__ = ["components", "ground_truth", "pair_scores", "plant", "sample_books", "words"]
