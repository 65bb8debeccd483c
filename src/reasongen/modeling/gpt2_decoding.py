"""Decoding for a plain GPT-2 without transformers' generate loop. The default model is tiny (3 layers of 192), so a
step's arithmetic takes microseconds and generate's own work per step (input preparation, cache objects, mask
building, stopping checks: about 2 ms) was most of a request's decoding. This loop makes GPT-2's operations with
its modules' weights (layer norms, projections, MLPs, SDPA attention) over a KV cache that grows with the texts (at
most as long as the call needs), and the same processors see the same ids and scores; the token is the argmax of
what they return (NucleusSample draws by leaving one token finite), as generate takes it when told not to sample.

In a large batch the KV cache is what a step reads most (512 rows: about 120 MB a layer, so memory bandwidth, not
arithmetic, sets the pace), so attention reads only the positions written so far, and rows that have ended leave
the batch with their cache. Greedy texts are generate's (a test compares them); a sampled text may not be: after a
row has left, the processors see it as certain to end, not as the model's scores, which can change how many random
numbers a step's sampler draws and so the later draws of the other rows. SDPA's sums over generate's longer (masked)
static cache may also round a bf16 logit differently (1 unit in the last place), which can turn a sampled token.
Here a text does not depend on what was generated before it.

Anything else (PEFT wrappers, other architectures, generate's own sampling, beams or penalties) goes through
generate: `fits` says which."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from transformers import LogitsProcessorList

# generate settings this loop does not implement, with the values under which they do nothing
_INERT = {"num_beams": 1, "do_sample": False, "repetition_penalty": 1.0, "no_repeat_ngram_size": 0}


def fits(model, kwargs: Mapping[str, Any]) -> bool:
    """Whether decode reproduces model.generate(**kwargs) for this model: a GPT2LMHeadModel (no PEFT wrapper, no
    cross-attention, no reordered attention) with SDPA attention, decoding greedily over the given processors."""
    config = getattr(model, "config", None)
    if type(model).__name__ != "GPT2LMHeadModel" or config is None:
        return False
    if config.add_cross_attention or config.reorder_and_upcast_attn or config._attn_implementation != "sdpa":
        return False
    unknown = set(kwargs) - {*_INERT, "max_new_tokens", "top_p", "temperature", "top_k"}
    return not unknown and all(kwargs.get(key, inert) in (None, inert) for key, inert in _INERT.items())


def decode(model, input_ids: torch.Tensor, attention_mask: torch.Tensor, *, max_new_tokens: int, eos_token_id: int,
           pad_token_id: int, logits_processor: LogitsProcessorList) -> torch.Tensor:
    """The sequences generate returns for left-padded prompts: prompt + new tokens, a row that has ended padded with
    pad_token_id, as wide as the longest row (generate stops when every row has ended)."""
    rows, width = input_ids.shape
    transformer, config = model.transformer, model.config
    heads, size = config.n_head, config.n_embd
    length = width + max_new_tokens  # the call's own cache length (generate's, on a model's first call)
    dtype, device = transformer.wte.weight.dtype, input_ids.device
    # the cache grows as the texts do (most rows end long before max_new_tokens): room for _CACHE_STEP new tokens
    # first, then as many again as it has, up to length
    room = min(length, width + _CACHE_STEP)
    cache = [(torch.zeros(rows, heads, room, size // heads, dtype=dtype, device=device),
              torch.zeros(rows, heads, room, size // heads, dtype=dtype, device=device)) for _ in transformer.h]
    # which positions hold a token (left padding does not; none past the newest): what a new token attends to.
    # generate extends the mask with ones, ended rows too
    present = torch.zeros(rows, length, dtype=torch.bool, device=device)
    present[:, :width] = attention_mask.bool()
    positions = (attention_mask.long().cumsum(-1) - 1).clamp(min=0)  # generate's: a pad position is 0
    # the prompt's own queries are causal; a padding query attends to itself, so that its (unused) keys and values
    # stay finite
    causal = torch.ones(width, length, dtype=torch.bool, device=device).tril()
    mask = (causal & present[:, None]) | torch.eye(width, length, dtype=torch.bool, device=device)
    unfinished = torch.ones(rows, dtype=torch.bool, device=device)
    sequences, start, step_ids = input_ids, 0, input_ids
    # the rows the model still computes: a row that has ended leaves (with its cache) once a quarter of them have,
    # so that a long text does not keep the batch's ended rows decoding. The processors see every row; an ended
    # one's scores are `ended` (its token is padding whatever they do): only eos is likely, so that a sampler draws
    # over one token
    live = torch.arange(rows, device=device)
    ended = torch.full((rows, model.lm_head.out_features), -1e4, device=device)
    ended[:, eos_token_id] = 0.0
    # the processors called in turn, as LogitsProcessorList calls them without extra arguments, less its check of
    # each one's signature on every step (inspect.signature: a fifth of a step's Python time)
    steps = list(logits_processor)
    with torch.inference_mode():
        while True:
            logits = _forward(transformer, model.lm_head, cache, step_ids, positions, mask[:, None], start).float()
            scores = logits if len(live) == rows else ended.index_copy(0, live, logits)
            for processor in steps:
                scores = processor(sequences, scores)
            chosen = torch.where(unfinished, scores.argmax(-1), pad_token_id)
            sequences = torch.cat([sequences, chosen[:, None]], dim=-1)
            unfinished &= chosen != eos_token_id
            if not unfinished.any() or sequences.shape[1] >= length:
                return sequences
            start += step_ids.shape[1]
            present[:, start] = True
            positions, step_ids = positions[:, -1:] + 1, chosen[live, None]
            going, kept = unfinished[live], None
            if 4 * int((~going).sum()) >= len(live):
                kept = going.nonzero().flatten()
                live, present, positions, step_ids = live[kept], present[kept], positions[kept], step_ids[kept]
            if start >= room:
                room = min(length, room + max(_CACHE_STEP, room - width))
            _resize(cache, kept, room)  # one copy when rows left and the cache grew in the same step; none when neither
            mask = present[:, None]  # (rows, 1 query, length)


_CACHE_STEP = 32  # new tokens the KV cache has room for at first


def _resize(cache: list[tuple[torch.Tensor, torch.Tensor]], kept: torch.Tensor | None, room: int) -> None:
    """The cache's rows `kept` (all when None) in `room` positions, one layer at a time (one layer's copy at most
    beside the cache)."""
    for layer, (keys, values) in enumerate(cache):
        if kept is not None:
            keys, values = keys[kept], values[kept]
        if keys.shape[2] != room:
            grown = [part.new_zeros(*part.shape[:2], room, part.shape[3]) for part in (keys, values)]
            for old, new in zip((keys, values), grown, strict=True):
                new[:, :, : old.shape[2]] = old
            keys, values = grown
        cache[layer] = (keys, values)


def _forward(transformer, lm_head, cache, ids: torch.Tensor, positions: torch.Tensor, mask: torch.Tensor,
             start: int) -> torch.Tensor:
    """The next-token logits after ids (at positions, written into the cache from `start`), as GPT2LMHeadModel
    computes them: the blocks' operations in their order with the modules' weights, called as functions (a module
    call costs more than this model's arithmetic), attending to the cache's positions up to the newest."""
    hidden = transformer.wte(ids) + transformer.wpe(positions)
    rows, count, size = hidden.shape
    for block, (keys, values) in zip(transformer.h, cache, strict=True):
        attn, mlp = block.attn, block.mlp
        query, key, value = _conv1d(attn.c_attn, _layer_norm(block.ln_1, hidden)).split(size, dim=2)
        split = (rows, count, -1, attn.head_dim)
        end = start + count
        keys[:, :, start:end] = key.view(split).transpose(1, 2)
        values[:, :, start:end] = value.view(split).transpose(1, 2)
        # transformers' sdpa_attention_forward with a mask: this call, with these arguments
        mixed = F.scaled_dot_product_attention(query.view(split).transpose(1, 2), keys[:, :, :end],
                                               values[:, :, :end], attn_mask=mask[..., :end],
                                               dropout_p=0.0, scale=attn.scaling, is_causal=False)
        hidden = _conv1d(attn.c_proj, mixed.transpose(1, 2).reshape(rows, count, size)) + hidden
        hidden = hidden + _conv1d(mlp.c_proj, mlp.act(_conv1d(mlp.c_fc, _layer_norm(block.ln_2, hidden))))
    return lm_head(_layer_norm(transformer.ln_f, hidden[:, -1:]))[:, -1]


def _layer_norm(module, hidden: torch.Tensor) -> torch.Tensor:
    return F.layer_norm(hidden, module.normalized_shape, module.weight, module.bias, module.eps)


def _conv1d(module, hidden: torch.Tensor) -> torch.Tensor:
    """transformers' Conv1D (a linear layer with its weight transposed)."""
    found = torch.addmm(module.bias, hidden.view(-1, hidden.size(-1)), module.weight)
    return found.view(*hidden.shape[:-1], found.size(-1))
