"""Character BLEU-4 as in ChatGLM-6B ptuning: per-example nltk sentence_bleu (smoothing method3), mean ×100."""

import datasets
import evaluate

from reasongen.metrics.text_checks import sentence_bleu4

_DESCRIPTION = """BLEU-4 on characters, computed per example with nltk `sentence_bleu([list(ref)], list(pred),
smoothing_function=SmoothingFunction().method3)` (uniform 4-gram weights) and averaged, ×100.
The same definition as the published AdvertiseGen numbers (ChatGLM-6B ptuning/main.py). Empty prediction: 0."""

_KWARGS = """predictions: list of generated texts; references: list of reference texts (one per prediction).
Returns {"bleu4": float}."""


class BleuChar(evaluate.Metric):
    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation="",
            inputs_description=_KWARGS,
            features=datasets.Features(
                {"predictions": datasets.Value("string"), "references": datasets.Value("string")}
            ),
        )

    def _compute(self, predictions: list[str], references: list[str]) -> dict[str, float]:
        scores = [sentence_bleu4(p, r) for p, r in zip(predictions, references, strict=True)]
        return {"bleu4": 100.0 * sum(scores) / len(scores) if scores else 0.0}
