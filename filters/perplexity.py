"""Perplexity with sentencepiece + KenLM, and cc_net's head/middle/tail buckets.

The formula is cc_net's: the whole document is normalised (which glues its lines into
one), split into sentencepiece pieces and scored by KenLM with sentence boundaries;
``perplexity = round(10 ** (-log10_score / (pieces + 1)), 1)``. Buckets come from the
per-language percentile cutoffs measured with the same model: head below the 30th
percentile, middle below the 60th, tail above.
"""

from __future__ import annotations

import csv
import functools
import io
import json
import os
from dataclasses import dataclass

from redpajama.core.records import Drop, Record, Step, StepResult
from redpajama.filters.normalize import normalize
from redpajama.models import catalog

HEAD_PERCENTILE = 30
TAIL_PERCENTILE = 60
NO_BUCKET = "all"  # cc_net's bucket for a language without cutoffs
CCNET = "ccnet"  # names cc_net's cutoff table, shipped in manifests/ccnet_cutoffs.json


def perplexity(log10_score: float, length: int) -> float:
    """cc_net's ``pp``: 10 ** (-score / length)."""
    return 10.0 ** (-log10_score / length)


@functools.lru_cache(maxsize=8)
def load_sentencepiece(location: str):
    import sentencepiece

    return sentencepiece.SentencePieceProcessor(model_file=catalog.fetch(location, os.path.basename(location)))


@functools.lru_cache(maxsize=8)
def load_kenlm(location: str):
    """A KenLM model, memory-mapped (binary models) so worker processes share its pages."""
    import kenlm

    config = kenlm.Config()
    config.load_method = kenlm.LoadMethod.POPULATE_OR_LAZY
    return kenlm.Model(catalog.fetch(location, os.path.basename(location)), config)


class DocumentScorer:
    """Scores documents of one language; models load on first use, once per process."""

    def __init__(self, sp_model: str, lm_model: str):
        self.sp_model = sp_model
        self.lm_model = lm_model

    def setup(self) -> None:
        self._sp = load_sentencepiece(self.sp_model)
        self._lm = load_kenlm(self.lm_model)

    def pieces(self, text: str) -> list[str]:
        return self._sp.encode(normalize(text), out_type=str)

    def score(self, text: str) -> float:
        """The document's perplexity, rounded to one decimal as cc_net stores it."""
        if not hasattr(self, "_lm"):
            self.setup()
        pieces = self.pieces(text)
        log10_score = self._lm.score(" ".join(pieces), bos=True, eos=True)
        return round(perplexity(log10_score, len(pieces) + 1), 1)


@dataclass(frozen=True)
class Cutoffs:
    """Per-language (head, tail) perplexity cutoffs and where they came from."""

    by_language: dict[str, tuple[float, float]]
    origin: str

    @classmethod
    def from_csv(cls, text: str, origin: str, head: int = HEAD_PERCENTILE, tail: int = TAIL_PERCENTILE) -> Cutoffs:
        """cc_net's ``cutoff.csv`` layout: one column per language, one row per percentile 0..100."""
        rows = list(csv.reader(io.StringIO(text)))
        languages = rows[0][1:]
        table = {int(float(row[0])): row[1:] for row in rows[1:] if row and row[0] != ""}
        if head not in table or tail not in table:
            raise ValueError(f"{origin}: no rows for percentiles {head} and {tail}")
        return cls(
            {lang: (float(table[head][i]), float(table[tail][i])) for i, lang in enumerate(languages)},
            origin,
        )

    @classmethod
    def from_json(cls, data: dict, origin: str) -> Cutoffs:
        """A ``{"percentiles": [30, 60], "cutoffs": {lang: [head, tail]}}`` table."""
        if list(data.get("percentiles", [])) != [HEAD_PERCENTILE, TAIL_PERCENTILE]:
            raise ValueError(f"{origin}: expected the {HEAD_PERCENTILE}th/{TAIL_PERCENTILE}th percentiles")
        return cls({lang: (float(head), float(tail)) for lang, (head, tail) in data["cutoffs"].items()}, origin)

    @classmethod
    def load(cls, location: str) -> Cutoffs:
        """From a cc_net-style CSV, a JSON table, or ``ccnet`` for cc_net's own table."""
        if location == CCNET:
            from redpajama import manifests

            return cls.from_json(manifests.load("ccnet_cutoffs"), CCNET)
        with open(catalog.fetch(location, os.path.basename(location)), encoding="utf-8") as handle:
            text = handle.read()
        if location.endswith(".json"):
            return cls.from_json(json.loads(text), location)
        return cls.from_csv(text, location)

    def bucket(self, language: str, value: float) -> str:
        if language not in self.by_language or value < 0:
            return NO_BUCKET
        head, tail = self.by_language[language]
        if value < head:
            return "head"
        if value < tail:
            return "middle"
        return "tail"


def percentile_table(values_by_language: dict[str, list[float]]) -> str:
    """A cutoff table in cc_net's CSV layout: percentiles 0..100 of each language's perplexities.

    Percentiles use linear interpolation between order statistics (NumPy's default).
    """
    import numpy

    languages = sorted(values_by_language)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["", *languages])
    columns = [numpy.percentile(numpy.asarray(values_by_language[lang]), range(101)) for lang in languages]
    for percentile in range(101):
        writer.writerow([percentile, *(round(float(column[percentile]), 1) for column in columns)])
    return out.getvalue()


class PerplexityBuckets(Step):
    """Adds ``perplexity`` and ``bucket``; drops documents outside ``keep`` (cc_net: tail)."""

    name = "perplexity"

    def __init__(self, scorers: dict[str, DocumentScorer], cutoffs_location: str, keep: tuple[str, ...] = ("head", "middle")):
        self.scorers = scorers
        self.cutoffs_location = cutoffs_location
        self.keep = keep
        self.description = (
            "perplexity: cc_net-normalised text -> sentencepiece -> KenLM 5-gram; bucket by the "
            f"model's 30th/60th percentile cutoffs; keep {', '.join(keep)}"
        )

    def setup(self) -> None:
        for scorer in self.scorers.values():
            scorer.setup()
        self._cutoffs = Cutoffs.load(self.cutoffs_location)

    def apply(self, record: Record) -> StepResult:
        if not hasattr(self, "_cutoffs"):
            self.setup()
        meta = record["meta"]
        scorer = self.scorers.get(meta.get("language"))
        if scorer is None:
            return Drop("no_language_model")
        value = scorer.score(record["text"])
        bucket = self._cutoffs.bucket(meta["language"], value)
        meta["perplexity"] = value
        meta["bucket"] = bucket
        return record if bucket in self.keep else Drop(f"bucket_{bucket}")
