"""Batched generation with the KV cache: prompts in, clean texts out, in input order; and the model's likelihood
of given texts (a reranking feature)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from itertools import groupby
from typing import Any

import torch
from transformers import (
    LogitsProcessor,
    LogitsProcessorList,
    TemperatureLogitsWarper,
    TopKLogitsWarper,
    TopPLogitsWarper,
)

from reasongen.modeling import gpt2_decoding
from reasongen.modeling.encoding import IGNORE_INDEX, PadCollator, encode_example, encode_prompt
from reasongen.modeling.progress import counted
from reasongen.modeling.text import decode

GENERATE_KEYS = ("max_new_tokens", "do_sample", "top_p", "temperature", "top_k", "num_beams",
                 "repetition_penalty", "no_repeat_ngram_size")


def generate_texts(
    model,
    tokenizer,
    prompts: Sequence[str],
    generation_cfg: dict[str, Any],
    *,
    prompt_end: str = "",
    progress: bool = True,
) -> list[str]:
    """Generate one text per prompt with the configured decoding (the first candidate when several are asked)."""
    single = {**generation_cfg, "num_candidates": 1, "include_greedy": False}
    return [found[0] for found in generate_candidates(model, tokenizer, prompts, single, prompt_end=prompt_end,
                                                      progress=progress)]


# The logits processors for one batch, from the indices of its prompts (decoding constraints that differ per row).
ProcessorsFor = Callable[[Sequence[int]], list[LogitsProcessor]]


def generate_candidates(
    model,
    tokenizer,
    prompts: Sequence[str],
    generation_cfg: dict[str, Any],
    *,
    prompt_end: str = "",
    progress: bool = True,
    processors: ProcessorsFor | None = None,
) -> list[list[str]]:
    """Candidate texts per prompt: `num_candidates` samples (one text without do_sample) and, with include_greedy,
    the greedy text appended last (unless the decoding is greedy already). `batch_size` counts sequences, so a
    batch holds batch_size // n prompts. Prompts over max_source_length tokens keep their `prompt_end`.
    processors(batch prompt indices): logits processors built afresh for each generate call."""
    if not prompts:
        return []
    # without sampling every decoding of a prompt is the same text: make it once
    n = max(1, int(generation_cfg.get("num_candidates", 1))) if generation_cfg.get("do_sample") else 1
    already_greedy = not generation_cfg.get("do_sample") and generation_cfg.get("num_beams", 1) == 1
    greedy_too = bool(generation_cfg.get("include_greedy")) and not already_greedy
    if greedy_too and draws_itself(generation_cfg):  # the greedy text as one more row of the sampling call
        return _decode_all(model, tokenizer, prompts, generation_cfg, n, prompt_end, progress, processors,
                           greedy_row=True)
    found: list[list[str]] = [[] for _ in prompts]
    runs = [(generation_cfg, n)]
    if greedy_too:
        runs.append(({**generation_cfg, "do_sample": False, "num_beams": 1}, 1))
    for cfg, count in runs:
        for index, texts in enumerate(_decode_all(model, tokenizer, prompts, cfg, count, prompt_end, progress,
                                                            processors)):
            found[index].extend(texts)
    return found


def _decode_all(model, tokenizer, prompts: Sequence[str], generation_cfg: dict[str, Any], count: int,
                prompt_end: str, progress: bool, processors: ProcessorsFor | None = None,
                greedy_row: bool = False) -> list[list[str]]:
    """`count` texts per prompt with one decoding setting, batched by prompt length, in input order; with
    greedy_row (sampling that NucleusSample draws: draws_itself) one more row per prompt, the greedy text, last.
    The batches hold the same prompts either way, so the samples are the ones the call without it draws."""
    device = next(model.parameters()).device
    per_batch = max(1, int(generation_cfg.get("batch_size", 16)) // count)
    kwargs = {key: generation_cfg[key] for key in GENERATE_KEYS if key in generation_cfg}
    if not kwargs.get("do_sample"):
        kwargs = {k: v for k, v in kwargs.items() if k not in ("top_p", "temperature", "top_k")}
    if greedy_row:
        count += 1
    kwargs, warpers = nucleus_warpers(kwargs, greedy_every=count if greedy_row else 0)
    torch.manual_seed(int(generation_cfg.get("seed", 0)))
    max_source = generation_cfg.get("max_source_length")
    encoded = [encode_prompt(tokenizer, prompt, max_source, prompt_end) for prompt in prompts]
    outputs: list[list[str]] = [[] for _ in prompts]
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    batches = length_batches([len(ids) for ids in encoded], per_batch, same_length=virtual_tokens_first(model))
    # generate's work per step outweighs a small GPT-2's: such a model decodes in gpt2_decoding's loop instead
    lean = int(kwargs.get("max_new_tokens") or 0) if gpt2_decoding.fits(model, kwargs) else 0
    with torch.inference_mode():
        for batch in counted(batches, f"generate ({count} per prompt)", size=len, enabled=progress):
            input_ids, attention_mask = left_pad([encoded[i] for i in batch], pad_id, device)
            # each prompt's `count` rows side by side, as generate lays out num_return_sequences (which it refuses
            # when it does not draw itself: NucleusSample draws); beam search returns its `count` best beams instead
            copies = count if kwargs.get("num_beams", 1) == 1 else 1
            returned = count // copies
            chain = LogitsProcessorList([*(processors(batch) if processors else []), *warpers])
            input_ids, attention_mask = input_ids.repeat_interleave(copies, dim=0), attention_mask.repeat_interleave(
                copies, dim=0)
            if lean:
                generated = gpt2_decoding.decode(model, input_ids, attention_mask, max_new_tokens=lean,
                                                 eos_token_id=tokenizer.eos_token_id, pad_token_id=pad_id,
                                                 logits_processor=chain)
            else:
                generated = model.generate(input_ids=input_ids, attention_mask=attention_mask, pad_token_id=pad_id,
                                           eos_token_id=tokenizer.eos_token_id, use_cache=True, **static_cache(model),
                                           num_return_sequences=returned, logits_processor=chain, **kwargs)
            # generate returns the `count` sequences of each prompt next to each other
            for row, index in enumerate(batch):
                for sequence in generated[row * count : (row + 1) * count]:
                    outputs[index].append(decode(tokenizer, sequence[input_ids.size(1) :]))
    return outputs


class TopP(LogitsProcessor):
    """transformers' top-p (nucleus) filter without sorting the whole vocabulary per step: the nucleus is found
    among the `within` most likely tokens, and only rows whose nucleus is wider are sorted. The same tokens are
    kept, except that a token whose preceding mass lies within float rounding of top_p may fall the other way
    (the sums run in another order)."""

    def __init__(self, top_p: float, within: int = 64):
        self.top_p, self.within = top_p, within

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        k = min(self.within, scores.shape[-1])
        if k == scores.shape[-1]:  # a small vocabulary: every token is among the candidates
            return TopPLogitsWarper(self.top_p)(input_ids, scores)
        probs = scores.softmax(-1)
        top, ids = probs.topk(k, dim=-1)
        # as TopPLogitsWarper: a token stays when the tokens more likely than it hold less than top_p (the first
        # one always stays)
        keep = (top.cumsum(-1) - top) < self.top_p
        keep[:, 0] = True
        filtered = torch.full_like(scores, -float("inf")).scatter(-1, ids, scores.gather(-1, ids).masked_fill(
            ~keep, -float("inf")))
        wide = keep[:, -1].nonzero().flatten()  # the nucleus may go on past the k-th token: do those rows exactly
        if len(wide):
            filtered[wide] = TopPLogitsWarper(self.top_p)(input_ids[wide], scores[wide])
        return filtered


class NucleusSample(TopP):
    """Top-p sampling as the last processor: it draws each row's token and leaves only that one finite, so that
    generate, told not to sample, takes it. The draw is among the `within` most likely tokens (rows whose nucleus
    is wider draw over the whole vocabulary): generate's torch.multinomial over every token of every row cost a
    fifth of a decoding step. The tokens TopP keeps, drawn with their renormalised probabilities, as generate
    draws them; another random stream, so not the same texts for a seed. With greedy_every=m, every m-th row
    (the last of each prompt's m) takes its most likely token instead: the greedy text decoded in the same call
    (temperature and top-k before this keep the most likely token); the other rows draw as they would alone."""

    def __init__(self, top_p: float, within: int = 64, greedy_every: int = 0):
        super().__init__(top_p, within)
        self.greedy_every = greedy_every

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        if not self.greedy_every:
            return self._draw(input_ids, scores)
        greedy = torch.arange(scores.shape[0], device=scores.device) % self.greedy_every == self.greedy_every - 1
        chosen = torch.full_like(scores, -float("inf"))
        chosen[~greedy] = self._draw(input_ids[~greedy], scores[~greedy])
        rows = greedy.nonzero().flatten()
        chosen[rows, scores[rows].argmax(-1)] = 0.0
        return chosen

    def _draw(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        k = min(self.within, scores.shape[-1])
        top, ids = scores.softmax(-1).topk(k, dim=-1)
        keep = (top.cumsum(-1) - top) < self.top_p  # as TopP: the tokens more likely than one hold < top_p
        keep[:, 0] = True
        choice = ids.gather(-1, torch.multinomial(top.masked_fill(~keep, 0.0), 1))
        wide = keep[:, -1].nonzero().flatten() if k < scores.shape[-1] else []
        if len(wide):
            exact = TopPLogitsWarper(self.top_p)(input_ids[wide], scores[wide])
            choice[wide] = torch.multinomial(exact.softmax(-1), 1)
        return torch.full_like(scores, -float("inf")).scatter_(-1, choice, 0.0)


def draws_itself(kwargs: Mapping[str, Any]) -> bool:
    """Whether the decoding samples with top-p and one beam, which NucleusSample draws instead of generate."""
    top_p = kwargs.get("top_p")
    return bool(kwargs.get("do_sample")) and kwargs.get("num_beams", 1) == 1 and top_p is not None and top_p < 1.0


def nucleus_warpers(kwargs: dict[str, Any], greedy_every: int = 0) -> tuple[dict[str, Any], list[LogitsProcessor]]:
    """(generate's kwargs without temperature / top-k / top-p and without sampling, those as processors that run
    after the constraints, in transformers' order, the last one drawing the token: NucleusSample, greedy for every
    greedy_every-th row when given): generate would otherwise sort the whole vocabulary for top-p and draw over
    all of it per step. Unchanged kwargs and no processors unless draws_itself."""
    top_p = kwargs.get("top_p")
    if not draws_itself(kwargs):
        return kwargs, []
    temperature, top_k = kwargs.get("temperature", 1.0), kwargs.get("top_k")
    # generate decodes greedily over NucleusSample's draw
    rest = {key: value for key, value in kwargs.items() if key not in ("temperature", "top_k")}
    rest |= {"top_p": 1.0, "do_sample": False}
    warpers: list[LogitsProcessor] = []
    if temperature is not None and temperature != 1.0:
        warpers.append(TemperatureLogitsWarper(temperature))
    if top_k:  # transformers applies top-k before top-p
        warpers.append(TopKLogitsWarper(top_k))
    return rest, [*warpers, NucleusSample(top_p, greedy_every=greedy_every)]


def static_cache(model) -> dict[str, str]:
    """generate's static KV cache (no concatenation per step: that cost more than the model), except for prompt
    learning (prefix, prompt tuning), whose PEFT wrapper builds its own cache."""
    config = getattr(model, "active_peft_config", None)
    return {} if config is not None and config.is_prompt_learning else {"cache_implementation": "static"}


def virtual_tokens_first(model) -> bool:
    """Prompt tuning (and p-tuning) put their virtual tokens in front of the left padding, which moves a padded
    row's prompt away from them (positions unlike training's): such a model must not see padding."""
    config = getattr(model, "active_peft_config", None)
    return bool(config is not None and config.is_prompt_learning and config.peft_type != "PREFIX_TUNING")


def length_batches(lengths: list[int], batch_size: int, same_length: bool = False) -> list[list[int]]:
    """Indices in batches of similar length (less padding), or of one length each when same_length; a group's
    batches are of equal size, give or take one (514 rows at 512: 257 and 257, not 512 and a 2-row batch that
    decodes as many steps as a full one)."""
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    groups = [list(g) for _, g in groupby(order, key=lambda i: lengths[i])] if same_length else [order]
    batches = []
    for group in groups:
        count = -(-len(group) // batch_size)
        size = -(-len(group) // count) if count else 1
        batches += [group[i : i + size] for i in range(0, len(group), size)]
    return batches


def left_pad(sequences: list[list[int]], pad_id: int, device) -> tuple[torch.Tensor, torch.Tensor]:
    """Left padding, so that every row's next token comes right after its prompt."""
    width = max(len(s) for s in sequences)
    ids = torch.tensor([[pad_id] * (width - len(s)) + s for s in sequences], device=device)
    mask = torch.tensor([[0] * (width - len(s)) + [1] * len(s) for s in sequences], device=device)
    return ids, mask


