"""Stage `finetune`: PEFT (or full) fine-tuning of the base model with Lightning on prompt -> text pairs."""

from __future__ import annotations

import math
from pathlib import Path

from omegaconf import DictConfig

from reasongen import runs
from reasongen.adgen.prompts import datamodule_options
from reasongen.config import config_hash, to_container
from reasongen.io import read_jsonl, sha256_tree, write_json, write_jsonl
from reasongen.modeling import model_io, peft_builder
from reasongen.modeling.datamodule import PromptDataModule
from reasongen.modeling.training import checkpoint_dir, is_global_zero, remove_checkpoints, train_lm
from reasongen.seeding import seed_everything
from reasongen.text.attributes import value_lexicon


def planned_steps(n_rows: int, finetune: DictConfig) -> int:
    """Optimiser steps the run will take (AdaLoRA needs it up front)."""
    per_epoch = math.ceil(n_rows / finetune.batch_size)
    steps = per_epoch * finetune.epochs
    return min(steps, finetune.max_steps) if finetune.max_steps and finetune.max_steps > 0 else steps


def run(
    cfg: DictConfig,
    prepared_dir: Path = Path("outputs/prepare"),
    base_dir: Path = Path("outputs/base_model"),
    out_dir: Path = Path("outputs/finetune"),
    checkpoint_root: Path = Path("checkpoints/finetune"),
    callbacks: list = (),
) -> dict:
    """Fine-tune and save the model as safetensors (merged where the method allows); returns a summary. Tracked
    live in MLflow (runs.stage_run): in the active run (a sweep trial), else in a child run of the pipeline run."""
    seed_everything(cfg.seed)
    finetune = cfg.finetune
    model, tokenizer, _ = model_io.load_model(base_dir / "model", trust_remote_code=cfg.model.trust_remote_code)
    model_io.check_context(model, finetune.max_source_length + finetune.max_target_length + 2,
                           peft_builder.virtual_tokens(cfg.peft))
    train_rows = read_jsonl(prepared_dir / "train.jsonl")
    model = peft_builder.wrap(model, cfg.peft, planned_steps(len(train_rows), finetune))
    trainable, total = peft_builder.trainable_parameters(model)
    print(f"peft={cfg.peft.method}: {trainable:,} of {total:,} parameters train ({100 * trainable / total:.2f}%)")
    datamodule = PromptDataModule(
        tokenizer,
        train_rows,
        read_jsonl(prepared_dir / "val.jsonl"),
        **datamodule_options(),
        batch_size=finetune.batch_size,
        max_source_length=finetune.max_source_length,
        max_target_length=finetune.max_target_length,
        control_dropout=finetune.control_dropout,
        seed=cfg.seed,
        num_workers=finetune.num_workers,
    )
    run_dir = checkpoint_dir(checkpoint_root, config_hash(cfg.peft, finetune, cfg.trainer, cfg.seed,
                                                       sha256_tree(prepared_dir / "train.jsonl", base_dir / "model")))
    datasets = runs.split_files(prepared_dir, "training", "validation")
    with runs.stage_run(cfg.logger, cfg.tracking.experiment, "finetune", cfg, datasets) as logger:
        module, trained = train_lm(model, datamodule, cfg.trainer, to_container(finetune), run_dir,
                                   out_dir / "curves", callbacks=callbacks, logger=logger)
    summary = {
        "peft_method": cfg.peft.method,
        **trained,
        "trust_remote_code": bool(cfg.model.trust_remote_code),
        "max_source_length": finetune.max_source_length,  # generation truncates prompts the same way
    }
    # what the model learned from, for the rules that pick and repair its texts (hallucination, length buckets)
    rules = {"value_lexicon": value_lexicon(train_rows),
             "length_bounds": list(cfg.data.controls.length_bounds)}
    if is_global_zero():  # under DDP every rank gets here with the same weights; one writes
        texts = [{"content": row["content"], "summary": row["summary"], "lost": row.get("lost") or []}
                 for row in train_rows]
        model_io.save_model(module.model, tokenizer, out_dir / "model", summary | rules,
                            extras=lambda folder: write_jsonl(folder / model_io.TRAIN_TEXTS_FILE, texts))
        write_json(out_dir / "summary.json", summary)
        remove_checkpoints(run_dir)  # only now: a kill before the model is saved resumes from them
    return summary

