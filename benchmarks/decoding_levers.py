"""Decoding levers of Task A, ablated on the validation split with attributes-only prompts (the published setting):
each lever of the default decoding (`generation=reranked`) turned on one at a time from the published one-sample
decoding, and each turned off from the default. Every variant decodes the same rows from the same model with the
same seed and is scored by `metrics.score`, as the evaluate stage scores the test split.

    python benchmarks/decoding_levers.py --model outputs/finetune/model --rows 120 --out reports/decoding_levers.md

Run from the repository root after `dvc repro finetune` (it reads params.yaml and outputs/prepare/)."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from reasongen import metrics
from reasongen.adgen.generator import Generator
from reasongen.config import compose, load_params, to_container
from reasongen.io import read_jsonl
from reasongen.text.attributes import value_lexicon

COLUMNS = ("bleu4", "rougeL", "coverage", "hallucination_rate", "attribute_hallucination_rate", "unlisted_detail_rate",
           "product_type_mismatch_rate", "repetition_rate", "list_ending_rate", "distinct2", "unique_ratio",
           "violation_rate", "avg_length")
OFF = {"mention_bonus": 0.0, "ngram_block": 0, "ban_contradictions": False, "ban_unlisted": False, "ban_wording": False}


def variants(default: dict[str, Any], published: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """name -> decoding settings: the published decoding plus one lever, and the default minus one lever."""
    on = default["constraints"]
    found = {"published (1 sample)": published}
    for lever in ("ban_contradictions", "ban_unlisted", "ban_wording", "ngram_block", "mention_bonus"):
        found[f"published + {lever}"] = {**published, "constraints": {**OFF, lever: on[lever]}}
    found["default (reranked)"] = default
    found["default - constraints"] = {**default, "constraints": OFF}
    found["default - repair"] = {**default, "repair": {}}
    found["default - fault penalties"] = {**default, "selection": {
        key: value for key, value in default["selection"].items() if key in ("mbr", "coverage", "aspect",
                                                                             "keywords", "length")}}
    for weight in ("mbr", "evidence", "likelihood", "reuse"):
        found[f"default - {weight}"] = {**default, "selection": {**default["selection"], weight: 0.0}}
    found["default - retrieve_edit"] = {**default, "retrieve_edit": {"neighbours": 0}}
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, default=Path("outputs/finetune/model"))
    parser.add_argument("--prepared", type=Path, default=Path("outputs/prepare"))
    parser.add_argument("--rows", type=int, default=120, help="validation rows (the first N)")
    parser.add_argument("--out", type=Path, default=Path("reports/decoding_levers.md"))
    parser.add_argument("--only", nargs="*", help="variant names to run (default: all)")
    args = parser.parse_args()

    cfg = load_params()
    default = to_container(cfg.generation)
    published = {**to_container(compose(["generation=sampling"]).generation),
                 "checked_keys": default["checked_keys"], "batch_size": default["batch_size"]}
    rows = read_jsonl(args.prepared / "val.jsonl")[: args.rows]
    options = metrics.options(cfg, value_lexicon(read_jsonl(args.prepared / "train.jsonl")))
    generator = Generator.from_dir(args.model, default)
    table: dict[str, dict[str, Any]] = {}
    samples: dict[str, list[str]] = {}
    for name, settings in variants(default, published).items():
        if args.only and name not in args.only:
            continue
        started = time.perf_counter()
        generator.generation = {**settings, "max_source_length": generator.generation.get("max_source_length")}
        texts = generator.generate(rows, use_controls=False, progress=False)
        table[name] = metrics.score(texts, rows, use_controls=False, **options)
        table[name]["seconds"] = round(time.perf_counter() - started, 1)
        samples[name] = texts[:5]
        print(name, {k: round(table[name][k], 2) for k in COLUMNS if table[name].get(k) is not None}, flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    lines = [f"# Decoding levers on the first {len(rows)} validation rows (attributes only)\n",
             "| variant | " + " | ".join(COLUMNS) + " | s |", "|---" * (len(COLUMNS) + 2) + "|"]
    for name, scores in table.items():
        cells = ["–" if scores.get(c) is None else f"{scores[c]:.2f}" for c in COLUMNS]
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {scores['seconds']} |")
    args.out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    args.out.with_suffix(".json").write_text(json.dumps({"scores": table, "samples": samples}, ensure_ascii=False,
                                                        indent=2), encoding="utf-8")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
