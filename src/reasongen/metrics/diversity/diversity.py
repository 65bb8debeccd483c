"""Corpus diversity of generated texts: distinct-1/2 on characters and the unique-text ratio."""

import datasets
import evaluate

_DESCRIPTION = """On characters (Chinese text has no word boundaries; characters keep it tokenizer-free):
distinct-n = distinct character n-grams / all character n-grams over the whole set of predictions ×100
(n-grams do not cross texts); unique_ratio = distinct predictions / predictions ×100 (PETER's USR, in %).
Characters are taken as they are, whitespace included. No n-grams at all: 0."""

_KWARGS = """predictions: list of generated texts. Returns {"distinct1", "distinct2", "unique_ratio"}."""


def char_ngrams(text: str, n: int) -> list[str]:
    """The character n-grams of one text, in order."""
    return [text[i : i + n] for i in range(len(text) - n + 1)]


def distinct_n(texts: list[str], n: int) -> float:
    """Distinct / all character n-grams over texts, ×100 (0 when there are none)."""
    grams = [gram for text in texts for gram in char_ngrams(text, n)]
    return 100.0 * len(set(grams)) / len(grams) if grams else 0.0


class Diversity(evaluate.Metric):
    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation="",
            inputs_description=_KWARGS,
            features=datasets.Features({"predictions": datasets.Value("string")}),
        )

    def _compute(self, predictions: list[str]) -> dict[str, float]:
        unique = 100.0 * len(set(predictions)) / len(predictions) if predictions else 0.0
        return {
            "distinct1": distinct_n(predictions, 1),
            "distinct2": distinct_n(predictions, 2),
            "unique_ratio": unique,
        }
