"""Keep rules of the model steps (with stand-in models)."""

import numpy
import pytest
from redpajama.core.records import Drop
from redpajama.filters.langid import LanguageFilter
from redpajama.filters.perplexity import CCNET, Cutoffs, percentile_table
from redpajama.filters.wikiref import WikiReferenceClassifier


class FixedModel:
    """Answers every ``predict`` like fastText 0.9 does for a list input."""

    def __init__(self, label, probability):
        self.label, self.probability = label, probability
        self.seen = []

    def predict(self, texts, k=1):
        assert isinstance(texts, list)  # a bare string raises with NumPy 2
        self.seen += texts
        return [[self.label]] * len(texts), [numpy.array([self.probability], dtype=numpy.float32)] * len(texts)


def _record(text="Some text\nmore"):
    return {"text": text, "meta": {}}


@pytest.mark.parametrize("label,score,expected", [
    ("__label__en", 0.50, "en"),
    ("__label__en", 0.495, "en"),  # rounded to 0.5 first, as cc_net rounds before the threshold
    ("__label__en", 0.494, Drop("language_score_below_threshold")),
    ("__label__de", 0.99, Drop("language_not_kept")),
])
def test_language_threshold_and_kept_languages(label, score, expected):
    step = LanguageFilter("unused", ("en",), 0.5)
    step._model = FixedModel(label, score)
    result = step.apply(_record())
    if isinstance(expected, Drop):
        assert result == expected
    else:
        assert result["meta"]["language"] == expected
    assert step._model.seen == ["Some textmore"]  # cc_net deletes newlines, no space


@pytest.mark.parametrize("label,probability,wiki_prob,kept", [
    ("__label__wiki", 0.9, 0.9, True),
    ("__label__cc", 0.75, 0.25, True),  # the edge is kept: wiki_prob >= 0.25
    ("__label__cc", 0.76, 0.24, False),
    ("__label__wiki", 1.00001, 1.0, True),
])
def test_wikiref_keep_rule(label, probability, wiki_prob, kept):
    step = WikiReferenceClassifier("unused")
    step._model = FixedModel(label, probability)
    result = step.apply(_record(" line one\nline two "))
    assert step._model.seen == ["line one line two"]
    if kept:
        assert result["meta"]["wiki_prob"] == pytest.approx(wiki_prob, abs=1e-4)
    else:
        assert result == Drop("wiki_prob_below_threshold")


def test_bucket_edges_with_cc_net_cutoffs():
    cutoffs = Cutoffs.load(CCNET)
    assert cutoffs.by_language["en"] == (340.0, 520.0)
    assert [cutoffs.bucket("en", value) for value in (339.9, 340.0, 519.9, 520.0)] == ["head", "middle", "middle", "tail"]
    assert cutoffs.bucket("xx", 10.0) == "all"


def test_cutoff_table_round_trips_through_cc_net_layout():
    table = percentile_table({"en": [float(v) for v in range(1, 101)]})
    cutoffs = Cutoffs.from_csv(table, "test")
    assert cutoffs.by_language["en"] == (30.7, 60.4)  # linear interpolation, one decimal
