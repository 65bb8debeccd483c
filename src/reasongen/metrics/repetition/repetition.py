"""Repeated phrases: texts that say a clause twice or loop on a phrase."""

import evaluate

from reasongen.metrics.module_info import metric_info, percent
from reasongen.metrics.text_quality import repeated_phrases

_DESCRIPTION = """repetition_rate = share of texts (×100) with at least one
reasongen.metrics.text_quality.repeated_phrases hit: a clause (split on every punctuation mark, normalised to lower
case without punctuation, 3+ characters) said twice; a character 4-gram three or more times in the text (garment
nouns aside: naming the product thrice is fine); a 3-gram three times inside one clause (牛仔裤是牛仔裤的牛仔裤);
a unit of 2-4 characters twice in a row (镂空镂空, but 一丝一丝)."""

_KWARGS = """predictions: list of generated texts. Returns {"repetition_rate"}."""


class Repetition(evaluate.Metric):
    def _info(self) -> evaluate.MetricInfo:
        return metric_info(_DESCRIPTION, _KWARGS, "predictions")

    def _compute(self, predictions: list[str]) -> dict[str, float]:
        return {"repetition_rate": percent(bool(repeated_phrases(text)) for text in predictions)}
