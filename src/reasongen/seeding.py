"""Seeding in one place: Python, NumPy and torch (and dataloader workers) through Lightning."""

from __future__ import annotations


def seed_everything(seed: int) -> None:
    import lightning.pytorch as pl

    pl.seed_everything(int(seed), workers=True, verbose=False)
