"""Task B training pieces shared by systems (a)/(b) and (c): the seeded base LM of `explain.model` wrapped by
`explain.peft`, the datamodule over tuples, and the training schedule."""

from __future__ import annotations

import math
from typing import Any

import torch
from omegaconf import DictConfig

from reasongen.config import to_container
from reasongen.explain.prompts import PROMPT_END
from reasongen.modeling import model_io, peft_builder
from reasongen.modeling.datamodule import PromptDataModule


def base_lm(cfg: DictConfig, tokenizer, n_train: int, epochs: int, extra_positions: int = 0):
    """The seeded, freshly initialised LM of explain.model, PEFT-wrapped by explain.peft (the same base for the
    profile-prompt model and the soft-prompt model)."""
    task = cfg.explain
    torch.manual_seed(cfg.seed)
    model = model_io.base_model(task.model, tokenizer)
    model_io.check_context(model, task.finetune.max_source_length + task.finetune.max_target_length + 2,
                           peft_builder.virtual_tokens(task.peft) + extra_positions)
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
                            target_field="explanation", prompt_end=PROMPT_END, **kwargs)


def schedule(cfg: DictConfig, **overrides: Any) -> dict[str, Any]:
    """explain.finetune's epochs / lr / weight decay / warm-up / max_steps, with a system's own overrides."""
    return {**to_container(cfg.explain.finetune), **overrides}
