"""The one prompt format: attributes + control signals -> `... | 文案:`, followed by the text."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

LENGTH_WORDS = {"short": "短", "medium": "中", "long": "长"}
PROMPT_END = " | 文案:"


def build_prompt(
    content: str,
    aspect: str | None = None,
    length_bucket: str | None = None,
    keywords: Sequence[str] = (),
) -> str:
    """Prompt for one product; any control left out is simply absent from the prompt."""
    parts = [f"商品:{content}"]
    if aspect:
        parts.append(f"卖点:{aspect}")
    if length_bucket:
        parts.append(f"长度:{LENGTH_WORDS[length_bucket]}")
    if keywords:
        parts.append("关键词:" + "、".join(keywords))
    return " | ".join(parts) + PROMPT_END


def controls_of(row: dict[str, Any]) -> dict[str, Any]:
    """The control fields of a prepared or user-supplied row (missing ones -> None / empty)."""
    return {
        "aspect": row.get("aspect") or None,
        "length_bucket": row.get("length_bucket") or None,
        "keywords": list(row.get("keywords") or []),
    }


def prompt_for_row(row: dict[str, Any], use_controls: bool = True) -> str:
    """Prompt for a row in the AdvertiseGen format, with its controls when asked."""
    controls = controls_of(row) if use_controls else {}
    return build_prompt(row["content"], **controls)


def prefix_ids(tokenizer) -> list[int]:
    """The begin-of-text id every sequence starts with, in training and generation (none if the tokenizer has none)."""
    return [tokenizer.bos_token_id] if tokenizer.bos_token_id is not None else []


def encode_prompt(tokenizer, prompt: str, max_length: int | None = None) -> list[int]:
    """bos + prompt ids, the same in training and generation. A prompt over max_length tokens loses tokens
    from its middle, never its ` | 文案:` ending, which tells the model that the text starts next."""
    ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    if max_length is not None and len(ids) > max_length:
        keep = min(len(tokenizer(PROMPT_END, add_special_tokens=False)["input_ids"]), max_length)
        ids = ids[: max_length - keep] + ids[len(ids) - keep :]
    return prefix_ids(tokenizer) + ids
