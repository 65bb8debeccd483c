"""Repeated phrases: texts that say a clause twice, loop on a phrase or wear out a word."""

from collections.abc import Sequence

import evaluate

from reasongen.metrics.module_info import metric_info, percent
from reasongen.metrics.text_quality import repeated_phrases
from reasongen.text.attributes import parse_content, values

_DESCRIPTION = """repetition_rate = share of texts (×100) with at least one
reasongen.metrics.text_quality.repeated_phrases hit: a clause (split on every punctuation mark, normalised to lower
case without punctuation, 3+ characters) said twice; a character 4-gram three or more times in the text (garment
nouns aside: naming the product thrice is fine); a 3-gram three times inside one clause (牛仔裤是牛仔裤的牛仔裤);
a unit of 2-4 characters twice in a row or again after 又/也/还/更 (镂空镂空, 显瘦又显瘦, but 一丝一丝); a word as its
own modifier (显瘦的显瘦); a two-character word max(4, length / 25) times (设计, garment nouns and the input's values
aside)."""

_KWARGS = """predictions: list of generated texts; contents: the input attribute strings (optional: a word of the
input's values may recur). Returns {"repetition_rate"}."""


class Repetition(evaluate.Metric):
    def _info(self) -> evaluate.MetricInfo:
        return metric_info(_DESCRIPTION, _KWARGS, "predictions")

    def _compute(self, predictions: list[str], contents: Sequence[str] | None = None) -> dict[str, float]:
        if contents is not None and len(contents) != len(predictions):
            raise ValueError(f"repetition: {len(predictions)} texts for {len(contents)} contents")
        if contents is None:
            given = [()] * len(predictions)
        else:
            given = [values(parse_content(content)) for content in contents]
        flags = (bool(repeated_phrases(text, given=own)) for text, own in zip(predictions, given, strict=True))
        return {"repetition_rate": percent(flags)}
