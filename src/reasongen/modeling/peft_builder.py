"""The Hydra group `peft/` -> a PEFT config wrapped around the base model (method `none`: full fine-tuning)."""

from __future__ import annotations

from typing import Any

from omegaconf import DictConfig

from reasongen.config import to_container

# Methods whose trained weights fold back into the base weights, leaving a plain transformers model.
MERGEABLE = {"lora", "adalora", "ia3"}
METHODS = ("none", "lora", "adalora", "prefix", "prompt", "ia3")


def peft_config(peft_cfg: DictConfig | dict[str, Any], total_steps: int):
    """A peft `PeftConfig` for the method in peft_cfg, or None for full fine-tuning."""
    import peft

    options = to_container(peft_cfg)
    method = options.pop("method")
    task = peft.TaskType.CAUSAL_LM
    if method == "none":
        return None
    if method == "lora":
        return peft.LoraConfig(
            task_type=task,
            r=options["r"],
            lora_alpha=options["alpha"],
            lora_dropout=options["dropout"],
            target_modules=options.get("target_modules"),
            modules_to_save=options.get("modules_to_save"),
        )
    if method == "adalora":
        return peft.AdaLoraConfig(
            task_type=task,
            init_r=options["init_r"],
            target_r=options["target_r"],
            lora_alpha=options["alpha"],
            lora_dropout=options["dropout"],
            tinit=options["tinit"],
            tfinal=options["tfinal"],
            deltaT=options["delta_t"],
            total_step=max(total_steps, options["tinit"] + options["tfinal"] + 1),
            target_modules=options.get("target_modules"),
        )
    if method == "prefix":
        return peft.PrefixTuningConfig(
            task_type=task,
            num_virtual_tokens=options["num_virtual_tokens"],
            prefix_projection=options.get("prefix_projection", False),
        )
    if method == "prompt":
        return peft.PromptTuningConfig(task_type=task, num_virtual_tokens=options["num_virtual_tokens"])
    if method == "ia3":
        return peft.IA3Config(
            task_type=task,
            target_modules=options.get("target_modules"),
            feedforward_modules=options.get("feedforward_modules"),
        )
    raise ValueError(f"peft.method={method!r}: choose one of {', '.join(METHODS)}")


def wrap(model, peft_cfg: DictConfig | dict[str, Any], total_steps: int):
    """The model ready to train: PEFT-wrapped (only adapter weights trainable) or as is."""
    config = peft_config(peft_cfg, total_steps)
    if config is None:
        return model
    import peft

    return peft.get_peft_model(model, config)


def trainable_parameters(model) -> tuple[int, int]:
    """(trainable, total) parameter counts."""
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    return trainable, total


def virtual_tokens(peft_cfg: DictConfig | dict[str, Any]) -> int:
    """Positions the method puts in front of every sequence (prefix / prompt tuning), which the context must fit."""
    return int(peft_cfg["num_virtual_tokens"]) if peft_cfg["method"] in ("prefix", "prompt") else 0
