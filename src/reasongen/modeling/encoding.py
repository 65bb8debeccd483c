"""Prompts as token ids, the same in training and generation, for any task's prompt format."""

from __future__ import annotations


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
