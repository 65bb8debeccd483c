"""Control signals (selling-point aspect, length bucket, must-mention keywords) and the wording rules."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from functools import lru_cache

import yaml

from reasongen.paths import resource

LENGTH_BUCKETS = ("short", "medium", "long")


@lru_cache(maxsize=1)
def aspect_lexicon() -> dict[str, tuple[str, ...]]:
    """Aspect -> signal words, from resources/aspects.yaml (order matters for ties)."""
    with open(resource("aspects.yaml"), encoding="utf-8") as handle:
        raw = yaml.safe_load(handle)
    return {aspect: tuple(words) for aspect, words in raw.items()}


def aspect_counts(text: str) -> dict[str, int]:
    """How often each aspect's words occur in text (aspects with no hit left out)."""
    counts = {aspect: sum(text.count(word) for word in words) for aspect, words in aspect_lexicon().items()}
    return {aspect: count for aspect, count in counts.items() if count}


def detect_aspects(text: str) -> list[str]:
    """Aspects the text talks about, in lexicon order."""
    return list(aspect_counts(text))


def primary_aspect(text: str) -> str | None:
    """The aspect a reference text stresses most (ties: lexicon order), or None."""
    counts = aspect_counts(text)
    return max(counts, key=counts.get) if counts else None


def length_bucket(n_chars: int, bounds: Sequence[int]) -> str:
    """short / medium / long for a text of n_chars, by the two configured upper bounds."""
    short_max, medium_max = bounds
    if n_chars <= short_max:
        return "short"
    return "medium" if n_chars <= medium_max else "long"


def extract_keywords(text: str, exclude: Iterable[str], k: int) -> list[str]:
    """Up to k salient words of text (jieba TF-IDF), skipping excluded words and single characters."""
    if k <= 0:
        return []
    import jieba.analyse

    skip = set(exclude)
    words = [w for w in jieba.analyse.extract_tags(text, topK=k * 4) if len(w) > 1 and w not in skip]
    return words[:k]


@lru_cache(maxsize=1)
def banned_patterns() -> tuple[tuple[str, re.Pattern[str]], ...]:
    """The advertising-law list from resources/banned_words.txt as (entry, compiled pattern)."""
    patterns = []
    for line in resource("banned_words.txt").read_text(encoding="utf-8").splitlines():
        entry = line.strip()
        if not entry or entry.startswith("#"):
            continue
        source = entry[3:] if entry.startswith("re:") else re.escape(entry)
        patterns.append((entry, re.compile(source)))
    return tuple(patterns)


def find_violations(text: str) -> list[str]:
    """The banned entries that text breaks (empty list: compliant)."""
    return [entry for entry, pattern in banned_patterns() if pattern.search(text)]
