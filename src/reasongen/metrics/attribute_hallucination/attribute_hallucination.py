"""All-key hallucination: texts that name a known value of a key the input lists, which the input does not give."""

from collections.abc import Mapping, Sequence

import evaluate

from reasongen.metrics.module_info import metric_info, percent
from reasongen.metrics.text_quality import attribute_hallucinations, unlisted_details
from reasongen.text.attributes import parse_content

_DESCRIPTION = """attribute_hallucination_rate = share of texts (×100) with at least one
reasongen.metrics.text_quality.attribute_hallucinations hit: for every factual key the input lists (all keys of
value_lexicon but 类型, or `keys`; 风格 without its praise words), a known value of that key (value_lexicon: the
training split's values; 衣领型/裙领型 and the other garment-specific twins share one slot) that the input does
not give. Not counted: values of one character, everyday-word values (GENERIC_VALUES: 线条, 纯色, 收口, ...), a
value inside any input value (蓝色 for 深蓝色, 罗纹 for 罗纹袖口) or implied by one (白色 for 黑白), a value inside a
pairing suggestion (搭配白色t恤). attribute_hallucinations_per_output = mean number of (key, value) hits per text.
unlisted_detail_rate = share of texts (×100) that state a known value of a factual key the input does not list at
all (reasongen.metrics.text_quality.unlisted_details): a detail the shop never gave (a collar on a 西装 without
领型). The human references do this too (17% of the test split), which is their floor.
The narrow faithfulness/hallucination_rate (颜色, 材质 only) is unchanged; this is its all-key view."""

_KWARGS = """predictions: generated texts; contents: the input attribute strings (`类型#裙*颜色#蓝色`);
value_lexicon: {key: [known values]} from the training split; keys: keys to check (default: all but 类型)."""


class AttributeHallucination(evaluate.Metric):
    def _info(self) -> evaluate.MetricInfo:
        return metric_info(_DESCRIPTION, _KWARGS, "predictions", "contents")

    def _compute(
        self,
        predictions: list[str],
        contents: list[str],
        value_lexicon: Mapping[str, Sequence[str]],
        keys: Sequence[str] | None = None,
    ) -> dict[str, float]:
        pairs = [parse_content(content) for content in contents]
        counts = [len(attribute_hallucinations(text, found, value_lexicon, keys))
                  for text, found in zip(predictions, pairs, strict=True)]
        return {
            "attribute_hallucination_rate": percent(count > 0 for count in counts),
            "attribute_hallucinations_per_output": sum(counts) / len(counts) if counts else 0.0,
            "unlisted_detail_rate": percent(bool(unlisted_details(text, found, value_lexicon))
                                            for text, found in zip(predictions, pairs, strict=True)),
        }
