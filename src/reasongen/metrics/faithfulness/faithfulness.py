"""Attribute faithfulness: coverage of the input's values and hallucinated values of closed-set keys."""

from collections.abc import Iterable, Mapping, Sequence

import datasets
import evaluate

from reasongen.attributes import Attributes, parse_content, values, values_by_key

_DESCRIPTION = """coverage = mean over texts of the share of the input's distinct attribute values that occur
verbatim in the text, ×100.
hallucination_rate = share of texts (×100) that name, for a checked key the input lists (default 颜色, 材质),
a value of that key from value_lexicon (the values seen in training) that the input does not have.
The input's own values are masked first, longest first, so that 深蓝色 in the input does not make 蓝色 count;
lexicon values of one character (棉, 麻) are ignored as too ambiguous; hallucinated values are matched longest
first and masked too, so one phrase counts once. hallucinated_values_per_output = their mean count per text."""

_KWARGS = """predictions: list of generated texts; contents: the input attribute strings (`类型#裙*颜色#蓝色`).
value_lexicon: {key: [known values]} from the training split (None: no hallucination figures);
hallucination_keys: keys with a closed set of values (default ["颜色", "材质"])."""

_MASK = "\x00"  # cannot occur in text, and breaks adjacency so masking never creates a new match
DEFAULT_KEYS = ("颜色", "材质")


def value_coverage(text: str, pairs: Attributes) -> float:
    """Share of the distinct input values that occur verbatim in text, in [0, 1]."""
    wanted = values(pairs)
    return sum(1 for value in wanted if value in text) / len(wanted) if wanted else 1.0


def mask(text: str, words: Iterable[str]) -> str:
    """text with each word replaced by the mask, longest first."""
    for word in sorted(words, key=lambda w: (-len(w), w)):
        text = text.replace(word, _MASK)
    return text


def hallucinated_values(
    text: str, pairs: Attributes, value_lexicon: Mapping[str, Sequence[str]], keys: Iterable[str]
) -> list[str]:
    """Lexicon values of the checked keys that the input lists but the text names without the input having them."""
    own = values(pairs)
    listed = values_by_key(pairs)
    candidates = {v for key in keys if key in listed for v in value_lexicon.get(key, ()) if len(v) > 1} - set(own)
    remaining = mask(text, own)
    found = []
    for value in sorted(candidates, key=lambda w: (-len(w), w)):
        if value in remaining:
            found.append(value)
            remaining = remaining.replace(value, _MASK)
    return found


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
        hallucination_keys: Sequence[str] = DEFAULT_KEYS,
    ) -> dict[str, float | None]:
        n = len(predictions)
        pairs = [parse_content(content) for content in contents]
        coverage = sum(value_coverage(t, p) for t, p in zip(predictions, pairs, strict=True))
        result: dict[str, float | None] = {"coverage": 100.0 * coverage / n if n else 0.0}
        if value_lexicon is None:
            return result | {"hallucination_rate": None, "hallucinated_values_per_output": None}
        counts = [
            len(hallucinated_values(text, found, value_lexicon, hallucination_keys))
            for text, found in zip(predictions, pairs, strict=True)
        ]
        return result | {
            "hallucination_rate": 100.0 * sum(1 for c in counts if c) / n if n else 0.0,
            "hallucinated_values_per_output": sum(counts) / n if n else 0.0,
        }