def mean_log_likelihoods(model, tokenizer, pairs: Sequence[tuple[str, str]], max_source_length: int | None,
                         max_target_length: int, *, prompt_end: str = "", batch_size: int = 64) -> list[float]:
    """Per (prompt, text): the model's mean log-probability of the text's tokens and its end after the prompt, as
    training encodes them (encode_example). One forward pass per batch of similar length, right-padded; a prompt
    learning model's virtual tokens are left out of the logits (they come first)."""
    encoded = [encode_example(tokenizer, prompt, text, max_source_length, max_target_length, False,
                              prompt_end) for prompt, text in pairs]
    collate = PadCollator(tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id,
                          pad_to_multiple_of=32)
    device = next(model.parameters()).device
    found = [0.0] * len(pairs)
    with torch.inference_mode():
        for batch in length_batches([len(e["input_ids"]) for e in encoded], batch_size):
            padded = collate([encoded[i] for i in batch])
            labels, width = padded["labels"].to(device), padded["labels"].shape[1]
            logits = model(input_ids=padded["input_ids"].to(device), attention_mask=padded["attention_mask"].to(device),
                           use_cache=False).logits
            targets = labels[:, 1:]
            scored = targets != IGNORE_INDEX
            predicted = logits[:, -width:-1][scored]  # the text's positions only: the prompt's are not scored
            token = predicted.gather(-1, targets[scored].unsqueeze(-1)).squeeze(-1).float()
            token = token - predicted.float().logsumexp(-1)
            sums = torch.zeros(len(batch), device=token.device).index_add_(0, scored.nonzero()[:, 0], token)
            for i, value in zip(batch, (sums / scored.sum(-1).clamp(min=1)).tolist(), strict=True):
                found[i] = value
    return found

