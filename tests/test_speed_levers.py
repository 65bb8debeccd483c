"""The speed levers change no result: top-p without a full sort keeps transformers' tokens, the thread count
follows the user's setting, and `auto` precision follows the device."""

from __future__ import annotations

import os
import time

import pytest
import torch
from transformers import LogitsProcessor, LogitsProcessorList, TopPLogitsWarper

from reasongen import cli, threads
from reasongen.modeling import model_io
from reasongen.modeling.generation import NucleusSample, TopP, nucleus_warpers
from reasongen.modeling.model_io import cpu_has_bf16
from reasongen.modeling.training import auto_precision


@pytest.mark.parametrize("top_p", [0.3, 0.7, 0.95])
def test_top_p_keeps_the_tokens_transformers_keeps(top_p):
    generator = torch.Generator().manual_seed(0)
    scores = torch.randn(64, 500, generator=generator) * 3
    scores[0] = 0.0  # a flat row: the nucleus is far wider than the candidates looked at first
    scores[1, 7] = 50.0  # one certain token
    expected = TopPLogitsWarper(top_p)(None, scores.clone())
    found = TopP(top_p, within=16)(torch.zeros(64, 1, dtype=torch.long), scores.clone())
    assert torch.equal(torch.isinf(found), torch.isinf(expected))
    kept = ~torch.isinf(expected)
    assert torch.equal(found[kept], expected[kept])
    assert kept[0].sum() > 16 and kept[1].sum() == 1  # both branches ran


@pytest.mark.parametrize("within", [4, 500])
def test_nucleus_sample_draws_the_nucleus_tokens_with_their_probabilities(within):
    torch.manual_seed(0)
    logits = torch.stack([torch.tensor([2.0, 1.5, 1.0, 0.0, -1.0] + [-9.0] * 495), torch.arange(500) * 0.01])
    # a narrow nucleus (3 tokens), and one wider than `within`
    draws = 4000
    scores = logits.repeat_interleave(draws, dim=0)
    found = NucleusSample(0.7, within=within)(torch.zeros(len(scores), 1, dtype=torch.long), scores)
    assert torch.equal(torch.isfinite(found).sum(-1), torch.ones(len(scores), dtype=torch.long))  # one token each
    chosen = found.argmax(-1).view(2, draws)
    nucleus = TopPLogitsWarper(0.7)(None, logits.clone())
    expected = nucleus.softmax(-1)
    for row in range(2):
        assert torch.isfinite(nucleus[row, chosen[row]]).all()  # never a token outside the nucleus
        share = torch.bincount(chosen[row], minlength=500) / draws
        assert (share - expected[row]).abs().max() < 0.03


def test_nucleus_warpers_take_temperature_and_top_p_out_of_generate():
    asked = {"do_sample": True, "top_p": 0.7, "temperature": 0.95, "top_k": 0}
    kwargs, warpers = nucleus_warpers(asked)
    assert kwargs["top_p"] == 1.0 and "temperature" not in kwargs  # generate no longer sorts per step
    assert kwargs["do_sample"] is False  # ... nor draws over the whole vocabulary: the last warper draws
    assert [type(w).__name__ for w in warpers] == ["TemperatureLogitsWarper", "NucleusSample"]
    assert asked["top_p"] == 0.7 and asked["temperature"] == 0.95  # the caller's settings stay as they were
    greedy = {"do_sample": False, "top_p": 0.7}
    assert nucleus_warpers(greedy) == (greedy, []) and greedy["top_p"] == 0.7


def test_fit_threads_follows_the_users_setting(monkeypatch):
    before = torch.get_num_threads()
    try:
        monkeypatch.setenv("REASONGEN_THREADS", "1")
        assert threads.fit_threads() == 1 and torch.get_num_threads() == 1
        monkeypatch.delenv("REASONGEN_THREADS")
        monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
        assert threads.fit_threads() == len(os.sched_getaffinity(0)) == torch.get_num_threads()
    finally:
        torch.set_num_threads(before)


def test_the_command_line_makes_waiting_threads_sleep_unless_told_otherwise(monkeypatch):
    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    cli.offline_defaults()
    assert os.environ["OMP_WAIT_POLICY"] == "PASSIVE"
    monkeypatch.setenv("OMP_WAIT_POLICY", "ACTIVE")
    cli.offline_defaults()
    assert os.environ["OMP_WAIT_POLICY"] == "ACTIVE"


