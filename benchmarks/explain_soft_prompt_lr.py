"""System (c)'s learning rate, chosen on the validation split: the explain_soft_prompt stage trained once per
learning rate (same epochs, early stopping, seed and data as the pipeline; MLflow off), each scored by its best
val_loss and by what it writes greedily for the first validation pairs (USR: distinct / all sentences).

    python benchmarks/explain_soft_prompt_lr.py --lr 5e-4 2e-3 5e-3 1e-2 --rows 200 --out docs/explain_soft_prompt_lr.md

Run from the repository root after `dvc repro explain_tokenizer` (it reads params.yaml and outputs/explain/)."""

from __future__ import annotations

import argparse
import csv
import tempfile
from pathlib import Path

from omegaconf import OmegaConf

from reasongen import metrics
from reasongen.config import load_params, to_container
from reasongen.explain import soft_prompt
from reasongen.io import read_json, read_jsonl
from reasongen.stages import explain_soft_prompt

PREPARED = Path("outputs/explain/prepare")


def curve(curves_dir: Path) -> list[float]:
    """val_loss per validation (one per epoch), from the stage's curves/val_loss.csv."""
    with (curves_dir / "val_loss.csv").open(encoding="utf-8") as handle:
        return [float(row["val_loss"]) for row in csv.DictReader(handle)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lr", type=float, nargs="+", required=True)
    parser.add_argument("--rows", type=int, default=200)
    parser.add_argument("--out", type=Path, default=Path("docs/explain_soft_prompt_lr.md"))
    args = parser.parse_args()
    cfg = OmegaConf.merge(load_params(), {"logger": {"kind": "none", "system_metrics": False}})
    val = read_jsonl(PREPARED / "val.jsonl")[: args.rows]
    vocabulary = read_json(PREPARED / "features.json")["forms"]
    generation = to_container(cfg.explain.generation)
    lines = ["| lr | epochs run | best val_loss | val_loss per epoch | usr | fmr | bleu4 | distinct sentences |",
             "|---|---|---|---|---|---|---|---|"]
    for lr in args.lr:
        with tempfile.TemporaryDirectory() as scratch:
            scratch = Path(scratch)
            run_cfg = OmegaConf.merge(cfg, {"explain": {"soft_prompt": {"lr": lr}}})
            explain_soft_prompt.run(run_cfg, out_dir=scratch / "out", checkpoint_root=scratch / "ckpt")
            losses = curve(scratch / "out" / "curves")
            model, tokenizer, _ = soft_prompt.load(scratch / "out" / "model")
            texts = model.generate_texts(tokenizer, [(row["user"], row["item"]) for row in val], generation)
        scores = metrics.score_explanations(texts, val, vocabulary=vocabulary, semantic_similarity=False)
        per_epoch = ", ".join(f"{loss:.3f}" for loss in losses)
        lines.append(f"| {lr:g} | {len(losses)} | {min(losses):.3f} | {per_epoch} | "
                     f"{scores['usr']:.3f} | {scores['fmr']:.3f} | {scores['bleu4']:.2f} | {len(set(texts))} |")
        print(lines[-1], flush=True)
    args.out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
