"""DVC stage `explain_soft_prompt` (Task B, system (c), PEPLER-style): learned user and item vectors as a soft
prompt in front of the same base LM as explain_finetune, trained with the same Lightning loop."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from reasongen import runs
from reasongen.config import config_hash
from reasongen.explain import soft_prompt, training
from reasongen.io import read_jsonl, write_json
from reasongen.modeling.training import checkpoint_dir, is_global_zero, remove_checkpoints, train_lm
from reasongen.seeding import seed_everything

PREPARED = Path("outputs/explain/prepare")
TOKENIZER = Path("outputs/explain/tokenizer")
OUT_DIR = Path("outputs/explain/soft_prompt")
CHECKPOINTS = Path("checkpoints/explain_soft_prompt")


def no_text(row: dict[str, Any], rng: Any, dropout: float) -> str:
    """The soft-prompt model reads no text prompt: the sequence is bos + explanation."""
    return ""


def run(cfg: DictConfig, prepared_dir: Path = PREPARED, tokenizer_dir: Path = TOKENIZER, out_dir: Path = OUT_DIR,
        checkpoint_root: Path = CHECKPOINTS) -> dict[str, Any]:
    from transformers import AutoTokenizer

    seed_everything(cfg.seed)
    task = cfg.explain
    tokenizer = AutoTokenizer.from_pretrained(str(tokenizer_dir))
    train, val = read_jsonl(prepared_dir / "train.jsonl"), read_jsonl(prepared_dir / "val.jsonl")
    lm = training.base_lm(cfg, tokenizer, len(train), task.finetune.epochs, extra_positions=soft_prompt.N_PROMPT)
    users = sorted({row["user"] for row in train})
    items = sorted({row["item"] for row in train})
    model = soft_prompt.SoftPromptLM(lm, users, items)
    data = training.datamodule(cfg, tokenizer, train, val, prompt_fn=no_text,
                      extra_fn=lambda row: model.index(row["user"], row["item"]))
    settings = training.schedule(cfg, lr=task.soft_prompt.lr)  # (a)'s epochs and early stopping: a fair rival
    run_dir = checkpoint_dir(checkpoint_root, config_hash(task, cfg.trainer, cfg.seed, "soft_prompt"))
    with runs.stage_run(cfg.logger, task.tracking.experiment, "explain_soft_prompt", cfg,
                        runs.split_files(prepared_dir, "training", "validation")) as logger:
        module, trained = train_lm(model, data, cfg.trainer, settings, run_dir, out_dir / "curves", logger=logger)
    summary = {"system": "soft_prompt", "peft_method": task.peft.method, **trained, "users": len(users),
               "items": len(items)}
    if is_global_zero():  # under DDP every rank gets here with the same weights; one writes
        soft_prompt.save(module.model, tokenizer, out_dir / "model", summary)
        write_json(out_dir / "summary.json", summary)
        remove_checkpoints(run_dir)  # only now: a kill before the model is saved resumes from them
    return summary
