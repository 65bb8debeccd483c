"""DVC stage `explain_evaluate` (Task B): the four systems side by side on the test split, on every metric:
(a) profile + feature prompt, (b) profile prompt without feature, (c) soft prompt (PEPLER-style), (d) retrieval."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from reasongen import metrics
from reasongen.config import to_container
from reasongen.explain import soft_prompt
from reasongen.explain.baselines import ProfileRetrieval
from reasongen.explain.generator import ExplainGenerator
from reasongen.io import read_json, read_jsonl, write_json, write_jsonl
from reasongen.seeding import seed_everything

PREPARED = Path("outputs/explain/prepare")
OUT_DIR = Path("outputs/explain/evaluate")
SYSTEMS = {
    "a_profile_feature": "(a) profile + feature prompt",
    "b_profile": "(b) profile prompt, no feature",
    "c_soft_prompt": "(c) soft prompt (PEPLER-style)",
    "d_retrieval": "(d) retrieval (most similar training pair)",
}
TABLE_METRICS = ("bleu1", "bleu4", "rouge1", "rouge2", "rougeL", "usr", "fmr", "fcr", "div", "semantic_similarity",
                 "avg_length")


def targets(table: dict[str, dict[str, Any]]) -> dict[str, bool]:
    """The issue's targets for (a): FMR >= 0.85, USR >= 0.3, DIV below (c), BLEU-4 and ROUGE-L above (c) and (d)."""
    a, c, d = table["a_profile_feature"], table["c_soft_prompt"], table["d_retrieval"]
    return {
        "fmr_min_0.85": a["fmr"] >= 0.85,
        "usr_min_0.3": a["usr"] >= 0.3,
        "div_below_c": a["div"] < c["div"],
        "bleu4_above_c_and_d": a["bleu4"] > max(c["bleu4"], d["bleu4"]),
        "rougeL_above_c_and_d": a["rougeL"] > max(c["rougeL"], d["rougeL"]),
    }


def markdown_table(table: dict[str, dict[str, Any]], met: dict[str, bool]) -> str:
    lines = ["| system | " + " | ".join(TABLE_METRICS) + " |", "|---" * (len(TABLE_METRICS) + 1) + "|"]
    for system, scores in table.items():
        cells = ["–" if scores.get(m) is None else f"{scores[m]:.{4 if m in ('usr', 'fmr', 'fcr') else 2}f}"
                 for m in TABLE_METRICS]
        lines.append(f"| {SYSTEMS[system]} | " + " | ".join(cells) + " |")
    lines.append("")
    lines.append("Targets for (a): " + "; ".join(f"{name}: {'met' if ok else 'MISSED'}" for name, ok in met.items()))
    return "\n".join(lines) + "\n"


def system_predictions(cfg: DictConfig, test: list[dict], train: list[dict], profiles: dict,
                       profile_model: Path, soft_model: Path, vocabulary: dict) -> dict[str, list[str]]:
    generation = to_container(cfg.explain.generation)
    trust = cfg.explain.model.trust_remote_code  # the user's setting, never the model folder's
    writer = ExplainGenerator.from_dir(profile_model, generation, trust_remote_code=trust)
    requests = [{"user_id": row["user"], "item_id": row["item"], "feature": row["feature"]} for row in test]
    model, tokenizer, _ = soft_prompt.load(soft_model, trust_remote_code=trust)
    retrieval = ProfileRetrieval(train, profiles)
    return {
        "a_profile_feature": writer.explain(requests, use_feature=True, vocabulary=vocabulary),
        "b_profile": writer.explain(requests, use_feature=False),
        "c_soft_prompt": model.generate_texts(tokenizer, [(row["user"], row["item"]) for row in test], generation),
        "d_retrieval": [retrieval.predict(row) for row in test],
    }


def run(cfg: DictConfig, prepared_dir: Path = PREPARED,
        profile_model: Path = Path("outputs/explain/finetune/model"),
        soft_model: Path = Path("outputs/explain/soft_prompt/model"), out_dir: Path = OUT_DIR) -> dict:
    task = cfg.explain
    seed_everything(task.generation.seed)
    train, test = read_jsonl(prepared_dir / "train.jsonl"), read_jsonl(prepared_dir / "test.jsonl")
    if task.evaluate.max_examples:
        test = test[: task.evaluate.max_examples]
    profiles = read_json(prepared_dir / "profiles.json")
    vocabulary = read_json(prepared_dir / "features.json")["forms"]
    outputs = system_predictions(cfg, test, train, profiles, profile_model, soft_model, vocabulary)
    table = {system: metrics.score_explanations(texts, test, vocabulary=vocabulary,
                                                semantic_similarity=task.evaluate.semantic_similarity)
             for system, texts in outputs.items()}
    met = targets(table)
    write_json(out_dir / "metrics.json", {**table, "targets_met": met})
    (out_dir / "table.md").write_text(markdown_table(table, met), encoding="utf-8")
    write_jsonl(out_dir / "predictions.jsonl", (
        {"id": row["id"], "user": row["user"], "item": row["item"], "feature": row["feature"],
         "reference": row["explanation"], **{system: outputs[system][i] for system in SYSTEMS}}
        for i, row in enumerate(test)))
    print(markdown_table(table, met))
    return table
