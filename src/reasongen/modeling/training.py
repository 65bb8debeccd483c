"""One Lightning fit used by pretraining and fine-tuning: accelerator/precision auto, checkpoints, resume, curve."""

from __future__ import annotations

import pickle
import shutil
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import Callback, EarlyStopping, ModelCheckpoint

from reasongen.errors import UserError
from reasongen.io import write_curves
from reasongen.modeling.model_io import native_bf16
from reasongen.modeling.progress import Lines, duration, interactive, losses

LAST = "last.ckpt"


def auto_precision(precision: str) -> str:
    """`auto`: bf16 mixed precision where the device computes bf16 natively (a GPU that supports it, or a CPU with
    AVX512-BF16 / AMX: there a training step takes about a third less time at the same loss), full fp32
    elsewhere (emulated bf16 is slower)."""
    if precision != "auto":
        return precision
    return "bf16-mixed" if native_bf16() else "32-true"


def training_attention(setting: str | None, accelerator: str) -> str | None:
    """The attention kernel to train with (a transformers attn_implementation), or None to keep the model's.
    `auto`: eager on CPU, where the small default models train faster with it than with PyTorch's SDPA CPU kernel
    (9% less CPU time per step under bf16 autocast, 26% of a step was that kernel); the model's own on a GPU."""
    if setting in (None, "model"):
        return None
    if setting == "auto":
        return "eager" if accelerator == "cpu" or not torch.cuda.is_available() else None
    return setting


def set_training_attention(model: torch.nn.Module, implementation: str | None) -> None:
    """Switch the transformers model inside `model` (plain, PEFT-wrapped or a wrapper) to an attention kernel;
    what is saved is unaffected: a loaded model starts with transformers' default again."""
    from transformers import PreTrainedModel

    if implementation is None:
        return
    inner = next((m for m in model.modules() if isinstance(m, PreTrainedModel)), None)
    if inner is not None and inner.config._attn_implementation != implementation:
        inner.set_attn_implementation(implementation)


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
        write_curves(folder, self.points)


class ProgressLines(Callback):
    """A line when training starts, one every EVERY_S seconds with the step and the training loss, and one per epoch
    with both losses: what a log shows of a fit (Lightning's bar is off there). Rank 0 only."""

    def __init__(self, lines_factory: Callable[[], Lines] = Lines):
        self.lines_factory = lines_factory
        self.lines: Lines | None = None

    def on_train_start(self, trainer: Any, pl_module: Any) -> None:
        self.lines = self.lines_factory()
        if trainer.is_global_zero:
            self.lines.say(f"training: {trainer.max_epochs} epochs of {trainer.num_training_batches} steps, from "
                           f"epoch {trainer.current_epoch + 1}, step {trainer.global_step}")

    def on_train_batch_end(self, trainer: Any, pl_module: Any, outputs: Any, batch: Any, batch_idx: int) -> None:
        if trainer.is_global_zero and self.lines is not None and self.lines.due():
            self.lines.say(f"epoch {trainer.current_epoch + 1}/{trainer.max_epochs}, step {batch_idx + 1}/"
                           f"{trainer.num_training_batches}: {losses(trainer.callback_metrics, ('train_loss',))}")

    def on_train_epoch_end(self, trainer: Any, pl_module: Any) -> None:
        if trainer.is_global_zero and self.lines is not None:
            self.lines.say(f"epoch {trainer.current_epoch + 1}/{trainer.max_epochs} done (step {trainer.global_step}, "
                           f"{duration(self.lines.elapsed())}): "
                           f"{losses(trainer.callback_metrics, ('train_loss', 'val_loss'))}")


def checkpoint_dir(root: Path, run_id: str) -> Path:
    """root/run_id: one run's checkpoints. root is a persistent DVC output, so it must exist, even empty."""
    root.mkdir(parents=True, exist_ok=True)
    return root / run_id


def is_global_zero() -> bool:
    """Whether this process writes outputs: rank 0 of a multi-process (DDP, FSDP) run, or the only process."""
    from lightning.pytorch.utilities import rank_zero_only

    return rank_zero_only.rank == 0


