"""LightningDataModule: prepared rows -> token ids, loss on the text only (finetune) or everywhere (pretrain)."""

from __future__ import annotations

import random
from typing import Any

import lightning.pytorch as pl
import torch
from torch.utils.data import DataLoader

from reasongen.modeling.prompts import build_prompt, controls_of, prefix_ids

IGNORE_INDEX = -100


def encode_example(
    tokenizer,
    prompt: str,
    target: str,
    max_source_length: int,
    max_target_length: int,
    loss_on_prompt: bool,
) -> dict[str, list[int]]:
    """bos + prompt + text + eos as ids, with labels masked on the prompt unless loss_on_prompt."""
    prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"][:max_source_length]
    target_ids = tokenizer(target, add_special_tokens=False)["input_ids"][:max_target_length]
    source = prefix_ids(tokenizer) + prompt_ids
    target_ids = target_ids + [tokenizer.eos_token_id]
    labels = (source if loss_on_prompt else [IGNORE_INDEX] * len(source)) + target_ids
    return {"input_ids": source + target_ids, "labels": labels}


def prompt_with_dropout(row: dict[str, Any], rng: random.Random, control_dropout: float) -> str:
    """Prompt whose controls are each left out with probability control_dropout (robust to missing controls)."""
    controls = {key: value for key, value in controls_of(row).items() if rng.random() >= control_dropout}
    return build_prompt(row["content"], **controls)


class PadCollator:
    """Right-pads a batch; attention mask 0 and label -100 on padding."""

    def __init__(self, pad_token_id: int):
        self.pad_token_id = pad_token_id

    def __call__(self, batch: list[dict[str, list[int]]]) -> dict[str, torch.Tensor]:
        width = max(len(example["input_ids"]) for example in batch)

        def pad(values: list[int], fill: int) -> list[int]:
            return values + [fill] * (width - len(values))

        return {
            "input_ids": torch.tensor([pad(e["input_ids"], self.pad_token_id) for e in batch]),
            "attention_mask": torch.tensor([pad([1] * len(e["input_ids"]), 0) for e in batch]),
            "labels": torch.tensor([pad(e["labels"], IGNORE_INDEX) for e in batch]),
        }


class PromptDataModule(pl.LightningDataModule):
    """Train/val loaders over prepared rows; `pretrain=True` trains on prompt and text alike."""

    def __init__(
        self,
        tokenizer,
        train_rows: list[dict[str, Any]],
        val_rows: list[dict[str, Any]],
        *,
        batch_size: int,
        max_source_length: int,
        max_target_length: int,
        pretrain: bool = False,
        control_dropout: float = 0.0,
        seed: int = 42,
        num_workers: int = 0,
    ):
        super().__init__()
        self.tokenizer = tokenizer
        self.rows = {"train": train_rows, "val": val_rows}
        self.batch_size = batch_size
        self.lengths = (max_source_length, max_target_length)
        self.pretrain = pretrain
        self.control_dropout = control_dropout
        self.seed = seed
        self.num_workers = num_workers
        self.encoded: dict[str, list[dict[str, list[int]]]] = {}

    def encode(self, rows: list[dict[str, Any]], control_dropout: float) -> list[dict[str, list[int]]]:
        rng = random.Random(self.seed)
        # Pretraining sees no controls: it learns the language of attribute lines and texts.
        dropout = 1.0 if self.pretrain else control_dropout
        return [
            encode_example(
                self.tokenizer,
                prompt_with_dropout(row, rng, dropout),
                row["summary"],
                *self.lengths,
                loss_on_prompt=self.pretrain,
            )
            for row in rows
        ]

    def setup(self, stage: str | None = None) -> None:
        if not self.encoded:
            self.encoded = {
                "train": self.encode(self.rows["train"], self.control_dropout),
                "val": self.encode(self.rows["val"], 0.0),
            }

    def loader(self, split: str, shuffle: bool) -> DataLoader:
        generator = torch.Generator().manual_seed(self.seed)
        return DataLoader(
            self.encoded[split],
            batch_size=self.batch_size,
            shuffle=shuffle,
            generator=generator,
            collate_fn=PadCollator(self.tokenizer.pad_token_id),
            num_workers=self.num_workers,
        )

    def train_dataloader(self) -> DataLoader:
        return self.loader("train", shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self.loader("val", shuffle=False)
