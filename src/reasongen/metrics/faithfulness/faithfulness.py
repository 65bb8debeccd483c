"""Attribute faithfulness: coverage of the input's values and hallucinated values of closed-set keys."""

from collections.abc import Mapping, Sequence

import datasets
import evaluate

from reasongen.metrics.text_checks import hallucinated_values, value_coverage
from reasongen.text.attributes import parse_content

_DESCRIPTION = """coverage = mean over texts of the share of the input's distinct attribute values that occur
verbatim in the text, ×100.
hallucination_rate = share of texts (×100) that name, for a checked key the input lists (evaluate.hallucination_keys),
a value of that key from value_lexicon (the values seen in training) that the input does not have.
The input's own values are masked first, longest first, so that 深蓝色 in the input does not make 蓝色 count;
lexicon values of one character (棉, 麻) are ignored as too ambiguous; hallucinated values are matched longest
first and masked too, so one phrase counts once. hallucinated_values_per_output = their mean count per text."""

_KWARGS = """predictions: list of generated texts; contents: the input attribute strings (`类型#裙*颜色#蓝色`).
value_lexicon: {key: [known values]} from the training split (None: no hallucination figures);
hallucination_keys: keys with a closed set of values (config evaluate.hallucination_keys); needed with
value_lexicon."""


class Faithfulness(evaluate.Metric):
    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation="",
            inputs_description=_KWARGS,
            features=datasets.Features({"predictions": datasets.Value("string"), "contents": datasets.Value("string")}),
        )

    def _compute(
        self,
        predictions: list[str],
        contents: list[str],
        value_lexicon: Mapping[str, Sequence[str]] | None = None,
        hallucination_keys: Sequence[str] | None = None,
    ) -> dict[str, float | None]:
        n = len(predictions)
        pairs = [parse_content(content) for content in contents]
        coverage = sum(value_coverage(t, p) for t, p in zip(predictions, pairs, strict=True))
        result: dict[str, float | None] = {"coverage": 100.0 * coverage / n if n else 0.0}
        if value_lexicon is None:
            return result | {"hallucination_rate": None, "hallucinated_values_per_output": None}
        if hallucination_keys is None:
            raise ValueError("faithfulness: value_lexicon needs hallucination_keys (evaluate.hallucination_keys)")
        counts = [
            len(hallucinated_values(text, found, value_lexicon, hallucination_keys))
            for text, found in zip(predictions, pairs, strict=True)
        ]
        return result | {
            "hallucination_rate": 100.0 * sum(1 for c in counts if c) / n if n else 0.0,
            "hallucinated_values_per_output": sum(counts) / n if n else 0.0,
        }