def test_auto_precision_follows_the_device(monkeypatch):
    assert auto_precision("32-true") == "32-true" and auto_precision("bf16-mixed") == "bf16-mixed"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert auto_precision("auto") == ("bf16-mixed" if cpu_has_bf16() else "32-true")
    monkeypatch.setattr("reasongen.modeling.model_io.cpu_has_bf16", lambda: False)
    assert auto_precision("auto") == "32-true"


def test_inference_dtype_by_name_and_auto(monkeypatch):
    assert model_io.inference_dtype("float32") == torch.float32
    assert model_io.inference_dtype("bfloat16") == torch.bfloat16
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert model_io.inference_dtype("auto") == (torch.bfloat16 if model_io.cpu_has_amx() else torch.float32)
    monkeypatch.setattr("reasongen.modeling.model_io.cpu_has_amx", lambda: True)
    assert model_io.inference_dtype("auto") == torch.bfloat16
    monkeypatch.setattr("reasongen.modeling.model_io.cpu_has_amx", lambda: False)
    # AVX512-BF16 alone: fp32 decodes faster
    monkeypatch.setattr("reasongen.modeling.model_io.cpu_has_bf16", lambda: True)
    assert model_io.inference_dtype(None) == torch.float32
    with pytest.raises(ValueError, match="one of auto, float32, bfloat16"):
        model_io.inference_dtype("float16")


def test_training_attention_is_eager_on_cpu_and_reaches_inside_a_peft_wrapper(monkeypatch):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoConfig, AutoModelForCausalLM

    from reasongen.modeling.training import set_training_attention, training_attention

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert training_attention("auto", "auto") == "eager"
    assert training_attention("model", "cpu") is None and training_attention("sdpa", "cpu") == "sdpa"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert training_attention("auto", "gpu") is None  # a GPU keeps the model's own (SDPA / flash) kernel
    config = AutoConfig.for_model("gpt2", vocab_size=50, n_layer=1, n_head=2, n_embd=16, n_positions=32)
    model = AutoModelForCausalLM.from_config(config)
    wrapped = get_peft_model(model, LoraConfig(r=2, target_modules=["c_attn"], fan_in_fan_out=True))
    before = model.config._attn_implementation
    set_training_attention(wrapped, None)
    assert model.config._attn_implementation == before
    set_training_attention(wrapped, "eager")
    assert model.config._attn_implementation == "eager"
    ids = torch.randint(0, 50, (2, 8))
    assert torch.isfinite(wrapped(input_ids=ids, labels=ids).loss)


def test_nucleus_sample_decodes_every_mth_row_greedily_and_draws_the_others_as_alone():
    scores = torch.randn(12, 300, generator=torch.Generator().manual_seed(1)) * 3
    ids = torch.zeros(12, 1, dtype=torch.long)
    sampled = torch.arange(12) % 3 != 2
    torch.manual_seed(0)
    merged = NucleusSample(0.7, within=16, greedy_every=3)(ids, scores)
    torch.manual_seed(0)
    alone = NucleusSample(0.7, within=16)(ids[sampled], scores[sampled])
    assert torch.equal(merged[sampled], alone)  # the same draws from the same seed
    assert torch.equal(merged[~sampled].argmax(-1), scores[~sampled].argmax(-1))
    assert torch.equal(torch.isfinite(merged).sum(-1), torch.ones(12, dtype=torch.long))


def test_the_greedy_text_decoded_with_the_samples_is_the_greedy_decoding(tiny_model, bpe_tokenizer):
    from reasongen.modeling import generation

    model = tiny_model("gpt2", bpe_tokenizer).eval()
    prompts = ["类型#裙*颜色#蓝色", "类型#裤*颜色#白色*风格#休闲", "类型#上衣"]
    cfg = {"max_new_tokens": 12, "do_sample": True, "top_p": 0.9, "temperature": 1.0, "seed": 3, "batch_size": 4,
           "num_candidates": 2, "include_greedy": True}
    assert generation.draws_itself(cfg)
    merged = generation.generate_candidates(model, bpe_tokenizer, prompts, cfg, progress=False)
    samples = generation._decode_all(model, bpe_tokenizer, prompts, cfg, 2, "", False)
    greedy = generation._decode_all(model, bpe_tokenizer, prompts, {**cfg, "do_sample": False}, 1, "", False)
    assert merged == [drawn + best for drawn, best in zip(samples, greedy, strict=True)]
    assert len({text for found in merged for text in found}) > len(prompts)  # sampled, not all one text


def _pid(_: int) -> int:
    return os.getpid()


