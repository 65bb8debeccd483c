"""PETER's explanation metrics: USR (unique sentence ratio), FMR (feature matching ratio), FCR (feature coverage
ratio), DIV (feature diversity, lower is better)."""

from collections.abc import Mapping, Sequence

import datasets
import evaluate

from reasongen.text.features import Lexicon, find_mentions

_DESCRIPTION = """Definitions of PETER's utils.py, as fractions (not ×100), on whitespace tokens:
USR = distinct predictions (as token sequences) / predictions.
Each prediction's feature set = the vocabulary features it mentions (a feature is mentioned when one of its
surface forms, e.g. `string`/`strings` for `strings`, occurs as consecutive tokens; PETER's single-token match
is the case of one form per feature).
FMR = share of predictions whose feature set contains the row's ground-truth feature.
FCR = distinct features over all predictions / vocabulary size.
DIV = mean over all pairs i < j of |features_i ∩ features_j| (lower: explanations differ more in features)."""

_KWARGS = """predictions: generated texts; features: each row's ground-truth feature;
vocabulary: {feature: [surface forms]}. Returns {"usr", "fmr", "fcr", "div"}."""


def feature_sets(predictions: Sequence[str], vocabulary: Mapping[str, Sequence[str]]) -> list[set[str]]:
    lexicon = Lexicon.from_mapping({"features": dict(vocabulary), "opinions": []})
    return [{name for _, _, name in find_mentions(text.split(), lexicon)} for text in predictions]


def diversity(sets: list[set[str]]) -> float:
    n = len(sets)
    if n < 2:
        return 0.0
    shared = sum(len(sets[i] & sets[j]) for i in range(n) for j in range(i + 1, n))
    return shared / (n * (n - 1) / 2)


class ExplanationFeatures(evaluate.Metric):
    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description=_DESCRIPTION, citation="", inputs_description=_KWARGS,
            features=datasets.Features({"predictions": datasets.Value("string"),
                                        "features": datasets.Value("string")}))

    def _compute(self, predictions: list[str], features: list[str],
                 vocabulary: Mapping[str, Sequence[str]] | None = None) -> dict[str, float]:
        if not vocabulary:
            raise ValueError("explanation_features needs vocabulary={feature: [surface forms]}")
        if not predictions:
            return {"usr": 0.0, "fmr": 0.0, "fcr": 0.0, "div": 0.0}
        sets = feature_sets(predictions, vocabulary)
        return {
            "usr": len({tuple(text.split()) for text in predictions}) / len(predictions),
            "fmr": sum(feature in found for feature, found in zip(features, sets, strict=True)) / len(predictions),
            "fcr": len(set().union(*sets)) / len(vocabulary),
            "div": diversity(sets),
        }
