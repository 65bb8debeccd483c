"""Task B decoding: a floor on the explanation's length, for the profile-prompt and the soft-prompt models alike."""

from __future__ import annotations

from transformers import LogitsProcessor


class MinNewTokens(LogitsProcessor):
    """End-of-text banned for the first `tokens` new tokens. The references average 13-14 words where free decoding
    stops after 7-9, and corpus BLEU's brevity penalty charges every missing word. The prompt's (left-padded) width
    is taken at the first step, so one instance serves one generate call."""

    def __init__(self, tokens: int, eos_id: int) -> None:
        self.tokens, self.eos_id, self.start = tokens, eos_id, None

    def __call__(self, input_ids, scores):
        self.start = input_ids.shape[1] if self.start is None else self.start
        if input_ids.shape[1] - self.start < self.tokens:
            scores[:, self.eos_id] = -float("inf")
        return scores


def length_floor(cfg: dict, eos_id: int) -> list[LogitsProcessor]:
    """The processors of one generate call under explain.generation's `min_new_tokens` (0 or absent: none)."""
    minimum = int(cfg.get("min_new_tokens") or 0)
    return [MinNewTokens(minimum, eos_id)] if minimum > 0 else []
