"""The Wikipedia-reference quality classifier: fastText, ``wiki_prob`` = P(wiki).

Scoring follows RedPajama's ``classify.py``: the text's lines are joined with spaces,
the top-1 label is predicted and ``wiki_prob`` is its probability when the label is
``wiki``, else one minus it. Training follows its recipe too (fastText defaults, labels
``__label__wiki`` and ``__label__cc``), on the data ``redpajama models build`` gives it.
"""

from __future__ import annotations

import os
import random
import tempfile
from collections.abc import Iterable

from redpajama.core.records import Drop, Record, Step, StepResult
from redpajama.models import catalog

WIKI = "__label__wiki"
CC = "__label__cc"
THRESHOLD = 0.25
# fastText's defaults, which RedPajama trained with; one thread keeps training deterministic.
TRAINING = {"lr": 0.1, "dim": 100, "epoch": 5, "wordNgrams": 1, "minCount": 1, "loss": "softmax", "thread": 1}
SMALL_CORPUS = 100_000
SMALL_CORPUS_OVERRIDES = {"lr": 0.5, "epoch": 50}


def one_line(text: str) -> str:
    return " ".join(text.strip().splitlines())


class WikiReferenceClassifier(Step):
    """Adds ``wiki_prob``; keeps documents with ``wiki_prob >= threshold`` (RedPajama: 0.25)."""

    name = "wikiref"

    def __init__(self, model_location: str, threshold: float = THRESHOLD):
        self.model_location = model_location
        self.threshold = threshold
        self.description = f"wikiref: fastText Wikipedia-reference classifier, keep wiki_prob >= {threshold}"
        self._model = None

    def setup(self) -> None:
        self._model = catalog.load_fasttext(self.model_location)

    def wiki_prob(self, text: str) -> float:
        if self._model is None:
            self.setup()
        labels, probs = self._model.predict([one_line(text)], k=1)
        probability = min(1.0, float(probs[0][0]))
        return round(probability if labels[0][0] == WIKI else 1.0 - probability, 4)

    def apply(self, record: Record) -> StepResult:
        value = self.wiki_prob(record["text"])
        record["meta"]["wiki_prob"] = value
        return record if value >= self.threshold else Drop("wiki_prob_below_threshold")


def training_parameters(examples: int) -> dict:
    """fastText's defaults (RedPajama's) on a real-size corpus. Below ``SMALL_CORPUS`` examples
    those defaults leave every probability at 0.5 (measured on the sample data), so small
    builds train longer with a higher learning rate."""
    return dict(TRAINING, **SMALL_CORPUS_OVERRIDES) if examples < SMALL_CORPUS else dict(TRAINING)


def _fit(lines: list[str], parameters: dict, seed: int):
    import fasttext

    with tempfile.NamedTemporaryFile("w", suffix=".txt", encoding="utf-8", delete=False) as handle:
        handle.write("\n".join(lines) + "\n")
    try:
        return fasttext.train_supervised(input=handle.name, seed=seed, verbose=0, **parameters)
    finally:
        os.unlink(handle.name)


def _accuracy(model, lines: list[str]) -> float:
    labels = [line.split(" ", 1)[0] for line in lines]
    predicted, _ = model.predict([line.split(" ", 1)[1] for line in lines], k=1)
    return sum(p[0] == label for p, label in zip(predicted, labels, strict=True)) / len(lines)


def train(positives: Iterable[str], negatives: Iterable[str], output: str, seed: int = 0) -> dict:
    """Train the classifier on wiki (positive) and web (negative) texts; writes ``output``.

    A held-out fifth measures accuracy first; the saved model is trained on everything.
    Returns the parameters, example counts and held-out accuracy for the models manifest.
    """
    lines = [f"{WIKI} {one_line(text)}" for text in positives]
    wiki = len(lines)
    lines += [f"{CC} {one_line(text)}" for text in negatives]
    if wiki == 0 or wiki == len(lines):
        raise ValueError("the classifier needs both wiki and web examples")
    random.Random(seed).shuffle(lines)
    parameters = training_parameters(len(lines))
    cut = len(lines) * 4 // 5
    held_out = _accuracy(_fit(lines[:cut], parameters, seed), lines[cut:]) if cut < len(lines) else None
    _fit(lines, parameters, seed).save_model(output)
    return {
        "parameters": dict(parameters, seed=seed),
        "examples": {"wiki": wiki, "cc": len(lines) - wiki},
        "held_out_accuracy": None if held_out is None else round(held_out, 4),
    }
