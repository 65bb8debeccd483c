"""Lightning training through modeling.training.fit: every PEFT method, save/load round trips, AdaLoRA upkeep,
resuming after a crash."""

from __future__ import annotations

import math

import pytest
import torch
from lightning.pytorch.callbacks import Callback

from reasongen.adgen.prompts import datamodule_options, prompt_for_row
from reasongen.config import to_container
from reasongen.io import read_curves
from reasongen.modeling import model_io, peft_builder
from reasongen.modeling.datamodule import PromptDataModule
from reasongen.modeling.encoding import PadCollator, encode_example
from reasongen.modeling.generation import generate_texts
from reasongen.modeling.module import CausalLMModule
from reasongen.modeling.training import LAST, fit
from reasongen.seeding import seed_everything

# What a method's trainable parameter names contain (none: every parameter trains).
ADAPTER_MARK = {"lora": "lora_", "adalora": "lora_", "ia3": "ia3_", "prefix": "prompt_encoder",
                "prompt": "prompt_encoder"}
# Ranks small enough for a 32-wide model that adapters stay a small share of it, whatever conf/peft/ says.
TINY_RANKS = {"lora": {"r": 4}, "adalora": {"init_r": 4, "target_r": 2}}
GREEDY = {"max_new_tokens": 8, "do_sample": False, "batch_size": 4}
STEPS_PER_EPOCH = 4  # 30 training rows, batch size 8


def datamodule(tokenizer, rows, seed: int = 0) -> PromptDataModule:
    return PromptDataModule(tokenizer, rows[:30], rows[30:35], **datamodule_options(), batch_size=8,
                            max_source_length=48, max_target_length=24, control_dropout=0.2, seed=seed)


def trainer_settings(cfg, **changes) -> dict:
    """The tiny experiment's trainer section (as the stages pass it to fit) with changes."""
    return {**to_container(cfg.trainer), "log_every_n_steps": 1, **changes}


def snapshot(model) -> dict[str, torch.Tensor]:
    return {name: p.detach().clone() for name, p in model.named_parameters()}


def held_out_batch(tokenizer, rows):
    return PadCollator(tokenizer.pad_token_id)(
        [encode_example(tokenizer, prompt_for_row(r), r["summary"], 48, 24, False) for r in rows[35:]])


