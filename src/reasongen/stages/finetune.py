"""Stage `finetune`: PEFT (or full) fine-tuning of the base model with Lightning on prompt -> text pairs."""

from __future__ import annotations

import math
from pathlib import Path

from omegaconf import DictConfig

from reasongen import metrics
from reasongen.config import config_hash, to_container
from reasongen.io import read_jsonl, write_json
from reasongen.modeling import model_io, peft_builder
from reasongen.modeling.datamodule import PromptDataModule
from reasongen.modeling.training import is_global_zero, train_lm
from reasongen.seeding import seed_everything


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
    """Fine-tune and save the model as safetensors (merged where the method allows); returns a summary."""
    seed_everything(cfg.seed)
    checkpoint_root.mkdir(parents=True, exist_ok=True)  # a persistent DVC output: it must exist, even empty
    finetune = cfg.finetune
    model, tokenizer, _ = model_io.load_model(base_dir / "model")
    # prefix / prompt tuning put num_virtual_tokens in front of every sequence: they take positions too
    virtual = cfg.peft.num_virtual_tokens if cfg.peft.method in ("prefix", "prompt") else 0
    model_io.check_context(model, finetune.max_source_length + finetune.max_target_length + 2, virtual)
    train_rows = read_jsonl(prepared_dir / "train.jsonl")
    model = peft_builder.wrap(model, cfg.peft, planned_steps(len(train_rows), finetune))
    trainable, total = peft_builder.trainable_parameters(model)
    print(f"peft={cfg.peft.method}: {trainable:,} of {total:,} parameters train ({100 * trainable / total:.2f}%)")
    datamodule = PromptDataModule(
        tokenizer,
        train_rows,
        read_jsonl(prepared_dir / "val.jsonl"),
        batch_size=finetune.batch_size,
        max_source_length=finetune.max_source_length,
        max_target_length=finetune.max_target_length,
        control_dropout=finetune.control_dropout,
        seed=cfg.seed,
        num_workers=finetune.num_workers,
    )
    run_id = config_hash(cfg.data, cfg.tokenizer, cfg.model, cfg.pretrain, cfg.peft, cfg.finetune, cfg.seed)
    module, trained = train_lm(model, datamodule, to_container(finetune), checkpoint_root / run_id,
                               out_dir / "curves", callbacks=list(callbacks))
    summary = {
        "peft_method": cfg.peft.method,
        **trained,
        "trust_remote_code": bool(cfg.model.trust_remote_code),
        "max_source_length": finetune.max_source_length,  # generation truncates prompts the same way
    }
    # what the model learned from, for the rules that pick and repair its texts (hallucination, length buckets)
    rules = {"value_lexicon": metrics.value_lexicon(train_rows),
             "length_bounds": list(cfg.data.controls.length_bounds)}
    if is_global_zero():  # under DDP every rank gets here with the same weights; one writes
        model_io.save_model(module.model, tokenizer, out_dir / "model", summary | rules)
        write_json(out_dir / "summary.json", summary)
    return summary

