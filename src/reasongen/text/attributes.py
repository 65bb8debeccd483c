"""AdvertiseGen attribute strings: `类型#裙*颜色#蓝色` <-> [(key, value), ...]."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

PAIR_SEP = "*"
KEY_SEP = "#"

Attributes = list[tuple[str, str]]


def parse_content(content: str) -> Attributes:
    """Parse `k#v*k#v` into ordered (key, value) pairs; raise ValueError saying what is wrong."""
    if not isinstance(content, str) or not content.strip():
        raise ValueError("content is empty")
    pairs: Attributes = []
    for index, chunk in enumerate(content.strip().split(PAIR_SEP)):
        key, sep, value = chunk.partition(KEY_SEP)
        key, value = key.strip(), value.strip()
        if not sep or not key or not value:
            raise ValueError(f"attribute {index + 1} {chunk!r} is not of the form key#value")
        pairs.append((key, value))
    return pairs


def format_content(pairs: Attributes) -> str:
    """The inverse of parse_content."""
    return PAIR_SEP.join(f"{key}{KEY_SEP}{value}" for key, value in pairs)


def attribute_set_key(pairs: Attributes) -> str:
    """Order-free identity of a product: the sorted distinct pairs. Splits never share one."""
    return format_content(sorted(set(pairs)))


def values(pairs: Attributes) -> list[str]:
    """Distinct attribute values in input order."""
    return list(dict.fromkeys(value for _, value in pairs))


def values_by_key(pairs: Attributes) -> dict[str, set[str]]:
    """Values grouped by key."""
    grouped: dict[str, set[str]] = {}
    for key, value in pairs:
        grouped.setdefault(key, set()).add(value)
    return grouped


def value_lexicon(train_rows: Iterable[dict[str, Any]]) -> dict[str, list[str]]:
    """Known values of each attribute key (sorted), from the training rows' `content`."""
    lexicon: dict[str, set[str]] = {}
    for row in train_rows:
        for key, value in parse_content(row["content"]):
            lexicon.setdefault(key, set()).add(value)
    return {key: sorted(found) for key, found in sorted(lexicon.items())}
