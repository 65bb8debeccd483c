"""The GPU section: bf16 training of a Qwen2-0.5B-shaped causal LM with random weights (no download), full and LoRA
(the project's peft_builder), torch.compile off and on: tokens/s, model FLOP utilisation, peak memory."""

from __future__ import annotations

import time
from typing import Any

import torch

from benchmarks.bench.machine import matmul_flops

QWEN2_05B = {"model_type": "qwen2", "hidden_size": 896, "intermediate_size": 4864, "num_hidden_layers": 24,
             "num_attention_heads": 14, "num_key_value_heads": 2, "vocab_size": 151936, "max_position_embeddings": 2048,
             "tie_word_embeddings": True}


def qwen_model():
    from transformers import AutoConfig, AutoModelForCausalLM

    options = dict(QWEN2_05B)
    config = AutoConfig.for_model(options.pop("model_type"), **options)
    return AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16).cuda()


def train_variant(peft: str, compiled: bool, batch: int, length: int, warm: int, steps: int) -> dict[str, Any]:
    """tokens/s and peak memory of `steps` timed AdamW steps on random tokens."""
    from reasongen.config import compose
    from reasongen.modeling import peft_builder

    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats()
    model = qwen_model()
    if peft != "none":
        model = peft_builder.wrap(model, compose([f"peft={peft}"]).peft, warm + steps)
    trainable, total = peft_builder.trainable_parameters(model)
    step_model = torch.compile(model) if compiled else model
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    ids = torch.randint(0, QWEN2_05B["vocab_size"], (batch, length), device="cuda")
    for step in range(warm + steps):
        if step == warm:
            torch.cuda.synchronize()
            started = time.perf_counter()
        loss = step_model(input_ids=ids, labels=ids).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    torch.cuda.synchronize()
    seconds = time.perf_counter() - started
    config = QWEN2_05B
    non_embedding = total - config["vocab_size"] * config["hidden_size"]
    # 6·N + 12·L·d·T per token, N with the tied output projection counted once as compute
    flops_per_token = 6 * (non_embedding + config["vocab_size"] * config["hidden_size"]) + 12 * config[
        "num_hidden_layers"] * config["hidden_size"] * length
    tokens_per_s = batch * length * steps / seconds
    return {"peft": peft, "compile": compiled, "parameters": total, "trainable": trainable,
            "tokens_per_s": round(tokens_per_s), "model_flops_per_s": tokens_per_s * flops_per_token,
            "peak_memory_gib": round(torch.cuda.max_memory_allocated() / 2**30, 2), "loss": round(float(loss), 3)}


def gpu_bench(quick: bool) -> dict[str, Any]:
    """reports/bench_gpu.json's content: the GPU, the bf16 matmul ceiling and each variant, or why there is none."""
    if not torch.cuda.is_available():
        return {"available": False, "note": "no GPU was available: the GPU section was not measured"}
    peak = matmul_flops("bf16-mixed", size=8192, seconds=2.0, device="cuda")["flops_per_s"]
    found: dict[str, Any] = {"available": True, "gpu": torch.cuda.get_device_name(), "torch": torch.__version__,
                             "model": "Qwen2-0.5B shape, random weights, bf16", "bf16_matmul_flops_per_s": peak,
                             "variants": []}
    steps = 3 if quick else 10
    for peft, compiled in (("none", False), ("none", True), ("lora", False), ("lora", True)):
        try:
            result = train_variant(peft, compiled, batch=8, length=512, warm=3, steps=steps)
            result["mfu"] = round(result["model_flops_per_s"] / peak, 3)
        except Exception as error:  # noqa: BLE001 - one variant failing (e.g. compile) leaves the others
            result = {"peft": peft, "compile": compiled, "error": f"{type(error).__name__}: {error}"}
        found["variants"].append(result)
    return found


def gpu_note(found: dict[str, Any]) -> str:
    """The Markdown of the GPU section."""
    if not found.get("available"):
        return found.get("note", "no GPU was available")
    lines = [f"{found['gpu']}, {found['model']}; MFU against a bf16 8192² matmul "
             f"({found['bf16_matmul_flops_per_s'] / 1e12:.0f} TFLOP/s measured); all of it in reports/bench_gpu.json.",
             "",
             "| peft | compile | tokens/s | MFU | peak GiB | error |", "|---|---|---|---|---|---|"]
    lines += [f"| {v['peft']} | {v['compile']} | {v.get('tokens_per_s', '–')} | {v.get('mfu', '–')} | "
              f"{v.get('peak_memory_gib', '–')} | {v.get('error', '')} |" for v in found["variants"]]
    return "\n".join(lines)
