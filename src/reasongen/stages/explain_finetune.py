"""DVC stage `explain_finetune` (Task B, systems (a) and (b)): a causal LM built from `explain.model` and trained
with the shared Lightning loop on profile prompts -> explanation. The feature is dropped from a share of the
training prompts, so the one model writes with the feature given (a) and without it (b)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig

from reasongen.config import config_hash, to_container
from reasongen.explain.prompts import ProfilePrompter
from reasongen.explain.serving import add_profiles
from reasongen.io import read_json, read_jsonl, write_json
from reasongen.modeling import model_io, peft_builder
from reasongen.modeling.datamodule import PromptDataModule
from reasongen.modeling.training import is_global_zero, train_lm
from reasongen.seeding import seed_everything

PREPARED = Path("outputs/explain/prepare")
TOKENIZER = Path("outputs/explain/tokenizer")
OUT_DIR = Path("outputs/explain/finetune")
CHECKPOINTS = Path("checkpoints/explain_finetune")


def base_lm(cfg: DictConfig, tokenizer, n_train: int, epochs: int, extra_positions: int = 0):
    """The seeded, freshly initialised LM of explain.model, PEFT-wrapped by explain.peft (the same base for the
    profile-prompt model and the soft-prompt model)."""
    task = cfg.explain
    torch.manual_seed(cfg.seed)
    model = model_io.from_config(task.model.config, tokenizer)
    virtual = task.peft.num_virtual_tokens if task.peft.method in ("prefix", "prompt") else 0
    model_io.check_context(model, task.finetune.max_source_length + task.finetune.max_target_length + 2,
                           virtual + extra_positions)
    steps = math.ceil(n_train / task.finetune.batch_size) * epochs
    model = peft_builder.wrap(model, task.peft, steps)
    trainable, total = peft_builder.trainable_parameters(model)
    print(f"explain peft={task.peft.method}: {trainable:,} of {total:,} parameters train")
    return model


def datamodule(cfg: DictConfig, tokenizer, train: list[dict], val: list[dict], **kwargs: Any) -> PromptDataModule:
    """The shared datamodule over tuples: target `explanation`, lengths and batch size from explain.finetune."""
    settings = cfg.explain.finetune
    return PromptDataModule(tokenizer, train, val, batch_size=settings.batch_size,
                            max_source_length=settings.max_source_length,
                            max_target_length=settings.max_target_length, seed=cfg.seed,
                            target_field="explanation", **kwargs)


def trainer_settings(cfg: DictConfig, **overrides: Any) -> dict[str, Any]:
    return {**to_container(cfg.explain.finetune), **overrides}


def run(cfg: DictConfig, prepared_dir: Path = PREPARED, tokenizer_dir: Path = TOKENIZER, out_dir: Path = OUT_DIR,
        checkpoint_root: Path = CHECKPOINTS) -> dict[str, Any]:
    from transformers import AutoTokenizer

    seed_everything(cfg.seed)
    checkpoint_root.mkdir(parents=True, exist_ok=True)  # a persistent DVC output: it must exist, even empty
    task = cfg.explain
    tokenizer = AutoTokenizer.from_pretrained(str(tokenizer_dir))
    train, val = read_jsonl(prepared_dir / "train.jsonl"), read_jsonl(prepared_dir / "val.jsonl")
    prompter = ProfilePrompter(read_json(prepared_dir / "profiles.json"))
    model = base_lm(cfg, tokenizer, len(train), task.finetune.epochs)
    data = datamodule(cfg, tokenizer, train, val, prompt_fn=prompter.with_dropout,
                      control_dropout=task.finetune.feature_dropout)
    run_id = config_hash(task, cfg.seed)
    module, trained = train_lm(model, data, trainer_settings(cfg), checkpoint_root / run_id, out_dir / "curves")
    summary = {"system": "profile_prompt", "peft_method": task.peft.method, **trained,
               "max_source_length": task.finetune.max_source_length}
    if is_global_zero():  # under DDP every rank gets here with the same weights; one writes
        model_io.save_model(module.model, tokenizer, out_dir / "model", summary)
        add_profiles(out_dir / "model", prepared_dir / "profiles.json")
        write_json(out_dir / "summary.json", summary)
    return summary
