"""Prompts as token ids, the same in training and generation, for any task's prompt format."""

from __future__ import annotations

import torch

IGNORE_INDEX = -100  # the label of a token the loss leaves out
SEQUENCE_KEYS = ("input_ids", "labels")


def prefix_ids(tokenizer) -> list[int]:
    """The begin-of-text id every sequence starts with, in training and generation (none if the tokenizer has none)."""
    return [tokenizer.bos_token_id] if tokenizer.bos_token_id is not None else []


def encode_prompt(tokenizer, prompt: str, max_length: int | None = None, prompt_end: str = "") -> list[int]:
    """bos + prompt ids. A prompt over max_length tokens loses tokens from its middle, never its `prompt_end` (the
    task's marker that the text starts next, e.g. ` | 文案:`)."""
    ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    if max_length is not None and len(ids) > max_length:
        keep = min(len(tokenizer(prompt_end, add_special_tokens=False)["input_ids"]), max_length) if prompt_end else 0
        ids = ids[: max_length - keep] + ids[len(ids) - keep :]
    return prefix_ids(tokenizer) + ids


def encode_example(
    tokenizer,
    prompt: str,
    target: str,
    max_source_length: int | None,
    max_target_length: int,
    loss_on_prompt: bool,
    prompt_end: str = "",
) -> dict[str, list[int]]:
    """bos + prompt + text + eos as ids, with labels masked on the prompt unless loss_on_prompt."""
    source = encode_prompt(tokenizer, prompt, max_source_length, prompt_end)
    target_ids = tokenizer(target, add_special_tokens=False)["input_ids"][:max_target_length]
    target_ids = target_ids + [tokenizer.eos_token_id]
    labels = (source if loss_on_prompt else [IGNORE_INDEX] * len(source)) + target_ids
    return {"input_ids": source + target_ids, "labels": labels}


class PadCollator:
    """Right-pads a batch; attention mask 0 and label -100 on padding. pad_to_multiple_of rounds the width up: the
    CPU kernels keep scratch memory for every input shape they meet, and a new width per batch took gigabytes when
    scoring many candidates."""

    def __init__(self, pad_token_id: int, pad_to_multiple_of: int = 1):
        self.pad_token_id = pad_token_id
        self.pad_to_multiple_of = pad_to_multiple_of

    def __call__(self, batch: list[dict[str, list[int]]]) -> dict[str, torch.Tensor]:
        width = max(len(example["input_ids"]) for example in batch)
        width += -width % self.pad_to_multiple_of

        def pad(values: list[int], fill: int) -> list[int]:
            return values + [fill] * (width - len(values))

        # any other field is one integer per example (e.g. user / item indices of a soft-prompt model)
        extra = {key: torch.tensor([e[key] for e in batch]) for key in batch[0] if key not in SEQUENCE_KEYS}
        return {
            "input_ids": torch.tensor([pad(e["input_ids"], self.pad_token_id) for e in batch]),
            "attention_mask": torch.tensor([pad([1] * len(e["input_ids"]), 0) for e in batch]),
            "labels": torch.tensor([pad(e["labels"], IGNORE_INDEX) for e in batch]),
            **extra,
        }
