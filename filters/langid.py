"""Language identification with fastText ``lid.176`` (top-1 label and its score)."""

from __future__ import annotations

from redpajama.filters import models
from redpajama.filters.base import Record, Step, StepResult


class LanguageTagger(Step):
    """Adds ``meta.language`` and ``meta.language_score`` (rounded to 2 decimals); drops nothing.

    fastText sees the text with newlines replaced by spaces. The model is called with a
    list: fastText 0.9 with NumPy 2 raises when ``predict`` gets a single string.
    """

    name = "language_id"
    description = "language_id: fastText lid.176 top-1 label and score into meta (recorded, not filtered)"

    def __init__(self, model_location: str):
        self.model_location = model_location
        self._model = None

    def setup(self) -> None:
        self._model = models.load_fasttext(self.model_location)

    def predict(self, text: str) -> tuple[str, float]:
        if self._model is None:
            self.setup()
        labels, scores = self._model.predict([text.replace("\n", " ")], k=1)
        if not labels[0]:
            return "", 0.0
        return labels[0][0].removeprefix("__label__"), round(float(scores[0][0]), 2)

    def apply(self, record: Record) -> StepResult:
        language, score = self.predict(record["text"])
        record["meta"]["language"] = language
        record["meta"]["language_score"] = score
        return record
