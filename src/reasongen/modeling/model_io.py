"""Building, loading and saving models: from a transformers config, from_pretrained, or a finetune output."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig

from reasongen.config import to_container
from reasongen.io import atomic_folder
from reasongen.modeling.peft_builder import MERGEABLE

WEIGHTS_DIR = "weights"  # full or merged weights (safetensors)
ADAPTER_DIR = "adapter"  # PEFT adapter, for methods that cannot be merged (prefix, prompt)
TOKENIZER_DIR = "tokenizer"
META_FILE = "reasongen.json"
TRAIN_TEXTS_FILE = "train_texts.jsonl"  # Task A: the fine-tuning split's texts, retrieve-and-edit's source


def from_config(model_config: DictConfig | dict[str, Any], tokenizer):
    """A freshly initialised causal LM of the configured architecture, sized to the tokenizer."""
    from transformers import AutoConfig, AutoModelForCausalLM

    options = to_container(model_config)
    model_type = options.pop("model_type")
    config = AutoConfig.for_model(
        model_type,
        vocab_size=len(tokenizer),
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        **options,
    )
    return AutoModelForCausalLM.from_config(config)


def check_name_or_path(name_or_path: str) -> None:
    """A clear error for a folder that is not there (transformers would report an invalid hub repo id)."""
    path = Path(name_or_path).expanduser()
    looks_local = path.is_absolute() or name_or_path.startswith((".", "~")) or name_or_path.count("/") > 1
    if looks_local and not path.is_dir():
        raise FileNotFoundError(f"{name_or_path}: no such model folder (model.name_or_path takes a folder written "
                                "by save_pretrained or a hub id such as 'Qwen/Qwen2.5-0.5B')")


def from_pretrained(name_or_path: str, trust_remote_code: bool = False):
    """Any causal LM from the hub or a folder, in safetensors, remote code off unless asked for."""
    from transformers import AutoModelForCausalLM

    check_name_or_path(name_or_path)
    return AutoModelForCausalLM.from_pretrained(
        name_or_path, trust_remote_code=trust_remote_code, use_safetensors=True, dtype=torch.float32
    )


def base_model(model_cfg: DictConfig, tokenizer):
    """The base LM for the base_model stage: loaded when model.name_or_path is set, else built from model.config."""
    if model_cfg.name_or_path:
        model = from_pretrained(model_cfg.name_or_path, model_cfg.trust_remote_code)
        if model.get_input_embeddings().num_embeddings < len(tokenizer):
            model.resize_token_embeddings(len(tokenizer))
        return model
    return from_config(model_cfg.config, tokenizer)


def check_context(model, needed: int, virtual_tokens: int = 0) -> None:
    """Fail early, with the fix, when (virtual tokens +) prompt + text cannot fit the model's position embeddings."""
    limit = getattr(model.config, "max_position_embeddings", None)
    if limit is not None and limit < needed + virtual_tokens:
        virtual = f" ({virtual_tokens} of them peft.num_virtual_tokens)" if virtual_tokens else ""
        raise ValueError(f"sequences need {needed + virtual_tokens} positions{virtual} but the model has {limit}: "
                         "raise the model's positions or lower finetune.max_source_length / "
                         "finetune.max_target_length" + (" / peft.num_virtual_tokens" if virtual_tokens else ""))


def save_model(model, tokenizer, out_dir: Path, meta: dict[str, Any],
               extras: Callable[[Path], None] | None = None) -> None:
    """Save a (possibly PEFT) model folder that load_model restores: merged when possible, else base + adapter;
    `extras(folder)` writes any further files into it. Atomic: a kill leaves the previous folder (or none), never a
    partial one."""
    from peft import PeftModel

    with atomic_folder(out_dir) as folder:
        if isinstance(model, PeftModel):
            if meta.get("peft_method") in MERGEABLE:
                model.merge_and_unload().save_pretrained(folder / WEIGHTS_DIR)
            else:
                model.get_base_model().save_pretrained(folder / WEIGHTS_DIR)
                model.save_pretrained(folder / ADAPTER_DIR)
        else:
            model.save_pretrained(folder / WEIGHTS_DIR)
        tokenizer.save_pretrained(folder / TOKENIZER_DIR)
        if extras is not None:
            extras(folder)
        (folder / META_FILE).write_text(json.dumps(meta, ensure_ascii=False, indent=2), encoding="utf-8")


def default_device() -> str:
    """Where a loaded model generates: the GPU when there is one."""
    return "cuda" if torch.cuda.is_available() else "cpu"


DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}


def cpu_has_bf16() -> bool:
    """Whether this CPU has bf16 instructions (AVX512-BF16 or AMX); False where torch cannot tell."""
    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(getattr(torch.cpu, name, lambda: False)() for name in checks)


def cpu_has_amx() -> bool:
    """Whether this CPU has AMX tiles (Intel Sapphire Rapids and later); False where torch cannot tell."""
    return bool(getattr(torch.cpu, "_is_amx_tile_supported", lambda: False)())


def inference_dtype(name: str | None) -> torch.dtype:
    """The dtype a model generates in: `auto` (or unset) is bfloat16 on a GPU that supports it and on a CPU with AMX
    (decoding took about 30% less time on one), float32 elsewhere. On a CPU with AVX512-BF16 but no AMX (an AMD
    EPYC), bf16 decoding was slower than fp32 (the evaluate stage's candidates 37.0 s against 27.8 s; one request
    249 ms against 219), though bf16 training was faster (14.6k against 9.2k tokens/s): training keeps native_bf16."""
    if name in DTYPES:
        return DTYPES[name]
    if name not in (None, "auto"):
        raise ValueError(f"generation.dtype {name!r}: one of auto, {', '.join(DTYPES)}")
    fast = native_bf16() if torch.cuda.is_available() else cpu_has_amx()
    return torch.bfloat16 if fast else torch.float32


def native_bf16() -> bool:
    """Whether the device that computes (the GPU when there is one, else the CPU) has bf16 arithmetic in hardware:
    where it is emulated, bf16 is slower than fp32."""
    if torch.cuda.is_available():
        return torch.cuda.is_bf16_supported()
    return cpu_has_bf16()


def load_model(model_dir: str | Path, device: str | torch.device = "cpu", trust_remote_code: bool = False):
    """(model, tokenizer, meta) from a folder written by save_model, in eval mode. Code shipped inside the folder
    runs only when the caller passes trust_remote_code (the user's config or flag), whatever the folder says."""
    from transformers import AutoTokenizer

    model_dir = Path(model_dir)
    if not (model_dir / META_FILE).is_file():
        raise FileNotFoundError(f"{model_dir} is not a reasongen model folder (no {META_FILE}); "
                                "pass a model folder such as outputs/finetune/model, or a models:/ URI")
    meta = json.loads((model_dir / META_FILE).read_text(encoding="utf-8"))
    model = from_pretrained(str(model_dir / WEIGHTS_DIR), trust_remote_code=trust_remote_code)
    if (model_dir / ADAPTER_DIR).exists():
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, str(model_dir / ADAPTER_DIR))
    tokenizer = AutoTokenizer.from_pretrained(str(model_dir / TOKENIZER_DIR), trust_remote_code=trust_remote_code)
    return model.to(device).eval(), tokenizer, meta
