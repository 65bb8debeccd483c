"""LightningDataModule for any task: prepared rows -> token ids, loss on the text only (finetune) or everywhere
(pretrain). The task supplies its prompt function, its prompt end and its target field."""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import lightning.pytorch as pl
import torch
from torch.utils.data import DataLoader

from reasongen.modeling.encoding import PadCollator, encode_example

PromptFn = Callable[[dict[str, Any], random.Random, float], str]


class LengthGroupedBatches(torch.utils.data.Sampler[list[int]]):
    """Batches of similar-length examples (less padding: about a third fewer tokens per epoch here), in a
    seeded random order that changes every epoch; without shuffle, plain consecutive batches."""

    def __init__(self, lengths: list[int], batch_size: int, shuffle: bool, seed: int, pool: int = 50):
        self.lengths = lengths
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.seed = seed
        self.pool = pool * batch_size
        self.epoch = 0

    def __len__(self) -> int:
        return -(-len(self.lengths) // self.batch_size)

    def __iter__(self):
        order = list(range(len(self.lengths)))
        if not self.shuffle:
            yield from (order[i : i + self.batch_size] for i in range(0, len(order), self.batch_size))
            return
        rng = random.Random(self.seed + self.epoch)
        self.epoch += 1
        rng.shuffle(order)
        batches = []
        for start in range(0, len(order), self.pool):  # sort within pools, so batches stay random across pools
            pool = sorted(order[start : start + self.pool], key=self.lengths.__getitem__)
            batches += [pool[i : i + self.batch_size] for i in range(0, len(pool), self.batch_size)]
        rng.shuffle(batches)
        yield from batches


class PromptDataModule(pl.LightningDataModule):
    """Train/val loaders over prepared rows; `pretrain=True` trains on prompt and text alike.

    The task passes `prompt_fn(row, rng, dropout)` (the prompt, with controls dropped at that rate), `prompt_end`
    (what truncation keeps), `target_field` (the text), and optionally `extra_fn(row)` for per-example integer
    inputs (such as user and item indices) that the collator hands to the model as tensors."""

    def __init__(
        self,
        tokenizer,
        train_rows: list[dict[str, Any]],
        val_rows: list[dict[str, Any]],
        *,
        prompt_fn: PromptFn,
        prompt_end: str,
        target_field: str,
        batch_size: int,
        max_source_length: int,
        max_target_length: int,
        pretrain: bool = False,
        control_dropout: float = 0.0,
        seed: int = 42,
        num_workers: int = 0,
        extra_fn: Callable[[dict[str, Any]], dict[str, int]] | None = None,
    ):
        super().__init__()
        self.prompt_fn = prompt_fn
        self.prompt_end = prompt_end
        self.target_field = target_field
        self.extra_fn = extra_fn
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
                self.prompt_fn(row, rng, dropout),
                row[self.target_field],
                *self.lengths,
                loss_on_prompt=self.pretrain,
                prompt_end=self.prompt_end,
            )
            | (self.extra_fn(row) if self.extra_fn else {})
            for row in rows
        ]

    def setup(self, stage: str | None = None) -> None:
        if not self.encoded:
            self.encoded = {
                "train": self.encode(self.rows["train"], self.control_dropout),
                "val": self.encode(self.rows["val"], 0.0),
            }

    def loader(self, split: str, shuffle: bool) -> DataLoader:
        examples = self.encoded[split]
        collate = PadCollator(self.tokenizer.pad_token_id)
        if self.trainer is not None and self.trainer.world_size > 1:
            # several processes: a plain loader, so that Lightning can shard it with a DistributedSampler
            return DataLoader(examples, batch_size=self.batch_size, shuffle=shuffle, collate_fn=collate,
                              num_workers=self.num_workers, generator=torch.Generator().manual_seed(self.seed))
        lengths = [len(example["input_ids"]) for example in examples]
        batches = LengthGroupedBatches(lengths, self.batch_size, shuffle=shuffle, seed=self.seed)
        return DataLoader(examples, batch_sampler=batches, collate_fn=collate, num_workers=self.num_workers)

    def train_dataloader(self) -> DataLoader:
        return self.loader("train", shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self.loader("val", shuffle=False)
