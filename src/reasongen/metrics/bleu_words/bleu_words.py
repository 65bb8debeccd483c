"""Corpus BLEU-1 and BLEU-4 on whitespace tokens, PETER's definition (utils.bleu_score: TF-NMT compute_bleu,
no smoothing), ×100."""

import math
from collections import Counter

import datasets
import evaluate

_DESCRIPTION = """PETER/PEPLER's BLEU (their utils.bleu_score, the TensorFlow NMT compute_bleu): tokens are the
whitespace-split texts; over the whole corpus, modified n-gram precisions p_1..p_N (clipped counts), geometric
mean with uniform weights (0 if any p_n is 0: no smoothing), times the brevity penalty exp(1 - r/c) when the
total prediction length c is below the total reference length r. BLEU-1: N=1, BLEU-4: N=4; ×100."""

_KWARGS = """predictions: generated texts; references: one reference text per prediction.
Returns {"bleu1": float, "bleu4": float}."""


def ngram_counts(tokens: list[str], max_order: int) -> Counter:
    return Counter(tuple(tokens[i : i + n]) for n in range(1, max_order + 1) for i in range(len(tokens) - n + 1))


def corpus_bleu(references: list[list[str]], predictions: list[list[str]], max_order: int) -> float:
    """compute_bleu(smooth=False) of the TensorFlow NMT code PETER uses, in [0, 1]."""
    matches, possible = [0] * max_order, [0] * max_order
    reference_length = prediction_length = 0
    for reference, prediction in zip(references, predictions, strict=True):
        reference_length += len(reference)
        prediction_length += len(prediction)
        overlap = ngram_counts(prediction, max_order) & ngram_counts(reference, max_order)
        for ngram, count in overlap.items():
            matches[len(ngram) - 1] += count
        for order in range(1, max_order + 1):
            possible[order - 1] += max(0, len(prediction) - order + 1)
    precisions = [m / p if p else 0.0 for m, p in zip(matches, possible, strict=True)]
    if min(precisions) <= 0 or prediction_length == 0:
        return 0.0
    geo_mean = math.exp(sum(math.log(p) for p in precisions) / max_order)
    ratio = prediction_length / reference_length if reference_length else 1.0
    return geo_mean * (1.0 if ratio > 1.0 else math.exp(1 - 1.0 / ratio))


class BleuWords(evaluate.Metric):
    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description=_DESCRIPTION, citation="", inputs_description=_KWARGS,
            features=datasets.Features({"predictions": datasets.Value("string"),
                                        "references": datasets.Value("string")}))

    def _compute(self, predictions: list[str], references: list[str]) -> dict[str, float]:
        refs, preds = [r.split() for r in references], [p.split() for p in predictions]
        return {"bleu1": 100.0 * corpus_bleu(refs, preds, 1), "bleu4": 100.0 * corpus_bleu(refs, preds, 4)}