@pytest.mark.parametrize(
    ("kind", "method"),
    [("gpt2", method) for method in peft_builder.METHODS] + [("llama", "lora")],
)
def test_peft_method_trains_only_its_parameters_and_round_trips(
    kind, method, tiny_cfg, tiny_model, bpe_tokenizer, tiny_rows, tmp_path
):
    tok = bpe_tokenizer
    cfg = tiny_cfg(f"peft={method}", peft=TINY_RANKS.get(method, {}))
    seed_everything(0)
    model = peft_builder.wrap(tiny_model(kind, tok), cfg.peft, total_steps=STEPS_PER_EPOCH)
    trainable = {name for name, p in model.named_parameters() if p.requires_grad}
    n_trainable, n_total = peft_builder.trainable_parameters(model)
    if method == "none":
        assert n_trainable == n_total
    else:
        assert 0 < n_trainable < 0.15 * n_total
        assert trainable and all(ADAPTER_MARK[method] in name for name in trainable)
    before = snapshot(model)

    module = CausalLMModule(model, lr=1e-2)
    trainer = fit(module, datamodule(tok, tiny_rows), trainer_settings(cfg),
                  tmp_path / "checkpoints", tmp_path / "curves", epochs=1, max_steps=3)

    assert trainer.global_step == 3
    curve = read_curves(tmp_path / "curves")
    assert [step for step, _ in curve["train_loss"]] == [1, 2, 3]
    assert all(math.isfinite(loss) and loss > 0 for _, loss in curve["train_loss"])
    assert (tmp_path / "checkpoints" / LAST).exists()  # kept until the stage has saved the model
    for name, value in model.named_parameters():
        if name in trainable:
            assert not torch.equal(value, before[name]), f"{name} did not train"
        else:
            assert torch.equal(value, before[name]), f"frozen {name} changed"

    # Saved (merged where the method allows) and reloaded: same logits, same greedy texts.
    model.eval()
    prompts = [prompt_for_row(row) for row in tiny_rows[30:]]
    batch = held_out_batch(tok, tiny_rows)
    with torch.inference_mode():
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    texts = generate_texts(model, tok, prompts, GREEDY, progress=False)
    model_io.save_model(model, tok, tmp_path / "model", {"peft_method": method, "trust_remote_code": False})

    assert (tmp_path / "model" / "weights" / "model.safetensors").exists()
    assert (tmp_path / "model" / "adapter").exists() == (method in ("prefix", "prompt"))
    loaded, loaded_tok, meta = model_io.load_model(tmp_path / "model")
    assert meta["peft_method"] == method
    assert not loaded.training
    assert loaded_tok(prompts[0])["input_ids"] == tok(prompts[0])["input_ids"]
    with torch.inference_mode():
        reloaded_logits = loaded(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    torch.testing.assert_close(reloaded_logits, logits, atol=1e-4, rtol=1e-4)
    assert generate_texts(loaded, loaded_tok, prompts, GREEDY, progress=False) == texts
    # saving merged the adapter into the in-memory model: it must still generate the same
    assert generate_texts(model, tok, prompts, GREEDY, progress=False) == texts


def test_adalora_reallocates_ranks_through_the_whole_schedule(tiny_cfg, tiny_model, bpe_tokenizer, tiny_rows,
                                                              tmp_path):
    """tinit=1, tfinal=1, delta_t=1 over 8 steps: budgeting, the final mask (step 7) and masking by the final
    rank pattern afterwards (step 8) all run from CausalLMModule.on_train_batch_end."""
    cfg = tiny_cfg("peft=adalora", peft={"tinit": 1, "tfinal": 1, "delta_t": 1, "init_r": 8, "target_r": 2})
    seed_everything(0)
    model = peft_builder.wrap(tiny_model("gpt2", bpe_tokenizer), cfg.peft, total_steps=2 * STEPS_PER_EPOCH)
    calls = []
    allocate = model.base_model.update_and_allocate
    model.base_model.update_and_allocate = lambda step: (calls.append(step), allocate(step))[1]

    fit(CausalLMModule(model, lr=1e-2), datamodule(bpe_tokenizer, tiny_rows),
        trainer_settings(cfg, patience=5), tmp_path / "ck", tmp_path / "curves", epochs=2)

    assert calls == list(range(1, 2 * STEPS_PER_EPOCH + 1))
    pattern = model.peft_config["default"].rank_pattern
    assert pattern, "the final rank allocation never happened"
    kept = sum(sum(mask) for mask in pattern.values())
    assert 0 < kept < 8 * len(pattern)  # ranks were cut towards target_r
    for name, mask in pattern.items():
        lora_e = model.get_parameter(f"base_model.model.{name}")
        dropped = torch.tensor([not keep for keep in mask])
        assert (lora_e[dropped] == 0).all(), f"{name}: ranks outside the pattern are not masked"
    assert all(math.isfinite(loss) for _, loss in read_curves(tmp_path / "curves")["train_loss"])


class Crash(Callback):
    """Raises once the trainer reaches a given optimiser step (after that step's checkpointing)."""

    def __init__(self, at_step: int):
        self.at_step = at_step
        self.points_at_crash = None

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if trainer.global_step == self.at_step:
            recorder = next(c for c in trainer.callbacks if type(c).__name__ == "CurveRecorder")
            self.points_at_crash = {name: list(points) for name, points in recorder.points.items()}
            raise RuntimeError("simulated crash")


class CountSteps(Callback):
    def __init__(self):
        self.batches = 0

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self.batches += 1


def test_fit_resumes_from_last_checkpoint_after_a_crash(tiny_cfg, tiny_model, bpe_tokenizer, tiny_rows, tmp_path):
    cfg = tiny_cfg("peft=lora")
    settings = trainer_settings(cfg, patience=5, checkpoint_every_n_steps=2)

    def run(folder, callbacks):
        seed_everything(0)
        model = peft_builder.wrap(tiny_model("gpt2", bpe_tokenizer), cfg.peft, total_steps=8)
        module = CausalLMModule(model, lr=1e-2)
        trainer = fit(module, datamodule(bpe_tokenizer, tiny_rows), settings, folder / "ck", folder / "curves",
                      epochs=2, callbacks=callbacks)
        return trainer

    reference = run(tmp_path / "straight", [])
    straight = read_curves(tmp_path / "straight" / "curves")
    total = 2 * STEPS_PER_EPOCH
    assert reference.global_step == total

    crash = Crash(at_step=7)  # mid-epoch 2: last.ckpt from step 6, best.ckpt from the epoch-1 validation
    with pytest.raises(RuntimeError, match="simulated crash"):
        run(tmp_path / "crashed", [crash])
    assert (tmp_path / "crashed" / "ck" / LAST).exists()
    assert not (tmp_path / "crashed" / "curves").exists()  # nothing written by the failed run

    counter = CountSteps()
    resumed = run(tmp_path / "crashed", [counter])
    assert resumed.global_step == total
    assert counter.batches == total - 6  # continued from step 6, did not start over

    curve = read_curves(tmp_path / "crashed" / "curves")
    assert [s for s, _ in curve["train_loss"]] == [s for s, _ in straight["train_loss"]] == list(range(1, total + 1))
    assert [s for s, _ in curve["val_loss"]] == [s for s, _ in straight["val_loss"]] == [4, 8]
    # points recorded before the checkpoint survive the crash unchanged (and match the uninterrupted run)
    assert curve["train_loss"][:6] == straight["train_loss"][:6] == crash.points_at_crash["train_loss"][:6]
    assert curve["val_loss"][0] == straight["val_loss"][0]
    assert all(math.isfinite(v) for _, v in curve["train_loss"] + curve["val_loss"])


class Spoil(Callback):
    """Keeps the weights validated after the first epoch, then ruins them just before the second validation."""

    def __init__(self, last_step: int):
        self.last_step = last_step
        self.first_validated = None

    def on_validation_end(self, trainer, pl_module):
        if trainer.current_epoch == 0:
            self.first_validated = {k: v.detach().clone() for k, v in pl_module.state_dict().items()}

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if trainer.global_step == self.last_step:
            with torch.no_grad():
                for parameter in pl_module.parameters():
                    parameter.add_(torch.randn_like(parameter) * 5)


def test_fit_ends_with_the_best_validated_weights(tiny_cfg, tiny_model, bpe_tokenizer, tiny_rows, tmp_path):
    cfg = tiny_cfg("peft=none")
    seed_everything(0)
    module = CausalLMModule(tiny_model("gpt2", bpe_tokenizer), lr=1e-2)
    spoil = Spoil(last_step=2 * STEPS_PER_EPOCH)
    fit(module, datamodule(bpe_tokenizer, tiny_rows), trainer_settings(cfg, patience=5),
        tmp_path / "ck", tmp_path / "curves", epochs=2, callbacks=[spoil])
    (_, first), (_, second) = read_curves(tmp_path / "curves")["val_loss"]
    assert second > first
    final = module.state_dict()
    assert final.keys() == spoil.first_validated.keys()
    for key, value in spoil.first_validated.items():
        assert torch.equal(final[key], value), key
