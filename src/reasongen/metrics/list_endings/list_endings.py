"""List endings: texts that glue a list of bare attribute phrases together (显瘦版型，性感风格，蝴蝶结元素)."""

from collections.abc import Mapping, Sequence

import evaluate

from reasongen.metrics.module_info import metric_info, percent
from reasongen.metrics.text_quality import known_values, list_endings
from reasongen.text.attributes import parse_content

_DESCRIPTION = """list_ending_rate = share of texts (×100) with a run of three or more consecutive bare attribute
clauses (reasongen.metrics.text_quality.list_endings): clauses, split on ，。！？； (not 、, prose's enumeration
mark), that are only an attribute value (any value of value_lexicon or of the row's input), optionally followed by
风格 / 元素 / 设计 / 版型 / 图案 / 材质 / 面料 / 颜色 / 配色 / 款式 / 领 / 袖 / 风, or 采用X面料; no predicate."""

_KWARGS = """predictions: generated texts; value_lexicon: {key: [known values]} from the training split;
contents: the input attribute strings (optional: their values count as attribute values too)."""


class ListEndings(evaluate.Metric):
    def _info(self) -> evaluate.MetricInfo:
        return metric_info(_DESCRIPTION, _KWARGS, "predictions")

    def _compute(
        self,
        predictions: list[str],
        value_lexicon: Mapping[str, Sequence[str]],
        contents: Sequence[str] | None = None,
    ) -> dict[str, float]:
        lexicon = known_values(value_lexicon)
        if contents is None:
            flags = (bool(list_endings(text, lexicon)) for text in predictions)
        else:
            flags = (bool(list_endings(text, lexicon | known_values({}, parse_content(content))))
                     for text, content in zip(predictions, contents, strict=True))
        return {"list_ending_rate": percent(flags)}
