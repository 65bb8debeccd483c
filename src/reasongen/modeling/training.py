"""One Lightning fit used by pretraining and fine-tuning: accelerator/precision auto, checkpoints, resume, curve."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import Callback, EarlyStopping, ModelCheckpoint

LAST = "last.ckpt"


def auto_precision(precision: str) -> str:
    """`auto`: bf16 mixed precision where the GPU supports it, full fp32 elsewhere (CPU bf16 is slower)."""
    if precision != "auto":
        return precision
    return "bf16-mixed" if torch.cuda.is_available() and torch.cuda.is_bf16_supported() else "32-true"


class CurveRecorder(Callback):
    """Collects train_loss per logged step and val_loss per validation; saved inside checkpoints, so a resumed
    run keeps its whole curve. Written as train_loss.csv and val_loss.csv (step, value) for dvc plots and MLflow."""

    def __init__(self) -> None:
        self.points: dict[str, list[tuple[int, float]]] = {"train_loss": [], "val_loss": []}

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        loss = trainer.callback_metrics.get("train_loss")
        if loss is not None and trainer.global_step % max(1, trainer.log_every_n_steps) == 0:
            self.points["train_loss"].append((trainer.global_step, round(float(loss), 5)))

    def on_validation_epoch_end(self, trainer, pl_module) -> None:
        loss = trainer.callback_metrics.get("val_loss")
        if loss is not None and not trainer.sanity_checking:
            self.points["val_loss"].append((trainer.global_step, round(float(loss), 5)))

    def state_dict(self) -> dict[str, Any]:
        return {"points": self.points}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.points = {name: [tuple(p) for p in values] for name, values in state_dict["points"].items()}

    def write(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        for name, points in self.points.items():
            with open(folder / f"{name}.csv", "w", newline="", encoding="utf-8") as handle:
                writer = csv.writer(handle)
                writer.writerow(["step", name])
                writer.writerows(points)


def read_curve(folder: Path) -> dict[str, list[tuple[int, float]]]:
    """The curves CurveRecorder.write left in folder (missing files: no points)."""
    curves: dict[str, list[tuple[int, float]]] = {}
    for name in ("train_loss", "val_loss"):
        path = folder / f"{name}.csv"
        if path.exists():
            with open(path, encoding="utf-8") as handle:
                curves[name] = [(int(row["step"]), float(row[name])) for row in csv.DictReader(handle)]
    return curves


def is_global_zero() -> bool:
    """Whether this process writes outputs: rank 0 of a multi-process (DDP, FSDP) run, or the only process."""
    from lightning.pytorch.utilities import rank_zero_only

    return rank_zero_only.rank == 0


def fit(
    module: pl.LightningModule,
    datamodule: pl.LightningDataModule,
    trainer_cfg: dict[str, Any],
    checkpoint_dir: Path,
    curve_dir: Path,
    *,
    callbacks: list[Callback] = (),
) -> pl.Trainer:
    """Train with early stopping on val_loss, resuming from checkpoint_dir/last.ckpt if a crash left one;
    load the best weights back into `module`, write the loss curves to curve_dir, delete the checkpoints (the
    last two on rank 0 only: with several processes, each stage writes its outputs from rank 0 alone)."""
    recorder = CurveRecorder()
    # `best` is checked after validation only: a run stopped by max_steps before any validation keeps its last
    # weights. `last.ckpt` is written every few steps so that a crash loses little.
    best = ModelCheckpoint(dirpath=checkpoint_dir, filename="best", monitor="val_loss", save_top_k=1,
                           save_on_train_epoch_end=False)
    last = ModelCheckpoint(dirpath=checkpoint_dir, save_top_k=0, save_last=True,
                           every_n_train_steps=trainer_cfg.get("checkpoint_every_n_steps", 50))
    stopper = EarlyStopping(monitor="val_loss", patience=trainer_cfg.get("patience", 2), strict=False,
                            check_on_train_epoch_end=False)
    trainer = pl.Trainer(
        accelerator=trainer_cfg.get("accelerator", "auto"),
        devices=trainer_cfg.get("devices", "auto"),
        strategy=trainer_cfg.get("strategy", "auto"),
        precision=auto_precision(trainer_cfg.get("precision", "auto")),
        max_epochs=trainer_cfg["epochs"],
        max_steps=trainer_cfg.get("max_steps", -1),
        gradient_clip_val=trainer_cfg.get("gradient_clip_val"),
        log_every_n_steps=trainer_cfg.get("log_every_n_steps", 10),
        val_check_interval=trainer_cfg.get("val_check_interval", 1.0),
        limit_val_batches=trainer_cfg.get("limit_val_batches", 1.0),
        num_sanity_val_steps=0,
        callbacks=[recorder, best, last, stopper, *callbacks],
        logger=False,
        enable_checkpointing=True,
        default_root_dir=str(checkpoint_dir),
        deterministic=False,
    )
    resume = str(checkpoint_dir / LAST) if (checkpoint_dir / LAST).exists() else None
    if resume:
        print(f"resuming from {resume}")
    # from_pretrained / load_model give eval-mode models, and Lightning keeps the mode it finds (dropout off)
    module.train()
    trainer.fit(module, datamodule=datamodule, ckpt_path=resume)
    if best.best_model_path:  # every rank: the same best weights everywhere
        state = torch.load(best.best_model_path, map_location="cpu", weights_only=False)["state_dict"]
        module.load_state_dict(state)
    trainer.strategy.barrier("best weights loaded")  # no rank deletes the checkpoints another is still reading
    if trainer.is_global_zero:
        recorder.write(curve_dir)
        shutil.rmtree(checkpoint_dir, ignore_errors=True)
    return trainer


def train_lm(
    model: torch.nn.Module,
    datamodule: pl.LightningDataModule,
    trainer_cfg: dict[str, Any],
    checkpoint_dir: Path,
    curve_dir: Path,
    *,
    callbacks: list[Callback] = (),
) -> tuple[pl.LightningModule, dict[str, Any]]:
    """Fine-tune `model` (plain, PEFT-wrapped or a wrapper such as the soft-prompt LM) with CausalLMModule and fit;
    returns the trained module and the run's summary (parameters, epochs, steps, best validation loss)."""
    from reasongen.modeling.module import CausalLMModule
    from reasongen.modeling.peft_builder import trainable_parameters

    trainable, total = trainable_parameters(model)
    module = CausalLMModule(model, trainer_cfg["lr"], trainer_cfg.get("weight_decay", 0.0),
                            trainer_cfg.get("warmup_ratio", 0.0))
    trainer = fit(module, datamodule, trainer_cfg, checkpoint_dir, curve_dir, callbacks=list(callbacks))
    return module, {
        "trainable_parameters": trainable,
        "total_parameters": total,
        "epochs_run": trainer.current_epoch,
        "steps": trainer.global_step,
        "best_val_loss": best_val_loss(trainer),
    }


def best_val_loss(trainer: pl.Trainer) -> float | None:
    for callback in trainer.checkpoint_callbacks:
        if callback.best_model_score is not None:
            return round(float(callback.best_model_score), 5)
    return None
