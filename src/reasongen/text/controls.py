"""Control signals (selling-point aspect, length bucket, must-mention keywords) and the wording rules."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from functools import lru_cache
from pathlib import Path

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


def banned_entries(path: Path | None = None) -> list[str]:
    """The entries of the advertising-law list (resources/banned_words.txt): plain strings and `re:` patterns."""
    lines = (path or resource("banned_words.txt")).read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.strip().startswith("#")]


@lru_cache(maxsize=1)
def banned_patterns() -> tuple[tuple[str, re.Pattern[str]], ...]:
    """The advertising-law list as (entry, compiled pattern): what the metric and repair check."""
    return tuple((entry, re.compile(entry[3:] if entry.startswith("re:") else re.escape(entry)))
                 for entry in banned_entries())


def decoder_bans(path: Path | None = None) -> list[str]:
    """The same list as plain strings for a decoder to ban. A `re:` entry gives its literal start when the rest is
    only a negative lookahead: `re:最(?![近后初终])` gives 最, so the decoder bans 最 outright (最近 and 最后 too:
    stricter than the metric, which sees what follows). Other patterns raise."""
    return [_literal_start(entry[3:]) if entry.startswith("re:") else entry for entry in banned_entries(path)]


def find_violations(text: str) -> list[str]:
    """The banned entries that text breaks (empty list: compliant)."""
    return [entry for entry, pattern in banned_patterns() if pattern.search(text)]


# A literal (no regex syntax) optionally followed by one negative lookahead: the only patterns a decoder can ban.
_LITERAL_THEN_LOOKAHEAD = re.compile(r"(?P<literal>[^\\()\[\]{}.*+?|^$]+)(?:\(\?![^()]*\))?")


def _literal_start(pattern: str) -> str:
    """The literal characters a regex starts with, when a negative lookahead is all that follows them."""
    match = _LITERAL_THEN_LOOKAHEAD.fullmatch(pattern)
    if match is None:
        raise ValueError(f"banned word pattern {pattern!r}: only a literal, optionally followed by a negative "
                         "lookahead, can be banned while decoding")
    return match["literal"]
