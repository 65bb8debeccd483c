"""DVC stage `explain_finetune` (Task B, systems (a) and (b)): a causal LM built from `explain.model` and trained
with the shared Lightning loop on profile prompts -> explanation. The feature is dropped from a share of the
training prompts, so the one model writes with the feature given (a) and without it (b)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from reasongen import runs
from reasongen.config import config_hash
from reasongen.explain import training
from reasongen.explain.profiles import add_profiles
from reasongen.explain.prompts import ProfilePrompter
from reasongen.io import read_json, read_jsonl, write_json
from reasongen.modeling import model_io
from reasongen.modeling.training import checkpoint_dir, is_global_zero, remove_checkpoints, train_lm
from reasongen.seeding import seed_everything

PREPARED = Path("outputs/explain/prepare")
TOKENIZER = Path("outputs/explain/tokenizer")
OUT_DIR = Path("outputs/explain/finetune")
CHECKPOINTS = Path("checkpoints/explain_finetune")


def run(cfg: DictConfig, prepared_dir: Path = PREPARED, tokenizer_dir: Path = TOKENIZER, out_dir: Path = OUT_DIR,
        checkpoint_root: Path = CHECKPOINTS) -> dict[str, Any]:
    from transformers import AutoTokenizer

    seed_everything(cfg.seed)
    task = cfg.explain
    tokenizer = AutoTokenizer.from_pretrained(str(tokenizer_dir))
    train, val = read_jsonl(prepared_dir / "train.jsonl"), read_jsonl(prepared_dir / "val.jsonl")
    prompter = ProfilePrompter(read_json(prepared_dir / "profiles.json"))
    model = training.base_lm(cfg, tokenizer, len(train), task.finetune.epochs)
    data = training.datamodule(cfg, tokenizer, train, val, prompt_fn=prompter.with_dropout,
                               control_dropout=task.finetune.feature_dropout)
    run_dir = checkpoint_dir(checkpoint_root, config_hash(task, cfg.trainer, cfg.seed))
    with runs.stage_run(cfg.logger, task.tracking.experiment, "explain_finetune", cfg,
                        runs.split_files(prepared_dir, "training", "validation")) as logger:
        module, trained = train_lm(model, data, cfg.trainer, training.schedule(cfg), run_dir, out_dir / "curves",
                                   logger=logger)
    summary = {"system": "profile_prompt", "peft_method": task.peft.method, **trained,
               "max_source_length": task.finetune.max_source_length}
    if is_global_zero():  # under DDP every rank gets here with the same weights; one writes
        model_io.save_model(module.model, tokenizer, out_dir / "model", summary,
                            extras=lambda folder: add_profiles(folder, prepared_dir / "profiles.json"))
        write_json(out_dir / "summary.json", summary)
        remove_checkpoints(run_dir)  # only now: a kill before the model is saved resumes from them
    return summary
