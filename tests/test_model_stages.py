"""Stages tokenizer -> base_model -> finetune on tiny prepared files, from a config or from a pretrained folder."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import torch
from lightning.pytorch.callbacks import Callback
from safetensors.torch import load_file

from reasongen.adgen.prompts import prompt_for_row
from reasongen.io import read_curves, read_json
from reasongen.modeling import model_io
from reasongen.modeling.generation import generate_texts
from reasongen.stages import base_model, finetune, tokenizer

WEIGHTS = Path("weights") / "model.safetensors"
FEW_STEPS = {"max_steps": 3}
LOG_EVERY_STEP = {"log_every_n_steps": 1}


def weights(model_dir: Path) -> dict[str, torch.Tensor]:
    """The tensors of a save_model folder, or of a save_pretrained folder."""
    path = model_dir / WEIGHTS if (model_dir / WEIGHTS).exists() else model_dir / "model.safetensors"
    return load_file(str(path))


def run_stages(cfg, prepared: Path, root: Path, *, upto: str = "finetune", callbacks=()) -> Path:
    """The three stages with every path under root; returns root."""
    tokenizer.run(cfg, prepared / "train.jsonl", root / "tokenizer")
    base_model.run(cfg, prepared, root / "tokenizer", root / "base_model", root / "checkpoints" / "base_model")
    if upto == "finetune":
        finetune.run(cfg, prepared, root / "base_model", root / "finetune", root / "checkpoints" / "finetune",
                     callbacks=list(callbacks))
    return root


def bpe_cfg(tiny_cfg, *overrides, **sections):
    """The tiny experiment with a 300-token BPE, so that the fixture rows are enough to train it."""
    return tiny_cfg(*overrides, **{"tokenizer": {"vocab_size": 300, "min_frequency": 1}, **sections})


# --- tokenizer stage ---------------------------------------------------------------------------------------


def test_tokenizer_stage_trains_and_saves_a_lossless_bpe(tiny_cfg, tiny_prepared, tiny_rows, tmp_path):
    from transformers import AutoTokenizer

    tokenizer.run(bpe_cfg(tiny_cfg), tiny_prepared / "train.jsonl", tmp_path / "tok")
    tok = AutoTokenizer.from_pretrained(str(tmp_path / "tok"))
    assert len(tok) <= 300
    assert (tok.bos_token, tok.eos_token, tok.pad_token) == ("<s>", "</s>", "<pad>")
    assert len({tok.bos_token_id, tok.eos_token_id, tok.pad_token_id}) == 3
    for row in tiny_rows[::7]:
        ids = tok(row["summary"], add_special_tokens=False)["input_ids"]
        assert tok.decode(ids) == row["summary"]  # byte-level: nothing is lost
        assert len(ids) < len(row["summary"].encode())  # merges were learned from the rows
    held_out = "全新款式的羊毛大衣"  # characters outside the training rows still encode
    assert tok.decode(tok(held_out, add_special_tokens=False)["input_ids"]) == held_out


@pytest.mark.parametrize("trim", [False, True])
def test_tokenizer_stage_character_vocabulary_full_or_trimmed(tiny_cfg, tiny_prepared, tiny_rows, tmp_path,
                                                              monkeypatch, trim):
    """kind=bert_vocab reads a WordPiece vocab.txt under the shared root (here one the test writes: every character
    of the rows plus some unused ones); trim_to_training keeps only the specials and what training uses."""
    from transformers import AutoTokenizer

    from reasongen.paths import SHARED_ENV

    used = sorted({ch for row in tiny_rows for field in ("content", "summary") for ch in row[field].lower()} - {" "})
    unused = ["羊", "毛", "鹅", "绒"]
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    (tmp_path / "vocab.txt").write_text("\n".join(specials + unused + used) + "\n", encoding="utf-8")
    monkeypatch.setenv(SHARED_ENV, str(tmp_path))
    cfg = tiny_cfg(tokenizer={"kind": "bert_vocab", "bert_vocab_file": "vocab.txt", "trim_to_training": trim})
    tokenizer.run(cfg, tiny_prepared / "train.jsonl", tmp_path / "tok")
    tok = AutoTokenizer.from_pretrained(str(tmp_path / "tok"))
    assert (tok.bos_token, tok.eos_token, tok.pad_token) == ("[CLS]", "[SEP]", "[PAD]")
    assert (len(tok) < len(specials) + len(unused) + len(used)) == trim
    text = tiny_rows[0]["summary"]
    assert tok.unk_token not in tok.tokenize(text)  # one token per character of the training rows
    assert len(tok.tokenize(text)) == len(text.replace(" ", ""))
    assert (tok.tokenize("羊毛") == [tok.unk_token] * 2) == trim  # unused characters: dropped only when trimmed


@pytest.mark.parametrize(("overrides", "message"), [
    ({"tokenizer": {"kind": "sentencepiece"}}, "tokenizer.kind='sentencepiece'"),
    ({"tokenizer": {"kind": "pretrained"}}, "needs model.name_or_path"),
])
def test_tokenizer_stage_refuses_bad_settings(tiny_cfg, tiny_prepared, tmp_path, overrides, message):
    with pytest.raises(ValueError, match=message):
        tokenizer.run(tiny_cfg(**overrides), tiny_prepared / "train.jsonl", tmp_path / "tok")


# --- from a config -----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def built_base(tiny_cfg, tiny_prepared, tmp_path_factory) -> Path:
    """tokenizer + base_model stages of the tiny experiment (one pretraining epoch)."""
    return run_stages(bpe_cfg(tiny_cfg), tiny_prepared, tmp_path_factory.mktemp("built"), upto="base_model")


def test_base_model_stage_builds_and_pretrains_the_configured_model(built_base, tiny_cfg):
    cfg = bpe_cfg(tiny_cfg)
    model, tok, meta = model_io.load_model(built_base / "base_model" / "model")
    assert model.config.model_type == "gpt2"
    assert (model.config.n_layer, model.config.n_embd) == (cfg.model.config.n_layer, cfg.model.config.n_embd)
    assert model.get_input_embeddings().num_embeddings == len(tok)
    assert meta["trust_remote_code"] is False and meta["name_or_path"] is None
    assert meta["parameters"] == sum(p.numel() for p in model.parameters())
    curve = read_curves(built_base / "base_model" / "curves")
    assert curve["val_loss"] and all(torch.isfinite(torch.tensor(v)) for _, v in curve["val_loss"])
    assert not any((built_base / "checkpoints" / "base_model").iterdir())  # removed after success


def finetune_into(cfg, prepared: Path, base_root: Path, out: Path, **kwargs) -> dict:
    return finetune.run(cfg, prepared, base_root / "base_model", out, out.parent / f"{out.name}-checkpoints", **kwargs)


class EvalModules(Callback):
    """Names of the modules in eval mode (dropout off) at each training step."""

    def __init__(self):
        self.seen: set[str] = set()

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self.seen |= {name for name, module in pl_module.named_modules() if not module.training}


def test_finetune_stage_trains_saves_and_summarises(built_base, tiny_cfg, tiny_prepared, tiny_rows, tmp_path):
    cfg = bpe_cfg(tiny_cfg, "peft=lora", finetune=FEW_STEPS, trainer=LOG_EVERY_STEP)
    modes = EvalModules()
    summary = finetune_into(cfg, tiny_prepared, built_base, tmp_path / "ft", callbacks=[modes])
    assert not modes.seen, f"trained with dropout off in {sorted(modes.seen)[:3]}"  # load_model gives eval mode
    assert summary["peft_method"] == "lora" and summary["steps"] == 3
    assert 0 < summary["trainable_parameters"] < summary["total_parameters"]
    assert read_json(tmp_path / "ft" / "summary.json") == summary
    assert len(read_curves(tmp_path / "ft" / "curves")["train_loss"]) == 3
    assert not any((tmp_path / "ft-checkpoints").iterdir())  # the run's checkpoint folder is removed
    model, tok, meta = model_io.load_model(tmp_path / "ft" / "model")
    assert meta["peft_method"] == "lora" and not (tmp_path / "ft" / "model" / "adapter").exists()
    base = weights(built_base / "base_model" / "model")
    tuned = weights(tmp_path / "ft" / "model")
    assert base.keys() == tuned.keys()  # merged back into a plain model
    assert any(not torch.equal(base[k], tuned[k]) for k in base)
    texts = generate_texts(model, tok, [prompt_for_row(r) for r in tiny_rows[35:]],
                           {"max_new_tokens": 5, "do_sample": False}, progress=False)
    assert len(texts) == 5


def test_finetune_with_the_same_seed_gives_the_same_weights(built_base, tiny_cfg, tiny_prepared, tmp_path):
    settings = {"finetune": {**FEW_STEPS, "control_dropout": 0.3}, "peft": {"dropout": 0.1}}
    runs = {}
    for name, seed in [("a", 7), ("b", 7), ("c", 8)]:
        finetune_into(bpe_cfg(tiny_cfg, "peft=lora", seed=seed, **settings), tiny_prepared, built_base,
                      tmp_path / name)
        runs[name] = weights(tmp_path / name / "model")
    assert runs["a"].keys() == runs["b"].keys()
    for key in runs["a"]:
        assert torch.equal(runs["a"][key], runs["b"][key]), key
    assert any(not torch.equal(runs["a"][k], runs["c"][k]) for k in runs["a"])  # the seed matters


def test_finetune_refuses_virtual_tokens_beyond_the_context(built_base, tiny_cfg, tiny_prepared, tmp_path):
    """Prefix/prompt tuning put num_virtual_tokens in front of every sequence: they need positions too."""
    cfg = bpe_cfg(tiny_cfg, "peft=prompt", finetune=FEW_STEPS, trainer=LOG_EVERY_STEP, peft={"num_virtual_tokens": 32})
    positions = tiny_cfg().model.config.n_positions
    longest = cfg.finetune.max_source_length + cfg.finetune.max_target_length + 2
    cfg.peft.num_virtual_tokens = positions - longest + 1
    with pytest.raises(ValueError, match="num_virtual_tokens"):
        finetune_into(cfg, tiny_prepared, built_base, tmp_path / "too_long")
    cfg.peft.num_virtual_tokens = positions - longest
    assert finetune_into(cfg, tiny_prepared, built_base, tmp_path / "fits")["steps"] == 3


class CountBatches(Callback):
    def __init__(self):
        self.batches = 0

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self.batches += 1


def test_a_save_cut_short_loses_no_training_and_the_rerun_resumes(built_base, tiny_cfg, tiny_prepared, tmp_path,
                                                                  monkeypatch):
    """The model is written to a scratch folder and renamed into place, and the checkpoints go only after that: a
    save that dies half-way (here: after the weights, before the tokenizer) leaves the previous model folder as it
    was and every checkpoint; the rerun resumes from them (no batch trained again) and saves what a run without the
    interruption saves."""
    from transformers import PreTrainedModel

    cfg = bpe_cfg(tiny_cfg, "peft=none", finetune={"max_steps": 4}, trainer={"checkpoint_every_n_steps": 2})
    finetune_into(cfg, tiny_prepared, built_base, tmp_path / "straight")
    out = tmp_path / "ft"
    (out / "model").mkdir(parents=True)
    (out / "model" / "previous.txt").write_text("the model of an earlier run")
    save_pretrained = PreTrainedModel.save_pretrained

    def dies_after_the_weights(self, *args, **kwargs):
        save_pretrained(self, *args, **kwargs)
        raise KeyboardInterrupt("killed during the save")

    monkeypatch.setattr(PreTrainedModel, "save_pretrained", dies_after_the_weights)
    with pytest.raises(KeyboardInterrupt):
        finetune_into(cfg, tiny_prepared, built_base, out)
    assert [p.name for p in (out / "model").iterdir()] == ["previous.txt"]  # untouched, not half-replaced
    assert [p.name for p in out.parent.glob("ft-checkpoints/*/last.ckpt")] == ["last.ckpt"]
    monkeypatch.setattr(PreTrainedModel, "save_pretrained", save_pretrained)

    counter = CountBatches()
    summary = finetune_into(cfg, tiny_prepared, built_base, out, callbacks=[counter])
    assert counter.batches == 0 and summary["steps"] == 4  # resumed at the end of training: nothing retrained
    assert not (out / "model" / "previous.txt").exists()
    assert weights(out / "model").keys() == weights(tmp_path / "straight" / "model").keys()
    for key, value in weights(tmp_path / "straight" / "model").items():
        assert torch.equal(weights(out / "model")[key], value), key
    assert not any((tmp_path / "ft-checkpoints").iterdir())  # removed once the model is saved
    assert not list(out.glob(".model.*"))  # no scratch folder left behind


# --- from a pretrained folder ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pretrained_dir(bpe_tokenizer, tmp_path_factory) -> Path:
    """A tiny GPT-2 and its tokenizer (with no pad token, like GPT-2's) as save_pretrained writes them."""
    from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

    folder = tmp_path_factory.mktemp("hub") / "tiny-gpt2"
    tok = PreTrainedTokenizerFast(tokenizer_object=bpe_tokenizer.backend_tokenizer, bos_token="<s>",
                                  eos_token="</s>", unk_token="<unk>")
    torch.manual_seed(123)
    config = GPT2Config(vocab_size=len(tok), n_layer=1, n_head=2, n_embd=32, n_positions=128,
                        bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id)
    GPT2LMHeadModel(config).save_pretrained(str(folder))
    tok.save_pretrained(str(folder))
    assert (folder / "model.safetensors").exists()
    return folder


@pytest.fixture
def remote_code_calls(monkeypatch) -> list:
    """trust_remote_code as passed to every AutoModelForCausalLM / AutoTokenizer.from_pretrained."""
    import transformers

    calls = []
    for cls in (transformers.AutoModelForCausalLM, transformers.AutoTokenizer):
        original = cls.from_pretrained

        def spy(*args, _original=original, **kwargs):
            calls.append(kwargs.get("trust_remote_code", False))
            return _original(*args, **kwargs)

        monkeypatch.setattr(cls, "from_pretrained", spy)
    return calls


def hub_cfg(tiny_cfg, path: Path, *overrides, **sections):
    return tiny_cfg("model=hub", "tokenizer=pretrained", *overrides,
                    **{"model": {"name_or_path": str(path)}, **sections})


def test_pretrained_model_and_tokenizer_are_adopted_as_saved(pretrained_dir, tiny_cfg, tiny_prepared, tmp_path,
                                                            remote_code_calls):
    cfg = hub_cfg(tiny_cfg, pretrained_dir, "peft=lora", pretrain={"epochs": 0}, finetune=FEW_STEPS,
                  trainer=LOG_EVERY_STEP)
    run_stages(cfg, tiny_prepared, tmp_path)

    tok = model_io.load_model(tmp_path / "base_model" / "model")[1]
    assert tok.pad_token == tok.eos_token == "</s>"  # GPT-2 style: pad falls back to eos
    saved = weights(pretrained_dir)
    base = weights(tmp_path / "base_model" / "model")
    assert base.keys() == saved.keys()
    for key in saved:  # epochs=0: exactly the checkpoint's weights
        assert torch.equal(base[key], saved[key]), key
    meta = json.loads((tmp_path / "base_model" / "model" / "reasongen.json").read_text())
    assert meta["name_or_path"] == str(pretrained_dir) and meta["trust_remote_code"] is False

    tuned = weights(tmp_path / "finetune" / "model")
    for key in ("transformer.wte.weight", "transformer.wpe.weight", "transformer.ln_f.weight"):
        assert torch.equal(tuned[key], saved[key]), key  # LoRA leaves these as loaded
    assert any(not torch.equal(tuned[k], saved[k]) for k in saved)
    assert read_json(tmp_path / "finetune" / "summary.json")["trust_remote_code"] is False
    assert remote_code_calls and not any(remote_code_calls)


def test_pretraining_continues_from_the_pretrained_weights(pretrained_dir, tiny_cfg, tiny_prepared, tmp_path):
    from transformers import GPT2Config, GPT2LMHeadModel

    cfg = hub_cfg(tiny_cfg, pretrained_dir, pretrain={"epochs": 1})
    run_stages(cfg, tiny_prepared, tmp_path, upto="base_model")
    saved = weights(pretrained_dir)
    trained = weights(tmp_path / "base_model" / "model")
    torch.manual_seed(999)
    fresh = GPT2LMHeadModel(GPT2Config.from_pretrained(str(pretrained_dir))).state_dict()

    def distance(a, b):
        return sum(float((a[k].float() - b[k].float()).norm() ** 2) for k in saved) ** 0.5

    assert distance(trained, saved) > 0  # it trained
    assert distance(trained, saved) < 0.2 * distance(fresh, saved)  # starting from the checkpoint
    assert read_curves(tmp_path / "base_model" / "curves")["val_loss"]


@pytest.mark.parametrize("stage", ["tokenizer", "base_model"])
def test_a_missing_pretrained_path_fails_fast_and_clearly(stage, pretrained_dir, tiny_cfg, tiny_prepared, tmp_path):
    missing = tmp_path / "no-such-model"
    cfg = hub_cfg(tiny_cfg, missing)
    if stage == "base_model":  # a tokenizer from the real folder, the model from the missing one
        tokenizer.run(hub_cfg(tiny_cfg, pretrained_dir), tiny_prepared / "train.jsonl", tmp_path / "tokenizer")
    started = time.monotonic()
    with pytest.raises((OSError, ValueError)) as error:
        run_stages(cfg, tiny_prepared, tmp_path, upto="base_model") if stage == "tokenizer" else base_model.run(
            cfg, tiny_prepared, tmp_path / "tokenizer", tmp_path / "base_model", tmp_path / "checkpoints")
    assert time.monotonic() - started < 15
    assert f"{missing}: no such model folder" in str(error.value)
