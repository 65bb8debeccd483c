"""Training figures: the project's trainer (train_lm with CausalLMModule and PromptDataModule, as the finetune stage
runs them) against a default transformers.Trainer on the same rows and model, FLOP utilisation, padding waste, the
cost per epoch at several sizes, and a profile of a few steps."""

from __future__ import annotations

import copy
import math
import tempfile
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch.callbacks import Callback

from benchmarks.bench.inputs import Inputs
from reasongen.adgen.prompts import datamodule_options
from reasongen.config import to_container
from reasongen.modeling import model_io
from reasongen.modeling.datamodule import PromptDataModule
from reasongen.modeling.training import auto_precision, train_lm

LOSS_TOLERANCE = (0.1, 0.03)  # "equal loss": within 0.1 nats, or within 3% of the baseline's


@dataclass
class Timing:
    """The timed steps of one run: non-pad tokens, example lengths, seconds and per-step losses."""
    tokens: int = 0
    seconds: float = 0.0
    steps: int = 0
    lengths: list[int] = field(default_factory=list)
    losses: list[float] = field(default_factory=list)

    @property
    def tokens_per_s(self) -> float:
        return self.tokens / self.seconds

    def final_loss(self, last: int = 10) -> float:
        """The mean loss of the last steps: one step's loss is too noisy to compare two runs by."""
        tail = self.losses[-last:]
        return sum(tail) / len(tail)


class StepClock(Callback):
    """Times the steps after `warm` warm-up steps of a Lightning fit and counts their non-pad tokens."""

    def __init__(self, warm: int):
        self.warm, self.timing, self.started = warm, Timing(), 0.0

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if trainer.global_step == self.warm:
            self.started = time.perf_counter()
        if trainer.global_step >= self.warm:
            self.timing.tokens += int(batch["attention_mask"].sum())
            self.timing.lengths += batch["attention_mask"].sum(1).tolist()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        loss = outputs["loss"] if isinstance(outputs, Mapping) else outputs
        self.timing.losses.append(float(loss))
        if trainer.global_step > self.warm:
            self.timing.seconds = time.perf_counter() - self.started
            self.timing.steps = trainer.global_step - self.warm


def datamodule(inputs: Inputs, tokenizer, train_rows: list[dict[str, Any]], batch_size: int | None = None):
    """The finetune stage's datamodule over train_rows (its batch size unless given)."""
    finetune = inputs.cfg.finetune
    return PromptDataModule(tokenizer, train_rows, inputs.rows("val")[:64], **datamodule_options(),
                            batch_size=batch_size or finetune.batch_size,
                            max_source_length=finetune.max_source_length,
                            max_target_length=finetune.max_target_length,
                            control_dropout=finetune.control_dropout, seed=inputs.cfg.seed, num_workers=0)


def starting_model(inputs: Inputs):
    """(model, tokenizer) that fine-tuning starts from: the base model when the pipeline made one."""
    model, tokenizer, _ = model_io.load_model(inputs.base_dir or inputs.model_dir)
    return model, tokenizer


def trainer_config(inputs: Inputs) -> dict[str, Any]:
    return to_container(inputs.cfg.trainer)


def precision(inputs: Inputs) -> str:
    return auto_precision(trainer_config(inputs)["precision"])


def project_run(inputs: Inputs, model, dm, warm: int, steps: int, callbacks: Iterable[Callback] = ()) -> Timing:
    """warm + steps optimiser steps of the project's trainer, as the finetune stage calls it; the last `steps` timed."""
    clock = StepClock(warm)
    schedule = {**to_container(inputs.cfg.finetune), "max_steps": warm + steps, "epochs": 1000}
    with tempfile.TemporaryDirectory() as work:
        train_lm(model, dm, trainer_config(inputs), schedule, Path(work) / "checkpoints", Path(work) / "curves",
                 callbacks=[clock, *callbacks])
    return clock.timing


def hf_run(inputs: Inputs, model, tokenizer, examples: list[dict[str, list[int]]], warm: int, steps: int) -> Timing:
    """The same number of steps of a default transformers.Trainer (fp32, random batches padded per batch by
    DataCollatorForSeq2Seq, no grouping by length) with the finetune stage's lr, weight decay and warm-up steps."""
    from transformers import DataCollatorForSeq2Seq, Trainer, TrainerCallback, TrainingArguments

    timing = Timing()
    collate = DataCollatorForSeq2Seq(tokenizer, padding=True)
    batch_tokens: list[list[int]] = []

    def counting_collate(features):
        batch = collate(features)
        batch_tokens.append(batch["attention_mask"].sum(1).tolist())  # batch i is step i's (no accumulation)
        return batch

    class Clock(TrainerCallback):
        def on_step_begin(self, args, state, control, **kwargs):
            if state.global_step == warm:
                timing.started = time.perf_counter()

        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step > warm:
                timing.seconds = time.perf_counter() - timing.started
                timing.steps = state.global_step - warm

        def on_log(self, args, state, control, logs=None, **kwargs):
            if logs and "loss" in logs:
                timing.losses.append(float(logs["loss"]))

    finetune = inputs.cfg.finetune
    with tempfile.TemporaryDirectory() as work:
        arguments = TrainingArguments(output_dir=work, per_device_train_batch_size=finetune.batch_size,
                                      max_steps=warm + steps, learning_rate=finetune.lr,
                                      weight_decay=finetune.weight_decay,
                                      warmup_steps=int((warm + steps) * finetune.warmup_ratio),
                                      logging_steps=1, report_to=[], save_strategy="no", eval_strategy="no",
                                      disable_tqdm=True, seed=inputs.cfg.seed, use_cpu=not torch.cuda.is_available())
        Trainer(model=model, args=arguments, train_dataset=examples, data_collator=counting_collate,
                callbacks=[Clock()]).train()
    timed = [length for batch in batch_tokens[warm : warm + steps] for length in batch]
    timing.tokens, timing.lengths = sum(timed), timed
    return timing


