"""ROUGE-1/2/L F on jieba words as in ChatGLM-6B ptuning: per-example rouge_chinese scores, mean ×100."""

from functools import lru_cache

import datasets
import evaluate
import jieba
from rouge_chinese import Rouge

_DESCRIPTION = """ROUGE-1/2/L F-scores of `rouge_chinese.Rouge().get_scores(' '.join(jieba.cut(pred)),
' '.join(jieba.cut(ref)))`, per example, averaged, ×100 (ChatGLM-6B ptuning/main.py).
A prediction or reference with no tokens scores 0 (rouge_chinese raises on it)."""

_KWARGS = """predictions: list of generated texts; references: list of reference texts (one per prediction).
Returns {"rouge1", "rouge2", "rougeL"}."""

_KEYS = {"rouge-1": "rouge1", "rouge-2": "rouge2", "rouge-l": "rougeL"}
_ROUGE = Rouge()


@lru_cache(maxsize=65536)  # the evaluate stage scores several systems against the same references
def words(text: str) -> str:
    """text as jieba words joined by spaces."""
    return " ".join(jieba.cut(text))


@lru_cache(maxsize=65536)  # ... and its systems share many texts (the decoding ablation chooses from one pool)
def sentence_rouge(prediction: str, reference: str) -> dict[str, float]:
    """One example's ROUGE F-scores in [0, 1], keyed rouge1/rouge2/rougeL."""
    hypothesis, gold = words(prediction), words(reference)
    if not hypothesis.split() or not gold.split():
        return dict.fromkeys(_KEYS.values(), 0.0)
    scores = _ROUGE.get_scores(hypothesis, gold)[0]
    return {name: scores[key]["f"] for key, name in _KEYS.items()}


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
        return {name: 100.0 * sum(s[name] for s in per_example) / n for name in _KEYS.values()}
