"""Batched generation with the KV cache: prompts in, clean texts out, in input order."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from tqdm.auto import tqdm

from reasongen.modeling.prompts import prefix_ids
from reasongen.modeling.text import decode

GENERATE_KEYS = ("max_new_tokens", "do_sample", "top_p", "temperature", "top_k", "num_beams",
                 "repetition_penalty", "no_repeat_ngram_size")


def generate_texts(
    model,
    tokenizer,
    prompts: Sequence[str],
    generation_cfg: dict[str, Any],
    *,
    progress: bool = True,
) -> list[str]:
    """Generate one text per prompt. Batches are formed from prompts of similar length (less padding)."""
    if not prompts:
        return []
    device = next(model.parameters()).device
    batch_size = int(generation_cfg.get("batch_size", 16))
    kwargs = {key: generation_cfg[key] for key in GENERATE_KEYS if key in generation_cfg}
    if not kwargs.get("do_sample"):
        kwargs = {k: v for k, v in kwargs.items() if k not in ("top_p", "temperature", "top_k")}
    torch.manual_seed(int(generation_cfg.get("seed", 0)))
    encoded = [prefix_ids(tokenizer) + tokenizer(p, add_special_tokens=False)["input_ids"] for p in prompts]
    order = sorted(range(len(prompts)), key=lambda i: len(encoded[i]))
    outputs: list[str] = [""] * len(prompts)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    batches = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    with torch.inference_mode():
        for batch in tqdm(batches, desc="generate", unit="batch", disable=not progress):
            input_ids, attention_mask = left_pad([encoded[i] for i in batch], pad_id, device)
            generated = model.generate(
                input_ids=input_ids,
                attention_mask=attention_mask,
                pad_token_id=pad_id,
                eos_token_id=tokenizer.eos_token_id,
                use_cache=True,
                **kwargs,
            )
            for row, index in enumerate(batch):
                outputs[index] = decode(tokenizer, generated[row, input_ids.size(1) :])
    return outputs


def left_pad(sequences: list[list[int]], pad_id: int, device) -> tuple[torch.Tensor, torch.Tensor]:
    """Left padding, so that every row's next token comes right after its prompt."""
    width = max(len(s) for s in sequences)
    ids = torch.tensor([[pad_id] * (width - len(s)) + s for s in sequences], device=device)
    mask = torch.tensor([[0] * (width - len(s)) + [1] * len(s) for s in sequences], device=device)
    return ids, mask
