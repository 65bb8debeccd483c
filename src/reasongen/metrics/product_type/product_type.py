"""Product-type consistency: texts that call the product a garment the input does not describe (这款牛仔裤 for
阔腿裤), or give it parts it cannot have (a collar on trousers)."""

from collections.abc import Mapping, Sequence

import evaluate

from reasongen.metrics.garments import incompatible_parts, product_type_mismatches
from reasongen.metrics.module_info import metric_info, percent
from reasongen.text.attributes import parse_content

_DESCRIPTION = """product_type_mismatch_rate = share of texts (×100) with at least one
reasongen.metrics.garments.product_type_mismatches hit: a garment noun used for the product itself (pairing
suggestions such as 搭配短裤 / 内搭t恤 and comparisons left out; generic words such as 裙子 / 上衣 only with
这款 / 这件 in front) whose category is not the input's 类型, that contradicts an input value, or that names
another kind than the one the input gives in the same facet (length 九分裤, piece 连衣裙, kind 阔腿裤 / 套头衫).
incompatible_part_rate = share of texts (×100) that give a collar or sleeve (the training split's 领型 / 袖长 /
袖型 values, and 袖口 / 领口 / 衣领 and the like) to trousers or a 半身裙 whose input lists none, or trouser legs to
a product that is no trousers (garments.incompatible_parts); None without value_lexicon."""

_KWARGS = """predictions: generated texts; contents: the input attribute strings (`类型#裤*裤型#阔腿裤`);
value_lexicon: {key: [known values]} from the training split (needed for incompatible_part_rate only)."""


class ProductType(evaluate.Metric):
    def _info(self) -> evaluate.MetricInfo:
        return metric_info(_DESCRIPTION, _KWARGS, "predictions", "contents")

    def _compute(
        self,
        predictions: list[str],
        contents: list[str],
        value_lexicon: Mapping[str, Sequence[str]] | None = None,
    ) -> dict[str, float | None]:
        rows = [(text, parse_content(content)) for text, content in zip(predictions, contents, strict=True)]
        result: dict[str, float | None] = {
            "product_type_mismatch_rate": percent(bool(product_type_mismatches(text, pairs)) for text, pairs in rows)}
        if value_lexicon is None:
            return result | {"incompatible_part_rate": None}
        parts = (bool(incompatible_parts(text, pairs, value_lexicon)) for text, pairs in rows)
        return result | {"incompatible_part_rate": percent(parts)}
