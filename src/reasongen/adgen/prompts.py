"""The one prompt format: attributes + control signals -> `... | 文案:`, followed by the text."""

from __future__ import annotations

import random
from collections.abc import Iterable, Iterator, Sequence
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


def prompt_with_dropout(row: dict[str, Any], rng: random.Random, control_dropout: float) -> str:
    """The training prompt: each control left out with probability control_dropout (robust to missing controls)."""
    controls = {key: value for key, value in controls_of(row).items() if rng.random() >= control_dropout}
    return build_prompt(row["content"], **controls)


def training_texts(rows: Iterable[dict[str, Any]]) -> Iterator[str]:
    """What a tokenizer learns from: each row's prompt with every control, and its text."""
    for row in rows:
        yield build_prompt(row["content"], row.get("aspect"), row.get("length_bucket"), row.get("keywords") or ())
        yield row["summary"]


def datamodule_options() -> dict[str, Any]:
    """What the task-free PromptDataModule needs to know of Task A's rows: prompt, prompt end, target field."""
    return {"prompt_fn": prompt_with_dropout, "prompt_end": PROMPT_END, "target_field": "summary"}
