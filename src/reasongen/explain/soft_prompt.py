"""System (c), PEPLER-style continuous prompts: learned user and item vectors in front of the same causal LM.

The sequence the LM sees is [user vector, item vector, bos, explanation, eos] as input embeddings; the loss is on
the explanation only. The LM may be PEFT-wrapped like any other (`explain.peft`)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn
from transformers import LogitsProcessorList

from reasongen.explain.decoding import length_floor
from reasongen.io import read_json, write_json
from reasongen.modeling import model_io
from reasongen.modeling.encoding import IGNORE_INDEX, prefix_ids
from reasongen.modeling.generation import GENERATE_KEYS
from reasongen.modeling.text import decode

EMBEDDINGS_FILE = "soft_prompt.safetensors"
INDEX_FILE = "soft_prompt_index.json"
N_PROMPT = 2  # one user vector, one item vector


class SoftPromptLM(nn.Module):
    """A causal LM with user and item embedding tables whose vectors are prepended as a soft prompt."""

    def __init__(self, lm: nn.Module, users: Sequence[str], items: Sequence[str]):
        super().__init__()
        self.lm = lm
        self.users = {user: index for index, user in enumerate(users)}
        self.items = {item: index for index, item in enumerate(items)}
        width = lm.get_input_embeddings().embedding_dim
        self.user_embeddings = nn.Embedding(len(users), width)
        self.item_embeddings = nn.Embedding(len(items), width)
        for table in (self.user_embeddings, self.item_embeddings):
            nn.init.normal_(table.weight, std=0.02)

    @property
    def base_model(self):
        """The wrapped PEFT model, so that AdaLoRA's rank upkeep in CausalLMModule finds it."""
        return getattr(self.lm, "base_model", None)

    def index(self, user: str, item: str) -> dict[str, int]:
        """The row's table indices; a user or item not seen in training is an error (as in PEPLER)."""
        if user not in self.users or item not in self.items:
            unknown = [f"user {user!r}"] * (user not in self.users) + [f"item {item!r}"] * (item not in self.items)
            raise KeyError(f"{' and '.join(unknown)} not in the training data: the soft-prompt model has no vector")
        return {"user": self.users[user], "item": self.items[item]}

    def prompt(self, user: torch.Tensor, item: torch.Tensor) -> torch.Tensor:
        return torch.stack([self.user_embeddings(user), self.item_embeddings(item)], dim=1)

    def forward(self, input_ids, attention_mask, user, item, labels=None):
        tokens = self.lm.get_input_embeddings()(input_ids)
        embeds = torch.cat([self.prompt(user, item), tokens], dim=1)
        ones = attention_mask.new_ones(input_ids.size(0), N_PROMPT)
        mask = torch.cat([ones, attention_mask], dim=1)
        if labels is not None:
            labels = torch.cat([torch.full_like(ones, IGNORE_INDEX), labels], dim=1)
        return self.lm(inputs_embeds=embeds, attention_mask=mask, labels=labels)

    def generate_texts(self, tokenizer, pairs: Sequence[tuple[str, str]], generation_cfg: dict[str, Any]) -> list[str]:
        """One explanation per (user, item) pair. Every prompt has the same length, so batches need no padding."""
        kwargs = {key: generation_cfg[key] for key in GENERATE_KEYS if key in generation_cfg}
        if not kwargs.get("do_sample"):
            kwargs = {k: v for k, v in kwargs.items() if k not in ("top_p", "temperature", "top_k")}
        torch.manual_seed(int(generation_cfg.get("seed", 0)))
        batch_size = int(generation_cfg.get("batch_size", 16))
        device = next(self.parameters()).device
        start = prefix_ids(tokenizer)
        pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        texts: list[str] = []
        with torch.inference_mode():
            for offset in range(0, len(pairs), batch_size):
                indices = [self.index(user, item) for user, item in pairs[offset : offset + batch_size]]
                user = torch.tensor([i["user"] for i in indices], device=device)
                item = torch.tensor([i["item"] for i in indices], device=device)
                ids = torch.tensor([start] * len(indices), device=device, dtype=torch.long)
                embeds = torch.cat([self.prompt(user, item), self.lm.get_input_embeddings()(ids)], dim=1)
                mask = torch.ones(embeds.shape[:2], dtype=torch.long, device=device)
                generated = self.lm.generate(inputs_embeds=embeds, attention_mask=mask, pad_token_id=pad_id,
                                             eos_token_id=tokenizer.eos_token_id, use_cache=True,
                                             logits_processor=LogitsProcessorList(
                                                 length_floor(generation_cfg, tokenizer.eos_token_id)), **kwargs)
                texts += [decode(tokenizer, row) for row in generated]  # inputs_embeds only: new tokens only
        return texts


def save(model: SoftPromptLM, tokenizer, out_dir: Path, meta: dict[str, Any]) -> None:
    """The LM as model_io saves any model, plus the two tables and their (pseudonymous) row labels (in the same
    atomic write)."""
    from safetensors.torch import save_file

    def tables(folder: Path) -> None:
        save_file({"user": model.user_embeddings.weight.detach().contiguous().cpu(),
                   "item": model.item_embeddings.weight.detach().contiguous().cpu()}, str(folder / EMBEDDINGS_FILE))
        write_json(folder / INDEX_FILE, {"users": list(model.users), "items": list(model.items)})

    model_io.save_model(model.lm, tokenizer, out_dir, {**meta, "kind": "soft_prompt"}, extras=tables)


def load(model_dir: str | Path, device: str | torch.device = "cpu",
         trust_remote_code: bool = False) -> tuple[SoftPromptLM, Any, dict[str, Any]]:
    """(model, tokenizer, meta) from a folder written by save, in eval mode."""
    from safetensors.torch import load_file

    model_dir = Path(model_dir)
    lm, tokenizer, meta = model_io.load_model(model_dir, device, trust_remote_code)
    index = read_json(model_dir / INDEX_FILE)
    model = SoftPromptLM(lm, index["users"], index["items"])
    tables = load_file(str(model_dir / EMBEDDINGS_FILE))
    model.user_embeddings.weight.data.copy_(tables["user"])
    model.item_embeddings.weight.data.copy_(tables["item"])
    return model.to(device).eval(), tokenizer, meta
