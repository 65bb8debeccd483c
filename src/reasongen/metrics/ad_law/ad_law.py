"""Advertising-law compliance: share of texts that use a banned absolute claim (reasongen.text.controls word list)."""

import datasets
import evaluate

from reasongen.text.controls import find_violations

_DESCRIPTION = """violation_rate = share of predictions with at least one hit of reasongen.text.controls.find_violations
(resources/banned_words.txt: 最 as a superlative but not 最近/最后/最初/最终, 第一, 国家级, ...) ×100;
violations = total number of (text, banned entry) hits."""

_KWARGS = """predictions: list of generated texts. Returns {"violation_rate", "violations"}."""


class AdLaw(evaluate.Metric):
    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation="",
            inputs_description=_KWARGS,
            features=datasets.Features({"predictions": datasets.Value("string")}),
        )

    def _compute(self, predictions: list[str]) -> dict[str, float]:
        hits = [len(find_violations(text)) for text in predictions]
        rate = 100.0 * sum(1 for h in hits if h) / len(hits) if hits else 0.0
        return {"violation_rate": rate, "violations": sum(hits)}