def _pid_slowly(_: int) -> int:
    time.sleep(0.01)  # long enough that one worker cannot take every chunk before the others start
    return os.getpid()


def test_fork_map_keeps_the_order_and_uses_other_processes():
    from reasongen import processes

    items = list(range(3 * processes.MIN_ITEMS_PER_WORKER))
    assert processes.fork_map(lambda x: x * x, items, workers=3) == [x * x for x in items]
    pids = processes.fork_map(_pid_slowly, items, workers=3)
    assert len(set(pids)) >= 2 and os.getpid() not in pids  # the pool hands chunks to whichever worker is free
    assert set(processes.fork_map(_pid, items[:10], workers=3)) == {os.getpid()}  # too few to pay for a fork
    assert set(processes.fork_map(_pid, items, workers=1)) == {os.getpid()}


def test_a_server_of_a_small_model_decodes_on_one_thread_unless_told(monkeypatch):
    monkeypatch.delenv("REASONGEN_THREADS", raising=False)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    assert threads.serving_threads(1_900_000) == 1  # a request's few rows: waking a second thread costs more
    assert threads.serving_threads(500_000_000) == threads.usable_cores() == len(os.sched_getaffinity(0))
    monkeypatch.setenv("REASONGEN_THREADS", "3")
    assert threads.serving_threads(1_900_000) == 3  # the user's choice stands


def test_a_server_runs_a_process_per_core_its_threads_leave(monkeypatch):
    monkeypatch.delenv("REASONGEN_SERVE_PROCESSES", raising=False)
    cores = len(os.sched_getaffinity(0))
    assert threads.serving_processes(1) == cores  # a small model's requests: one core each
    assert threads.serving_processes(cores) == 1  # a large model's threads take every core
    assert threads.serving_processes(cores + 5) == 1
    monkeypatch.setenv("REASONGEN_SERVE_PROCESSES", "3")
    assert threads.serving_processes(cores) == 3  # the user's choice stands


class _EndsRow(LogitsProcessor):
    """Ends row `row` at its `at`-th new token (the lean loop must pad it from then on, as generate does)."""

    def __init__(self, eos: int, row: int = 0, at: int = 3):
        self.eos, self.row, self.at, self.calls = eos, row, at, 0

    def __call__(self, input_ids, scores):
        self.calls += 1
        if self.calls == self.at:
            scores = scores.clone()
            scores[self.row] = -float("inf")
            scores[self.row, self.eos] = 0.0
        return scores


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_the_lean_gpt2_loop_returns_what_generate_returns(tiny_model, bpe_tokenizer, dtype):
    from reasongen.modeling import gpt2_decoding
    from reasongen.modeling.constraints import CharNgramBlock, StringBan, TokenIndex
    from reasongen.modeling.encoding import encode_prompt
    from reasongen.modeling.generation import left_pad, static_cache

    model = tiny_model("gpt2", bpe_tokenizer).eval().to(dtype)  # new: no earlier call sized generate's cache
    index, eos, pad = TokenIndex.of(bpe_tokenizer), bpe_tokenizer.eos_token_id, bpe_tokenizer.pad_token_id
    prompts = ["类型#裙*颜色#蓝色*风格#清新*裙长#连衣裙", "类型#裤", "类型#上衣*材质#棉"]  # unequal: left padding
    ids, mask = left_pad([encode_prompt(bpe_tokenizer, p) for p in prompts], pad, "cpu")
    ids, mask = ids.repeat_interleave(2, 0), mask.repeat_interleave(2, 0)

    def chain():  # fresh processors per call: they note where the prompt ends
        return LogitsProcessorList([_EndsRow(eos, row=2, at=4), CharNgramBlock(index, n=2),
                                    StringBan(index, banned=["蓝色"]), NucleusSample(0.9, greedy_every=2)])

    assert gpt2_decoding.fits(model, {"max_new_tokens": 20, "do_sample": False, "top_p": 1.0})
    with torch.inference_mode():
        torch.manual_seed(5)
        expected = model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=20, do_sample=False,
                                  pad_token_id=pad, eos_token_id=eos, logits_processor=chain(), **static_cache(model))
        torch.manual_seed(5)
        lean = gpt2_decoding.decode(model, ids, mask, max_new_tokens=20, eos_token_id=eos, pad_token_id=pad,
                                    logits_processor=chain())
    assert torch.equal(lean, expected)
    assert lean[2, ids.shape[1] + 3] == eos and (lean[2, ids.shape[1] + 4 :] == pad).all()  # ended, then padding
    assert len({tuple(row) for row in lean[:, ids.shape[1] :].tolist()}) > 3  # sampled rows differ


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_the_lean_gpt2_loop_drops_ended_rows_and_still_returns_generates_greedy_texts(tiny_model, bpe_tokenizer,
                                                                                       dtype, monkeypatch):
    """Two of six rows end early, so the loop stops computing them (a third of the rows), and the KV cache grows as
    the texts do (room for 3 new tokens at first, here): the greedy texts of the others, and the ended rows'
    padding, are still generate's."""
    from reasongen.modeling import gpt2_decoding

    monkeypatch.setattr(gpt2_decoding, "_CACHE_STEP", 3)
    from reasongen.modeling.constraints import CharNgramBlock, TokenIndex
    from reasongen.modeling.encoding import encode_prompt
    from reasongen.modeling.generation import left_pad, static_cache

    model = tiny_model("gpt2", bpe_tokenizer).eval().to(dtype)
    index, eos, pad = TokenIndex.of(bpe_tokenizer), bpe_tokenizer.eos_token_id, bpe_tokenizer.pad_token_id
    prompts = ["类型#裙*颜色#蓝色", "类型#裤", "类型#上衣*材质#棉", "类型#裙*裙长#连衣裙", "类型#裤*风格#休闲",
               "类型#上衣"]
    ids, mask = left_pad([encode_prompt(bpe_tokenizer, p) for p in prompts], pad, "cpu")

    def chain():
        return LogitsProcessorList([_EndsRow(eos, row=1, at=2), _EndsRow(eos, row=4, at=3), CharNgramBlock(index, n=2)])

    with torch.inference_mode():
        expected = model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=24, do_sample=False,
                                  pad_token_id=pad, eos_token_id=eos, logits_processor=chain(), **static_cache(model))
        lean = gpt2_decoding.decode(model, ids, mask, max_new_tokens=24, eos_token_id=eos, pad_token_id=pad,
                                    logits_processor=chain())
    assert torch.equal(lean, expected)
    assert lean.shape[1] > ids.shape[1] + 4  # the others went on after the two ended
    assert (lean[4, ids.shape[1] + 3 :] == pad).all() and lean[4, ids.shape[1] + 2] == eos