def losses_agree(ours: float, theirs: float) -> bool:
    return abs(ours - theirs) <= LOSS_TOLERANCE[0] or abs(ours - theirs) <= LOSS_TOLERANCE[1] * abs(theirs)


def compare_trainers(inputs: Inputs, warm: int, steps: int) -> tuple[Timing, Timing, Any]:
    """(project timing, transformers.Trainer timing, model): both from the same weights on the same rows."""
    model, tokenizer = starting_model(inputs)
    dm = datamodule(inputs, tokenizer, inputs.rows("train"))
    ours = project_run(inputs, copy.deepcopy(model), dm, warm, steps)
    dm.setup()
    theirs = hf_run(inputs, copy.deepcopy(model), tokenizer, dm.encoded["train"], warm, steps)
    return ours, theirs, model


def model_flops_per_token(model, mean_length: float) -> tuple[float, str]:
    """Training FLOPs per token, 6·N + 12·L·d·T (PaLM, appendix B), with N the non-embedding parameters plus the
    output projection (d·V, tied to the input embedding, so not among N otherwise), L layers, width d, T the mean
    example length in tokens."""
    config = model.config
    embeddings = {id(p) for module in (model.get_input_embeddings(), getattr(model.transformer, "wpe", None))
                  if module is not None for p in module.parameters()}
    non_embedding = sum(p.numel() for p in model.parameters() if id(p) not in embeddings)
    width, layers = config.n_embd, config.n_layer
    n = non_embedding + width * config.vocab_size
    formula = (f"6·N + 12·L·d·T per token; N = {non_embedding:,} non-embedding + {width}·{config.vocab_size} output "
               f"projection, L = {layers}, d = {width}, T = {mean_length:.0f} (mean example length)")
    return 6 * n + 12 * layers * width * mean_length, formula


def padding_share(batches: Iterable[Mapping[str, torch.Tensor]]) -> tuple[float, int, int]:
    """(pad tokens / all tokens, pad tokens, all tokens) over batches with an attention mask."""
    pads = total = 0
    for batch in batches:
        mask = batch["attention_mask"]
        pads += int((mask == 0).sum())
        total += mask.numel()
    return (pads / total if total else 0.0), pads, total


def padding_waste(inputs: Inputs) -> tuple[float, int, int]:
    """padding_share of one epoch of the finetune stage's train loader over the training split."""
    _, tokenizer, _ = model_io.load_model(inputs.model_dir)
    dm = datamodule(inputs, tokenizer, inputs.rows("train"))
    dm.setup()
    return padding_share(dm.train_dataloader())


def scaling(inputs: Inputs, row_counts: Iterable[int], warm: int, steps: int) -> list[dict[str, Any]]:
    """Seconds per epoch (steps per epoch × timed seconds per step) at each training size, for the default model
    config and one twice as wide, each freshly initialised."""
    _, tokenizer, _ = model_io.load_model(inputs.model_dir)
    default = to_container(inputs.cfg.model.config)
    sizes = {"default": default, "2× width": {**default, "n_embd": 2 * default["n_embd"]}}
    train = inputs.rows("train")
    found = []
    for name, config in sizes.items():
        for rows in row_counts:
            torch.manual_seed(inputs.cfg.seed)
            model = model_io.from_config(config, tokenizer)
            dm = datamodule(inputs, tokenizer, train[:rows])
            timing = project_run(inputs, model, dm, warm, steps)
            per_epoch = math.ceil(min(rows, len(train)) / inputs.cfg.finetune.batch_size)
            s_per_step = timing.seconds / timing.steps
            found.append({"model": f"{name} ({config['n_layer']}×{config['n_embd']})",
                          "parameters": sum(p.numel() for p in model.parameters()), "rows": min(rows, len(train)),
                          "steps_per_epoch": per_epoch, "s_per_step": s_per_step, "epoch_s": per_epoch * s_per_step})
    return found


def scaling_summary(rows: list[dict[str, Any]]) -> str:
    """One sentence on how an epoch's cost grows with the rows and with the width."""
    by = {(r["model"], r["rows"]): r["epoch_s"] for r in rows}
    models = list(dict.fromkeys(r["model"] for r in rows))
    counts = sorted({r["rows"] for r in rows})
    data_growth = by[(models[0], counts[-1])] / by[(models[0], counts[0])]
    width_growth = by[(models[-1], counts[-1])] / by[(models[0], counts[-1])]
    return (f"Steps per epoch grow with the rows, at the same batch size, so an epoch's time should too: "
            f"×{counts[-1] / counts[0]:.0f} rows measured ×{data_growth:.1f} time (the rest is the timing noise of a "
            f"few steps on shared cores); doubling the width measured ×{width_growth:.1f} per epoch at "
            f"{counts[-1]:,} rows (the layers' matmuls grow ×4, the output projection ×2, fixed overheads not at all).")


def profile_steps(inputs: Inputs, steps: int = 4, rows: int = 20) -> str:
    """The top operators by self CPU time over a few steps of the project's trainer (torch.profiler)."""
    from torch.profiler import ProfilerActivity, profile

    model, tokenizer = starting_model(inputs)
    dm = datamodule(inputs, tokenizer, inputs.rows("train"))
    with profile(activities=[ProfilerActivity.CPU]) as profiler:
        project_run(inputs, model, dm, 0, steps)
    return profiler.key_averages().table(sort_by="self_cpu_time_total", row_limit=rows, max_name_column_width=50)
