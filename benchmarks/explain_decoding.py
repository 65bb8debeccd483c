"""System (a)'s decoding levers, ablated on the validation split: plain greedy and beam search, then the greedy
(or beam-search) text plus n samples with each feature-aware choice (`explain.generation.feature_choice`: first /
longest / consensus among the texts that name the requested feature), each with end-of-text banned for the first
k tokens (`explain.generation.min_new_tokens`), next to retrieval (d) on the same rows. Every variant decodes
the same rows from the same model with the same seed and is scored by `metrics.score_explanations`, as
explain_evaluate scores the test split.

    python benchmarks/explain_decoding.py --samples 8 16 --min-new-tokens 0 12 --out docs/explain_decoding.md

Run from the repository root after `dvc repro explain_finetune` (it reads params.yaml and outputs/explain/)."""

from __future__ import annotations

import argparse
import itertools
import time
from pathlib import Path

from reasongen import metrics
from reasongen.config import load_params, to_container
from reasongen.explain.baselines import ProfileRetrieval
from reasongen.explain.generator import FEATURE_CHOICES, ExplainGenerator, choose
from reasongen.io import read_json, read_jsonl

PREPARED = Path("outputs/explain/prepare")
COLUMNS = ("bleu1", "bleu4", "rouge1", "rougeL", "usr", "fmr", "fcr", "div", "avg_length")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=Path("outputs/explain/finetune/model"))
    parser.add_argument("--samples", type=int, nargs="+", default=[8])
    parser.add_argument("--temperature", type=float, nargs="+", default=[1.0])
    parser.add_argument("--beams", type=int, default=4)
    parser.add_argument("--min-new-tokens", type=int, nargs="+", default=[0])
    parser.add_argument("--heads", type=int, nargs="+", default=[1], help="num_beams of the first candidate")
    parser.add_argument("--no-plain", action="store_true", help="skip greedy and beam search")
    parser.add_argument("--rows", type=int, default=None)
    parser.add_argument("--out", type=Path, default=Path("docs/explain_decoding.md"))
    args = parser.parse_args()
    cfg = load_params()
    generation = to_container(cfg.explain.generation)
    val = read_jsonl(PREPARED / "val.jsonl")[: args.rows]
    vocabulary = read_json(PREPARED / "features.json")["forms"]
    writer = ExplainGenerator.from_dir(args.model, generation)
    requests = [{"user_id": row["user"], "item_id": row["item"], "feature": row["feature"]} for row in val]
    retrieval = ProfileRetrieval(read_jsonl(PREPARED / "train.jsonl"), read_json(PREPARED / "profiles.json"))
    outputs: dict[str, list[str]] = {"(d) retrieval": [retrieval.predict(row) for row in val]}
    seconds: dict[str, float] = {}

    def plain(name: str, **decoding) -> None:
        """One text per row, no feature-aware choice."""
        started = time.perf_counter()
        outputs[name] = writer.explain(requests, feature_candidates=0, progress=False, **decoding)
        seconds[name] = time.perf_counter() - started

    for minimum in args.min_new_tokens:
        at_least = f", >= {minimum} tokens" if minimum else ""
        if not args.no_plain:
            plain(f"greedy{at_least}", min_new_tokens=minimum)
            plain(f"beam {args.beams}{at_least}", num_beams=args.beams, min_new_tokens=minimum)
        for beams, temperature, n in itertools.product(args.heads, args.temperature, args.samples):
            started = time.perf_counter()
            found = writer.candidates(requests, progress=False, feature_candidates=n, temperature=temperature,
                                      min_new_tokens=minimum, num_beams=beams)
            spent = time.perf_counter() - started
            head = f"beam {beams}" if beams > 1 else "greedy"
            for rule in FEATURE_CHOICES:
                name = f"{head} + {n} samples (T={temperature:g}){at_least}, {rule}"
                outputs[name] = [choose(texts, row["feature"], vocabulary, rule)
                                 for texts, row in zip(found, val, strict=True)]
                seconds[name] = spent
    lines = ["| variant | " + " | ".join(COLUMNS) + " | s |", "|---" * (len(COLUMNS) + 2) + "|"]
    for name, texts in outputs.items():
        scores = metrics.score_explanations(texts, val, vocabulary=vocabulary, semantic_similarity=False)
        cells = [f"{scores[m]:.{3 if m in ('usr', 'fmr', 'fcr') else 2}f}" for m in COLUMNS]
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {seconds.get(name, 0):.0f} |")
        print(lines[-1], flush=True)
    args.out.write_text(f"Validation split, {len(val)} rows, model {args.model}:\n\n" + "\n".join(lines) + "\n",
                        encoding="utf-8")


if __name__ == "__main__":
    main()
