"""The project's metrics: local `evaluate` modules (one folder each) and `score`, which runs them all."""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import Any

METRICS_DIR = Path(__file__).parent
# Every metric module, in report order; `score` runs them all.
REFERENCE_METRICS = ("bleu_char", "rouge_jieba")  # need a reference text
REFERENCE_FREE_METRICS = ("diversity", "faithfulness", "control", "ad_law")
METRIC_MODULES = REFERENCE_METRICS + REFERENCE_FREE_METRICS
# Task A text quality (issue 12): all-key hallucination, product type, repeated phrases, list endings; reference-free,
# computed by score_text_quality (on the references too, by passing their texts as the predictions).
TEXT_QUALITY_METRICS = ("attribute_hallucination", "product_type", "repetition", "list_endings", "cut_off")
# Task B (personalized explanations, English): PETER's definitions, and an embedding similarity.
EXPLAIN_METRICS = ("bleu_words", "rouge_words", "explanation_features", "semantic_similarity")
KNOWN_MODULES = METRIC_MODULES + TEXT_QUALITY_METRICS + EXPLAIN_METRICS

# What a reader rejects, as rates: the objective subtracts them.
FAULT_RATES = ("attribute_hallucination_rate", "unlisted_detail_rate", "product_type_mismatch_rate", "repetition_rate",
               "list_ending_rate", "cut_off_rate")
# The control-following metrics: measured only when the prompt carries controls (evaluate.control_table).
CONTROL_METRICS = ("aspect_accuracy", "length_accuracy", "keyword_recall")

Row = dict[str, Any]
Scores = dict[str, float | None]


@cache
def load(name: str) -> Any:
    """The evaluate module `name` (a folder beside this file), loaded by path so it works offline; cached."""
    import evaluate  # heavy import, only when a metric is first needed

    if name not in KNOWN_MODULES:
        raise ValueError(f"unknown metric module {name!r}; known: {', '.join(KNOWN_MODULES)}")
    return evaluate.load(str(METRICS_DIR / name))


def options(cfg: Any, value_lexicon: dict[str, list[str]]) -> dict[str, Any]:
    """score's keyword arguments from the composed config: the one mapping of config to scoring."""
    return {"value_lexicon": value_lexicon, "length_bounds": list(cfg.data.controls.length_bounds),
            "hallucination_keys": list(cfg.evaluate.hallucination_keys)}


def score(
    predictions: list[str],
    rows: list[Row],
    *,
    value_lexicon: dict[str, list[str]],
    length_bounds: Sequence[int],
    hallucination_keys: Sequence[str],
    use_controls: bool = True,
) -> Scores:
    """Every metric of predictions[i] against rows[i] (its `summary` is the reference), as one flat dict.

    use_controls=False: the texts were generated without controls, so the control metrics are None.
    """
    if len(predictions) != len(rows):
        raise ValueError(f"score: {len(predictions)} predictions for {len(rows)} rows")
    references = [row["summary"] for row in rows]
    result: Scores = {}
    for name in REFERENCE_METRICS:
        result |= load(name).compute(predictions=predictions, references=references)
    result |= _reference_free(predictions, rows, value_lexicon, length_bounds, hallucination_keys, use_controls)
    return result


def score_references(
    rows: list[Row],
    *,
    value_lexicon: dict[str, list[str]],
    length_bounds: Sequence[int],
    hallucination_keys: Sequence[str],
    use_controls: bool = True,
) -> Scores:
    """The reference-free metrics of the human references themselves (a ceiling row); BLEU/ROUGE are None."""
    texts = [row["summary"] for row in rows]
    result: Scores = dict.fromkeys(("bleu4", "rouge1", "rouge2", "rougeL"))
    return result | _reference_free(texts, rows, value_lexicon, length_bounds, hallucination_keys, use_controls)


