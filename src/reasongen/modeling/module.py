"""LightningModule around any causal LM (plain or PEFT-wrapped): loss, optimiser, schedule, AdaLoRA upkeep."""

from __future__ import annotations

import lightning.pytorch as pl
import torch


class CausalLMModule(pl.LightningModule):
    """Trains `model` on batches with labels; logs train_loss per step and val_loss per epoch."""

    def __init__(self, model: torch.nn.Module, lr: float, weight_decay: float = 0.0, warmup_ratio: float = 0.0):
        super().__init__()
        self.model = model
        self.save_hyperparameters(ignore=["model"])

    def forward(self, **batch):
        return self.model(**batch)

    def training_step(self, batch, batch_idx):
        loss = self.model(**batch).loss
        self.log("train_loss", loss, prog_bar=True, on_step=True, on_epoch=False, batch_size=batch["input_ids"].size(0))
        return loss

    def validation_step(self, batch, batch_idx):
        loss = self.model(**batch).loss
        size = batch["input_ids"].size(0)
        # sync_dist: under DDP every rank sees the loss of the whole validation set, so that early stopping and the
        # choice of the best checkpoint agree across ranks
        self.log("val_loss", loss, prog_bar=True, on_epoch=True, batch_size=size, sync_dist=True)
        # the same, to maximise: what the pruner of a maximising Optuna study watches
        self.log("neg_val_loss", -loss, on_epoch=True, batch_size=size, sync_dist=True)

    def on_train_batch_end(self, outputs, batch, batch_idx) -> None:
        # AdaLoRA reallocates ranks from gradient statistics after each optimiser step.
        update = getattr(getattr(self.model, "base_model", None), "update_and_allocate", None)
        if callable(update):
            update(self.global_step)

    def configure_optimizers(self):
        params = [p for p in self.model.parameters() if p.requires_grad]
        optimizer = torch.optim.AdamW(params, lr=self.hparams.lr, weight_decay=self.hparams.weight_decay)
        total = max(1, int(self.trainer.estimated_stepping_batches))
        warmup = int(total * self.hparams.warmup_ratio)

        def factor(step: int) -> float:
            # linear warm-up, then linear decay to 10% of the peak rate
            if step < warmup:
                return (step + 1) / (warmup + 1)
            return max(0.1, 1.0 - 0.9 * (step - warmup) / max(1, total - warmup))

        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}
