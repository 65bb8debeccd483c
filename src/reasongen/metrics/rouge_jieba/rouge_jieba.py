"""ROUGE-1/2/L F on jieba words as in ChatGLM-6B ptuning: per-example rouge_chinese scores, mean ×100."""

from functools import lru_cache

import datasets
import evaluate
from rouge_chinese import Rouge

from reasongen.metrics.text_checks import jieba_words, sentence_rouge_l

_DESCRIPTION = """ROUGE-1/2/L F-scores of `rouge_chinese.Rouge().get_scores(' '.join(jieba.cut(pred)),
' '.join(jieba.cut(ref)))`, per example, averaged, ×100 (ChatGLM-6B ptuning/main.py).
A prediction or reference with no tokens scores 0 (rouge_chinese raises on it). ROUGE-L is text_checks'
sentence_rouge_l: the same number, faster (selection scores candidates with it)."""

_KWARGS = """predictions: list of generated texts; references: list of reference texts (one per prediction).
Returns {"rouge1", "rouge2", "rougeL"}."""

_KEYS = {"rouge-1": "rouge1", "rouge-2": "rouge2"}
_ROUGE = Rouge(metrics=list(_KEYS))
_NAMES = (*_KEYS.values(), "rougeL")


@lru_cache(maxsize=65536)  # the evaluate stage's systems share many texts (the decoding ablation chooses from one pool)
def sentence_rouge(prediction: str, reference: str) -> dict[str, float]:
    """One example's ROUGE F-scores in [0, 1], keyed rouge1/rouge2/rougeL."""
    hypothesis, gold = jieba_words(prediction), jieba_words(reference)
    if not hypothesis or not gold:
        return dict.fromkeys(_NAMES, 0.0)
    scores = _ROUGE.get_scores(" ".join(hypothesis), " ".join(gold))[0]
    found = {name: scores[key]["f"] for key, name in _KEYS.items()}
    return {**found, "rougeL": sentence_rouge_l(prediction, reference)}


class RougeJieba(evaluate.Metric):
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
        per_example = [sentence_rouge(p, r) for p, r in zip(predictions, references, strict=True)]
        n = max(len(per_example), 1)
        return {name: 100.0 * sum(s[name] for s in per_example) / n for name in _NAMES}
