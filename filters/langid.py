"""Language identification with fastText ``lid.176`` (top-1 label and its score)."""

from __future__ import annotations

from redpajama.core.records import Drop, Record, Step, StepResult
from redpajama.models import catalog


class LanguageTagger(Step):
    """Adds ``meta.language`` and ``meta.language_score`` (rounded to 2 decimals); drops nothing.

    fastText sees the text with each newline replaced by ``newline`` (a space by default;
    cc_net deletes them). The model is called with a list: fastText 0.9 with NumPy 2
    raises when ``predict`` gets a single string.
    """

    name = "language_id"
    description = "language_id: fastText lid.176 top-1 label and score into meta (recorded, not filtered)"

    def __init__(self, model_location: str, newline: str = " "):
        self.model_location = model_location
        self.newline = newline
        self._model = None

    def setup(self) -> None:
        self._model = catalog.load_fasttext(self.model_location)

    def predict(self, text: str) -> tuple[str, float]:
        if self._model is None:
            self.setup()
        labels, scores = self._model.predict([text.replace("\n", self.newline)], k=1)
        if not labels[0]:
            return "", 0.0
        return labels[0][0].removeprefix("__label__"), round(float(scores[0][0]), 2)

    def apply(self, record: Record) -> StepResult:
        language, score = self.predict(record["text"])
        record["meta"]["language"] = language
        record["meta"]["language_score"] = score
        return record


class LanguageFilter(LanguageTagger):
    """cc_net's ``lid`` + ``keep_lang``: top-1 label, score rounded to 2 decimals, a document
    scoring below ``threshold`` gets no language; keep only ``languages``."""

    name = "language_id"

    def __init__(self, model_location: str, languages: tuple[str, ...] = ("en",), threshold: float = 0.5):
        super().__init__(model_location, newline="")
        self.languages = tuple(languages)
        self.threshold = threshold
        self.description = (
            f"language_id: fastText lid.176 top-1 (newlines deleted, as cc_net), score >= {threshold}, "
            f"keep {', '.join(self.languages)}"
        )

    def apply(self, record: Record) -> StepResult:
        language, score = self.predict(record["text"])
        if score < self.threshold:
            return Drop("language_score_below_threshold", scores={"language": language, "language_score": score})
        record["meta"]["language"] = language
        record["meta"]["language_score"] = score
        return record if language in self.languages else Drop("language_not_kept")
