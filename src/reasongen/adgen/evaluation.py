"""Task A evaluation: every system's texts for the test rows (the model, its decoding ablation, the baselines),
the metrics table, the prediction records and the plot data."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from reasongen import metrics
from reasongen.adgen import baselines
from reasongen.adgen.generator import Generator, joined
from reasongen.config import to_container
from reasongen.modeling.progress import say
from reasongen.text.attributes import parse_content
from reasongen.text.controls import find_violations

SYSTEMS = ("model", "retrieval", "template")  # the systems whose texts predictions.jsonl and the plots keep
WITH_CONTROLS = "model_with_controls"  # the model prompted with the controls derived from each reference
TABLE_METRICS = ("bleu4", "rouge1", "rouge2", "rougeL", "distinct1", "distinct2", "unique_ratio", "coverage",
                 "hallucination_rate", "attribute_hallucination_rate", "unlisted_detail_rate",
                 "product_type_mismatch_rate", "repetition_rate", "list_ending_rate", "cut_off_rate", "aspect_accuracy",
                 "length_accuracy", "keyword_recall", "violation_rate", "avg_length")


def reference_row(row: dict[str, Any]) -> dict[str, Any]:
    """An AdvertiseGen-format reference row (content of key#value pairs + summary, optional controls), or
    ValueError saying what is missing."""
    for field in ("content", "summary"):
        if not isinstance(row.get(field), str):
            raise ValueError(f"needs a string field {field!r} (a reference row has content and summary)")
    try:
        parse_content(row["content"])
    except ValueError as error:
        raise ValueError(f"content: {error}") from None
    return row


def system_predictions(generator: Generator, evaluate_cfg: DictConfig, train: list[dict],
                       test: list[dict]) -> dict[str, list[str]]:
    """Texts from the fine-tuned model (configured decoding, and each decoding of the ablation from the same
    candidates) and from both baselines, for every test row."""
    use_controls = evaluate_cfg.use_controls
    found = generator.candidates(test, use_controls=use_controls)
    say(f"retrieve-and-edit candidates for {len(test)} rows")
    edited = generator.retrieved(test, use_controls=use_controls)
    say(f"choosing among the candidates of {len(test)} rows: the configured decoding, then the ablation")
    outputs = {"model": generator.choose_pooled(test, found, edited, use_controls)}
    for name, spec in to_container(evaluate_cfg.decoding_ablation).items():
        pool, overrides = ablation_pool(found, edited, spec, bool(generator.generation["include_greedy"]))
        if pool is not None:
            say(f"decoding_{name}: choosing")
            outputs[f"decoding_{name}"] = generator.choose(test, pool, use_controls, **overrides)
    outputs["retrieval"] = baselines.predict_all(baselines.RetrievalBaseline(train), test)
    outputs["template"] = baselines.predict_all(baselines.TemplateBaseline(), test)
    return outputs


def ablation_pool(found: list[list[str]], edited: list[list[str]], spec: dict[str, Any], has_greedy: bool):
    """(candidates, selection/repair overrides) for one decoding of the ablation, from the model's candidates
    (found) and the retrieve-and-edit ones (edited). `candidates: first` is one sample (the published decoding),
    `greedy` the greedy text, both as they are; `all` (default) every candidate, `generated` the model's only,
    `retrieved` the edited ones only, each chosen with the spec's selection / repair in place of the configured ones.
    None when that pool was not made (no greedy text, or no retrieve-and-edit)."""
    which = spec.get("candidates", "all")
    overrides = {key: spec[key] for key in ("selection", "repair") if key in spec}
    if which == "all":
        return joined(found, edited), overrides
    if which == "generated":
        return found, overrides
    if which == "retrieved":
        return (edited, overrides) if any(edited) else (None, {})
    if which == "greedy" and not has_greedy:
        return None, {}
    pick = 0 if which == "first" else -1
    return [[texts[pick]] for texts in found], {"selection": {}, "repair": {}}


CONTROL_TABLE_METRICS = ("aspect_accuracy", "length_accuracy", "keyword_recall", "bleu4", "rougeL", "coverage",
                         "attribute_hallucination_rate", "repetition_rate", "list_ending_rate", "violation_rate")


def markdown_table(table: dict[str, dict[str, Any]]) -> str:
    """The metrics as Markdown for README and MLflow: the headline table (attributes-only prompts, the published
    setting), then, when it was run, the control-following table (controls derived from each reference)."""
    headline = {system: scores for system, scores in table.items() if not system.endswith("_with_controls")}
    text = "Attributes only (the published setting):\n\n" + _rows(headline, TABLE_METRICS)
    controlled = {system: scores for system, scores in table.items() if system.endswith("_with_controls")}
    if controlled:
        text += ("\nControl following: each test row's aspect, length bucket and keywords are derived from its "
                 "reference text and given in the prompt (not comparable with published numbers):\n\n"
                 + _rows(controlled, CONTROL_TABLE_METRICS))
    return text


def _rows(table: dict[str, dict[str, Any]], columns: tuple[str, ...]) -> str:
    lines = ["| system | " + " | ".join(columns) + " |", "|---" * (len(columns) + 1) + "|"]
    for system, scores in table.items():
        cells = ["–" if scores.get(m) is None else f"{scores[m]:.2f}" for m in columns]
        lines.append(f"| {system} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


# requested control -> (the control metric's argument, its accuracy score): the per-value plot tables
CONTROL_PLOTS = {"aspect": ("aspects", "aspect_accuracy"), "length_bucket": ("length_buckets", "length_accuracy")}


def write_plots(out_dir: Path, test: list[dict], outputs: dict[str, list[str]], length_bounds: list[int]) -> None:
    """Plot data for dvc plots: generated vs reference length, and control accuracy per requested aspect and per
    requested length bucket for each system (aspect_accuracy.csv, length_bucket_accuracy.csv)."""
    plots = out_dir / "plots"
    plots.mkdir(parents=True, exist_ok=True)
    with open(plots / "length.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "length_bucket", "reference_length", "model_length"])
        for row, text in zip(test, outputs["model"], strict=True):
            writer.writerow([row["id"], row.get("length_bucket") or "", len(row["summary"]), len(text)])
    for field in CONTROL_PLOTS:
        with open(plots / f"{field}_accuracy.csv", "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow([field, "system", "rows", "accuracy"])
            writer.writerows(control_accuracy(test, outputs, field, length_bounds))


def control_accuracy(test: list[dict], outputs: dict[str, list[str]], field: str,
                     length_bounds: list[int]) -> list[list[Any]]:
    """(requested value, system, rows, accuracy %) for each value of the control `field` the test rows request:
    how often each system's text meets it, by the control metric."""
    control = metrics.load("control")
    argument, score = CONTROL_PLOTS[field]
    table = []
    for value in sorted({row[field] for row in test if row.get(field)}):
        index = [i for i, row in enumerate(test) if row.get(field) == value]
        unrequested = [""] * len(index)
        requests = {"aspects": unrequested, "length_buckets": unrequested, argument: [value] * len(index)}
        for system in SYSTEMS:
            scores = control.compute(predictions=[outputs[system][i] for i in index], keywords=[[] for _ in index],
                                     length_bounds=length_bounds, **requests)
            table.append([value, system, len(index), round(scores[score], 2)])
    return table


def prediction_records(test: list[dict], outputs: dict[str, list[str]]) -> list[dict[str, Any]]:
    """predictions.jsonl: each test row's input, controls and reference beside every system's text."""
    return [
        {"id": row["id"], "content": row["content"], "aspect": row.get("aspect"),
         "length_bucket": row.get("length_bucket"), "keywords": row.get("keywords", []), "reference": row["summary"],
         **{system: texts[i] for system, texts in outputs.items()},
         "violations": find_violations(outputs["model"][i])}
        for i, row in enumerate(test)]
