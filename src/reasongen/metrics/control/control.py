"""Control accuracy: requested aspect talked about, requested length bucket met, requested keywords used."""

from collections.abc import Sequence

import datasets
import evaluate

from reasongen.text.controls import detect_aspects, length_bucket

_DESCRIPTION = """Over the rows that request a control (an empty string or None requests none), ×100:
aspect_accuracy = share whose requested aspect is among reasongen.text.controls.detect_aspects(text);
length_accuracy = share with reasongen.text.controls.length_bucket(len(text), length_bounds) == requested bucket
(length in characters); keyword_recall = requested keywords present verbatim / all requested keywords (pooled).
A metric that no row requests is None, not 0. n_aspect_rows / n_length_rows / n_keywords say how many were asked."""

_KWARGS = """predictions: generated texts; aspects: requested aspect per row ("" for none); length_buckets: requested
bucket per row ("" for none); keywords: list of requested keywords per row (may be empty).
length_bounds: the two bucket bounds, e.g. [100, 125] (config data.controls.length_bounds)."""


def share(hits: list[bool]) -> float | None:
    """Percentage of True, or None when nothing was asked."""
    return 100.0 * sum(hits) / len(hits) if hits else None


class Control(evaluate.Metric):
    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation="",
            inputs_description=_KWARGS,
            features=datasets.Features(
                {
                    "predictions": datasets.Value("string"),
                    "aspects": datasets.Value("string"),
                    "length_buckets": datasets.Value("string"),
                    "keywords": datasets.Sequence(datasets.Value("string")),
                }
            ),
        )

    def _compute(
        self,
        predictions: list[str],
        aspects: list[str | None],
        length_buckets: list[str | None],
        keywords: list[list[str] | None],
        length_bounds: Sequence[int] | None = None,
    ) -> dict[str, float | None]:
        rows = list(zip(predictions, aspects, length_buckets, keywords, strict=True))
        aspect_hits = [aspect in detect_aspects(text) for text, aspect, _, _ in rows if aspect]
        wanted_lengths = [(text, bucket) for text, _, bucket, _ in rows if bucket]
        if wanted_lengths and length_bounds is None:
            raise ValueError("control metric: length_bounds is required when rows request a length bucket")
        length_hits = [length_bucket(len(text), length_bounds) == bucket for text, bucket in wanted_lengths]
        keyword_hits = [word in text for text, _, _, words in rows for word in words or ()]
        return {
            "aspect_accuracy": share(aspect_hits),
            "length_accuracy": share(length_hits),
            "keyword_recall": share(keyword_hits),
            "n_aspect_rows": len(aspect_hits),
            "n_length_rows": len(length_hits),
            "n_keywords": len(keyword_hits),
        }
