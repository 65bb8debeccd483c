"""Stage `base_model`: build a small causal LM from a transformers config (or load one with from_pretrained)
and pretrain it as a language model on the training split."""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig

from reasongen.config import config_hash, to_container
from reasongen.io import read_jsonl
from reasongen.modeling import model_io
from reasongen.modeling.datamodule import PromptDataModule
from reasongen.modeling.module import CausalLMModule
from reasongen.modeling.peft_builder import trainable_parameters
from reasongen.modeling.training import CurveRecorder, fit, is_global_zero
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
    checkpoint_root.mkdir(parents=True, exist_ok=True)  # a persistent DVC output: it must exist, even empty
    tokenizer = AutoTokenizer.from_pretrained(str(tokenizer_dir))
    model = model_io.base_model(cfg.model, tokenizer)
    model_io.check_context(model, cfg.finetune.max_source_length + cfg.finetune.max_target_length + 2)
    _, n_params = trainable_parameters(model)
    print(f"base model: {model.config.model_type}, {n_params / 1e6:.2f}M parameters")
    pretrain = cfg.pretrain
    if pretrain.epochs > 0:
        datamodule = PromptDataModule(
            tokenizer,
            read_jsonl(prepared_dir / "train.jsonl"),
            read_jsonl(prepared_dir / "val.jsonl"),
            batch_size=pretrain.batch_size,
            max_source_length=cfg.finetune.max_source_length,
            max_target_length=cfg.finetune.max_target_length,
            pretrain=True,
            seed=cfg.seed,
        )
        module = CausalLMModule(model, pretrain.lr, pretrain.weight_decay, pretrain.warmup_ratio)
        trainer_cfg = {**to_container(cfg.finetune), "epochs": pretrain.epochs, "max_steps": -1,
                       "patience": pretrain.epochs}
        run_id = config_hash(cfg.data, cfg.tokenizer, cfg.model, cfg.pretrain, cfg.seed)
        fit(module, datamodule, trainer_cfg, checkpoint_root / run_id, out_dir / "curves")
    else:
        CurveRecorder().write(out_dir / "curves")  # no pretraining: an empty curve keeps the outs fixed
    summary = {"model_type": model.config.model_type, "parameters": n_params, "name_or_path": cfg.model.name_or_path,
               "trust_remote_code": bool(cfg.model.trust_remote_code)}
    if is_global_zero():  # under DDP every rank gets here with the same weights; one writes
        model_io.save_model(model, tokenizer, out_dir / "model", summary)
