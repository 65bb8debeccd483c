"""Generation figures: the evaluate stage's batched decoding (generate_candidates, the config's batch size and
max_new_tokens, greedy) against model.generate one row at a time, in fp32, with the share of identical texts."""

from __future__ import annotations

import cProfile
import io
import pstats
import time
from typing import Any

import torch

from benchmarks.bench.inputs import Inputs
from reasongen.adgen.prompts import PROMPT_END, prompt_for_row
from reasongen.config import to_container
from reasongen.modeling import model_io
from reasongen.modeling.encoding import encode_prompt
from reasongen.modeling.generation import generate_candidates
from reasongen.modeling.text import decode


def greedy_settings(inputs: Inputs) -> dict[str, Any]:
    """The configured decoding made plain greedy: one text per prompt, no constraints, same batch size and length."""
    generation = to_container(inputs.cfg.generation)
    return {**generation, "do_sample": False, "num_beams": 1, "num_candidates": 1, "include_greedy": False,
            "max_source_length": inputs.cfg.finetune.max_source_length}


def one_at_a_time(model, tokenizer, prompts: list[str], settings: dict[str, Any]) -> tuple[list[str], int]:
    """(texts, generated tokens): model.generate per prompt, batch 1, greedy, the default dynamic cache."""
    texts, tokens = [], 0
    with torch.inference_mode():
        for prompt in prompts:
            ids = torch.tensor([encode_prompt(tokenizer, prompt, settings["max_source_length"], PROMPT_END)])
            out = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), do_sample=False,
                                 max_new_tokens=settings["max_new_tokens"], pad_token_id=tokenizer.pad_token_id,
                                 eos_token_id=tokenizer.eos_token_id)
            tokens += out.size(1) - ids.size(1)
            texts.append(decode(tokenizer, out[0, ids.size(1) :]))
    return texts, tokens


def compare(inputs: Inputs, n_rows: int, batched_rows: int | None = None) -> dict[str, Any]:
    """The evaluate stage's batched greedy decoding of the test split (attributes only, as the headline evaluation
    prompts them; batched_rows: only the first ones) against one row at a time on its first n_rows: tokens/s of
    each, and the share of identical texts on the rows both decoded. Rates, so that the slow side need not decode
    every row."""
    model, tokenizer, _ = model_io.load_model(inputs.model_dir)  # fp32
    prompts = [prompt_for_row(row, use_controls=False) for row in inputs.rows("test")[:batched_rows]]
    settings = greedy_settings(inputs)
    generate_candidates(model, tokenizer, prompts[:2], settings, prompt_end=PROMPT_END, progress=False)  # warm-up
    started = time.perf_counter()
    batched = [found[0] for found in generate_candidates(model, tokenizer, prompts, settings, prompt_end=PROMPT_END,
                                                         progress=False)]
    batched_s = time.perf_counter() - started
    # each text's tokens and its eos, as one_at_a_time counts them
    batched_tokens = sum(len(tokenizer(text, add_special_tokens=False)["input_ids"]) + 1 for text in batched)
    started = time.perf_counter()
    naive, tokens = one_at_a_time(model, tokenizer, prompts[:n_rows], settings)
    naive_s = time.perf_counter() - started
    batched_rate, naive_rate = batched_tokens / batched_s, tokens / naive_s
    return {"batched_rows": len(prompts), "one_at_a_time_rows": len(naive), "batched_s": round(batched_s, 2),
            "one_at_a_time_s": round(naive_s, 2), "batched_tokens_per_s": round(batched_rate, 1),
            "one_at_a_time_tokens_per_s": round(naive_rate, 1),
            "identical_share": sum(a == b for a, b in zip(batched[: len(naive)], naive, strict=True)) / len(naive),
            "speedup": batched_rate / naive_rate}


def profile(inputs: Inputs, n_rows: int = 16, top: int = 20) -> str:
    """cProfile's top entries (own time) of the configured decoding as the server runs it: one test product a call
    (candidates under constraints, retrieve-and-edit, the choice), after a first call that builds what a process
    builds once (the clause bank, jieba's dictionary), which would otherwise head the listing."""
    from reasongen.adgen.generator import Generator

    generator = Generator.from_dir(inputs.model_dir, to_container(inputs.cfg.generation))
    rows = inputs.rows("test")[: n_rows + 1]
    generator.generate(rows[:1], use_controls=False, progress=False)
    profiler = cProfile.Profile()
    for row in rows[1:]:
        profiler.runcall(generator.generate, [row], use_controls=False, progress=False)
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(top)
    return out.getvalue()[out.getvalue().find("ncalls") :]