def fit(
    module: pl.LightningModule,
    datamodule: pl.LightningDataModule,
    trainer_cfg: Mapping[str, Any],
    checkpoint_dir: Path,
    curve_dir: Path,
    *,
    epochs: int,
    max_steps: int = -1,
    patience: int | None = None,
    callbacks: Sequence[Callback] = (),
    logger: Any = None,
) -> pl.Trainer:
    """Train with early stopping on val_loss (trainer_cfg: the `trainer` config group; patience overrides its
    patience), resuming from checkpoint_dir/last.ckpt if a crash left one; load the best weights back into
    `module` and write the loss curves to curve_dir (on rank 0 only: with several processes, each stage writes its
    outputs from rank 0 alone). The checkpoints stay until the stage has saved its model (remove_checkpoints), so
    that a kill before then loses no training. Checkpoints load as tensors and plain data only (weights_only): a
    planted pickle runs no code. logger: Lightning's logger for live step metrics (runs.stage_run's MLflow logger),
    or None. Off a terminal, progress goes to plain lines instead of a bar."""
    recorder = CurveRecorder()
    # `best` is checked after validation only: a run stopped by max_steps before any validation keeps its last
    # weights. `last.ckpt` is written every few steps so that a crash loses little.
    best = ModelCheckpoint(dirpath=checkpoint_dir, filename="best", monitor="val_loss", save_top_k=1,
                           save_on_train_epoch_end=False)
    last = ModelCheckpoint(dirpath=checkpoint_dir, save_top_k=0, save_last=True,
                           every_n_train_steps=trainer_cfg["checkpoint_every_n_steps"])
    stopper = EarlyStopping(monitor="val_loss", patience=trainer_cfg["patience"] if patience is None else patience,
                            strict=False, check_on_train_epoch_end=False)
    trainer = pl.Trainer(
        accelerator=trainer_cfg["accelerator"],
        devices=trainer_cfg["devices"],
        strategy=trainer_cfg["strategy"],
        precision=auto_precision(trainer_cfg["precision"]),
        max_epochs=epochs,
        max_steps=max_steps,
        gradient_clip_val=trainer_cfg["gradient_clip_val"],
        log_every_n_steps=trainer_cfg["log_every_n_steps"],
        val_check_interval=trainer_cfg["val_check_interval"],
        limit_val_batches=trainer_cfg["limit_val_batches"],
        num_sanity_val_steps=0,
        callbacks=[recorder, best, last, stopper, *callbacks, *([] if interactive() else [ProgressLines()])],
        logger=logger if logger is not None else False,
        enable_progress_bar=interactive(),
        enable_checkpointing=True,
        default_root_dir=str(checkpoint_dir),
        deterministic=False,
    )
    resume = str(checkpoint_dir / LAST) if (checkpoint_dir / LAST).exists() else None
    if resume:
        print(f"resuming from {resume}")
    # from_pretrained / load_model give eval-mode models, and Lightning keeps the mode it finds (dropout off)
    module.train()
    with refused_checkpoint(resume):
        trainer.fit(module, datamodule=datamodule, ckpt_path=resume, weights_only=True)
    if best.best_model_path:  # every rank: the same best weights everywhere
        with refused_checkpoint(best.best_model_path):
            state = torch.load(best.best_model_path, map_location="cpu", weights_only=True)["state_dict"]
        module.load_state_dict(state)
    trainer.strategy.barrier("best weights loaded")  # no rank deletes the checkpoints another is still reading
    if trainer.is_global_zero:
        recorder.write(curve_dir)
    return trainer


@contextmanager
def refused_checkpoint(path: str | None) -> Iterator[None]:
    """A checkpoint that holds more than tensors and plain data (a planted pickle) is a UserError naming it."""
    try:
        yield
    except pickle.UnpicklingError as error:
        reason = str(error).strip().splitlines()[0]
        raise UserError(f"{path}: not loaded, it holds more than weights ({reason}); delete it to train from the "
                        "start") from error


def remove_checkpoints(checkpoint_dir: Path) -> None:
    """Delete a run's checkpoints once its stage has saved the model they led to (rank 0, after save_model)."""
    shutil.rmtree(checkpoint_dir, ignore_errors=True)


def train_lm(
    model: torch.nn.Module,
    datamodule: pl.LightningDataModule,
    trainer_cfg: Mapping[str, Any],
    schedule: Mapping[str, Any],
    checkpoint_dir: Path,
    curve_dir: Path,
    *,
    patience: int | None = None,
    callbacks: Sequence[Callback] = (),
    logger: Any = None,
) -> tuple[pl.LightningModule, dict[str, Any]]:
    """Train `model` (plain, PEFT-wrapped or a wrapper such as the soft-prompt LM) with CausalLMModule and fit.
    schedule: epochs, max_steps, lr, weight_decay, warmup_ratio (a stage's own section). Returns the trained module
    and the run's summary (parameters, epochs, steps, best validation loss)."""
    from reasongen.modeling.module import CausalLMModule
    from reasongen.modeling.peft_builder import trainable_parameters

    trainable, total = trainable_parameters(model)
    set_training_attention(model, training_attention(trainer_cfg.get("attention", "auto"),
                                                     str(trainer_cfg.get("accelerator", "auto"))))
    module = CausalLMModule(model, schedule["lr"], schedule["weight_decay"], schedule["warmup_ratio"])
    trainer = fit(module, datamodule, trainer_cfg, checkpoint_dir, curve_dir, epochs=schedule["epochs"],
                  max_steps=schedule["max_steps"], patience=patience, callbacks=callbacks, logger=logger)
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