def _reference_free(
    texts: list[str],
    rows: list[Row],
    lexicon: dict[str, list[str]],
    length_bounds: Sequence[int],
    hallucination_keys: Sequence[str],
    use_controls: bool,
) -> Scores:
    """Diversity, faithfulness, control, ad-law, text quality, length and count for texts written for rows."""
    controls = _requested_controls(rows, use_controls)
    contents = [row["content"] for row in rows]
    result: Scores = {}
    result |= load("diversity").compute(predictions=texts)
    result |= load("faithfulness").compute(
        predictions=texts, contents=contents, value_lexicon=lexicon, hallucination_keys=list(hallucination_keys)
    )
    result |= load("control").compute(predictions=texts, **controls, length_bounds=list(length_bounds))
    result |= load("ad_law").compute(predictions=texts)
    result |= score_text_quality(texts, rows, value_lexicon=lexicon)
    result["avg_length"] = sum(map(len, texts)) / len(texts) if texts else 0.0
    result["n"] = len(texts)
    return result


def score_text_quality(texts: list[str], rows: list[Row], *, value_lexicon: dict[str, list[str]]) -> Scores:
    """The text-quality metrics of texts[i] written for rows[i] (only its `content` is used), as one flat dict:
    attribute_hallucination_rate, attribute_hallucinations_per_output, product_type_mismatch_rate,
    incompatible_part_rate, repetition_rate, list_ending_rate, cut_off_rate (all ×100 but the per-output count). For
    the references' own rates pass [row["summary"] for row in rows] as texts."""
    if len(texts) != len(rows):
        raise ValueError(f"score_text_quality: {len(texts)} texts for {len(rows)} rows")
    contents = [row["content"] for row in rows]
    result: Scores = {}
    result |= load("attribute_hallucination").compute(predictions=texts, contents=contents, value_lexicon=value_lexicon)
    result |= load("product_type").compute(predictions=texts, contents=contents, value_lexicon=value_lexicon)
    result |= load("repetition").compute(predictions=texts, contents=contents)
    result |= load("list_endings").compute(predictions=texts, value_lexicon=value_lexicon, contents=contents)
    result |= load("cut_off").compute(predictions=texts)
    return result


def _requested_controls(rows: list[Row], use_controls: bool) -> dict[str, list]:
    """The control module's inputs: each row's requested aspect / length bucket / keywords ("" / [] for none)."""
    if not use_controls:
        return {"aspects": [""] * len(rows), "length_buckets": [""] * len(rows), "keywords": [[] for _ in rows]}
    return {
        "aspects": [row.get("aspect") or "" for row in rows],
        "length_buckets": [row.get("length_bucket") or "" for row in rows],
        "keywords": [list(row.get("keywords") or ()) for row in rows],
    }


def objective(scores: Scores, objective_cfg: Any) -> float:
    """The one-number objective (sweep and promotion gate): `combined` =
    bleu4 + rougeL + coverage_weight * coverage - hallucination_weight * hallucination_rate
    - fault_weight * (sum of FAULT_RATES), or one metric."""
    if objective_cfg["name"] != "combined":
        return float(scores[objective_cfg["name"]])
    faults = sum(scores.get(name) or 0.0 for name in FAULT_RATES)
    return (scores["bleu4"] + scores["rougeL"] + objective_cfg["coverage_weight"] * scores["coverage"]
            - objective_cfg["hallucination_weight"] * (scores["hallucination_rate"] or 0.0)
            - objective_cfg["fault_weight"] * faults)


def score_explanations(
    predictions: list[str],
    rows: list[Row],
    *,
    vocabulary: dict[str, list[str]],
    semantic_similarity: bool = True,
) -> Scores:
    """Task B: every explanation metric of predictions[i] against rows[i] (`explanation` is the reference,
    `feature` the ground-truth feature): BLEU-1/4, ROUGE-1/2/L, USR, FMR, FCR, DIV (+ semantic similarity)."""
    if len(predictions) != len(rows):
        raise ValueError(f"score_explanations: {len(predictions)} predictions for {len(rows)} rows")
    references = [row["explanation"] for row in rows]
    result: Scores = {}
    result |= load("bleu_words").compute(predictions=predictions, references=references)
    result |= load("rouge_words").compute(predictions=predictions, references=references)
    result |= load("explanation_features").compute(predictions=predictions, features=[r["feature"] for r in rows],
                                                   vocabulary=vocabulary)
    if semantic_similarity:
        result |= load("semantic_similarity").compute(predictions=predictions, references=references)
    result["avg_length"] = sum(len(text.split()) for text in predictions) / len(predictions) if predictions else 0.0
    result["n"] = len(predictions)
    return result