def test_the_lean_gpt2_loop_leaves_what_it_does_not_implement_to_generate(tiny_model, bpe_tokenizer):
    from peft import LoraConfig, get_peft_model

    from reasongen.modeling import gpt2_decoding

    gpt2 = tiny_model("gpt2", bpe_tokenizer)
    greedy = {"max_new_tokens": 8, "do_sample": False}
    assert gpt2_decoding.fits(gpt2, greedy)
    assert not gpt2_decoding.fits(gpt2, {**greedy, "do_sample": True})  # generate's own sampling
    assert not gpt2_decoding.fits(gpt2, {**greedy, "repetition_penalty": 1.2})
    assert not gpt2_decoding.fits(gpt2, {**greedy, "num_beams": 2})
    assert not gpt2_decoding.fits(tiny_model("llama", bpe_tokenizer), greedy)
    wrapped = get_peft_model(gpt2, LoraConfig(r=2, target_modules=["c_attn"], fan_in_fan_out=True))
    assert not gpt2_decoding.fits(wrapped, greedy)


def test_a_small_models_server_says_when_the_users_threads_leave_cores_without_a_process(monkeypatch):
    monkeypatch.setattr(threads, "affinity_cores", lambda: 4)
    monkeypatch.delenv("REASONGEN_THREADS", raising=False)
    monkeypatch.delenv("REASONGEN_SERVE_PROCESSES", raising=False)
    monkeypatch.setenv("OMP_NUM_THREADS", "4")  # exported for training
    small = 1_900_000
    advice = threads.serving_advice(small, 4, threads.serving_processes(4))
    assert advice and "REASONGEN_THREADS=1" in advice and "1 process(es) on 4 cores" in advice
    assert threads.serving_advice(500_000_000, 4, 1) is None  # a large model's threads do share its ops
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    assert "2 process(es)" in threads.serving_advice(small, 2, threads.serving_processes(2))
    monkeypatch.setenv("REASONGEN_SERVE_PROCESSES", "1")  # the user chose the processes too
    assert threads.serving_advice(small, 2, 1) is None
    monkeypatch.delenv("REASONGEN_SERVE_PROCESSES")
    monkeypatch.delenv("OMP_NUM_THREADS")
    assert threads.serving_advice(small, threads.serving_threads(small), 4) is None  # the default: one thread each
