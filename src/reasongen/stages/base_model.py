"""Stage `base_model`: build a small causal LM from a transformers config (or load one with from_pretrained)
and pretrain it as a language model on the training split."""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig

from reasongen import runs
from reasongen.adgen.prompts import datamodule_options
from reasongen.config import config_hash, to_container
from reasongen.io import read_jsonl, sha256_tree
from reasongen.modeling import model_io
from reasongen.modeling.datamodule import PromptDataModule
from reasongen.modeling.peft_builder import trainable_parameters
from reasongen.modeling.training import CurveRecorder, checkpoint_dir, is_global_zero, remove_checkpoints, train_lm
from reasongen.seeding import seed_everything


def run(
    cfg: DictConfig,
    prepared_dir: Path = Path("outputs/prepare"),
    tokenizer_dir: Path = Path("outputs/tokenizer"),
    out_dir: Path = Path("outputs/base_model"),
    checkpoint_root: Path = Path("checkpoints/base_model"),
) -> None:
    from transformers import AutoTokenizer

    seed_everything(cfg.seed)
    tokenizer = AutoTokenizer.from_pretrained(str(tokenizer_dir))
    model = model_io.base_model(cfg.model, tokenizer)
    lengths = cfg.finetune.max_source_length, cfg.finetune.max_target_length
    model_io.check_context(model, sum(lengths) + 2)
    _, n_params = trainable_parameters(model)
    print(f"base model: {model.config.model_type}, {n_params / 1e6:.2f}M parameters")
    pretrain = cfg.pretrain
    run_dir = checkpoint_dir(checkpoint_root, config_hash(cfg.model, pretrain, cfg.trainer, lengths, cfg.seed,
                                                       sha256_tree(prepared_dir / "train.jsonl", tokenizer_dir)))
    if pretrain.epochs > 0:
        datamodule = PromptDataModule(
            tokenizer,
            read_jsonl(prepared_dir / "train.jsonl"),
            read_jsonl(prepared_dir / "val.jsonl"),
            **datamodule_options(),
            batch_size=pretrain.batch_size,
            max_source_length=lengths[0],
            max_target_length=lengths[1],
            pretrain=True,
            seed=cfg.seed,
        )
        datasets = runs.split_files(prepared_dir, "training", "validation")
        with runs.stage_run(cfg.logger, cfg.tracking.experiment, "base_model", cfg, datasets) as logger:
            # pretraining runs all its epochs: no early stopping
            train_lm(model, datamodule, cfg.trainer, to_container(pretrain), run_dir, out_dir / "curves",
                     patience=pretrain.epochs, logger=logger)
    else:
        CurveRecorder().write(out_dir / "curves")  # no pretraining: an empty curve keeps the outs fixed
    summary = {"model_type": model.config.model_type, "parameters": n_params, "name_or_path": cfg.model.name_or_path,
               "trust_remote_code": bool(cfg.model.trust_remote_code)}
    if is_global_zero():  # under DDP every rank gets here with the same weights; one writes
        model_io.save_model(model, tokenizer, out_dir / "model", summary)
        remove_checkpoints(run_dir)  # only now: a kill before the model is saved resumes from them
