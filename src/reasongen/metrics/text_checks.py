"""Per-text definitions behind the metric modules, shared with candidate selection: one definition each."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from functools import lru_cache

from reasongen.text.attributes import Attributes, values, values_by_key

_MASK = "\x00"  # cannot occur in text, and breaks adjacency so masking never creates a new match


def sentence_bleu4(prediction: str, reference: str) -> float:
    """One example's character BLEU-4 in [0, 1] (ChatGLM-6B's definition: NLTK's sentence_bleu over characters
    with smoothing method3, the same number; tests compare the two); an empty text scores 0. Written out because
    selection's MBR scores every candidate against every other: each text's n-grams are counted once."""
    if not prediction or not reference:
        return 0.0
    return _bleu_from_matches(_matches(prediction, reference), len(prediction), len(reference))


def sentence_bleu4_both_ways(first: str, second: str) -> tuple[float, float]:
    """(sentence_bleu4(first, second), sentence_bleu4(second, first)): the clipped n-gram matches are the same
    both ways, so MBR counts them once per pair."""
    if not first or not second:
        return 0.0, 0.0
    matched = _matches(first, second)
    return (_bleu_from_matches(matched, len(first), len(second)),
            _bleu_from_matches(matched, len(second), len(first)))


def _matches(first: str, second: str) -> list[int]:
    """Clipped matches of each n-gram order, 1 to 4 (symmetric: the smaller count of each shared n-gram)."""
    found = []
    for ours, theirs in zip(_ngram_counts(first), _ngram_counts(second), strict=True):
        shared = ours.keys() & theirs.keys()
        found.append(sum(map(min, map(ours.__getitem__, shared), map(theirs.__getitem__, shared))))
    return found


def _bleu_from_matches(matched: Sequence[int], length: int, reference_length: int) -> float:
    if matched[0] == 0:
        return 0.0
    logs, halvings = [], 1
    for order in range(4):
        total = max(1, length - order)  # NLTK's denominator: at least 1
        if matched[order] == 0:  # method3 (NIST): 1 / (2^k * denominator) for the k-th order without a match
            precision, halvings = 1 / (2**halvings * total), halvings + 1
        else:
            precision = matched[order] / total
        logs.append(0.25 * math.log(precision))
    brevity = 1.0 if length > reference_length else math.exp(1 - reference_length / length)
    return brevity * math.exp(math.fsum(logs))


@lru_cache(maxsize=65536)
def _ngram_counts(text: str) -> tuple[Counter[str], ...]:
    return tuple(Counter(text[i:i + n] for i in range(len(text) - n + 1)) for n in range(1, 5))


def value_coverage(text: str, pairs: Attributes) -> float:
    """Share of the distinct input values that occur verbatim in text, in [0, 1]."""
    wanted = values(pairs)
    return sum(1 for value in wanted if value in text) / len(wanted) if wanted else 1.0


def mask(text: str, words: Iterable[str]) -> str:
    """text with each word replaced by the mask, longest first."""
    for word in sorted(words, key=lambda w: (-len(w), w)):
        text = text.replace(word, _MASK)
    return text


def hallucinated_values(
    text: str, pairs: Attributes, value_lexicon: Mapping[str, Sequence[str]], keys: Iterable[str]
) -> list[str]:
    """Lexicon values of the checked keys that the input lists but the text names without the input having them."""
    own = values(pairs)
    listed = values_by_key(pairs)
    candidates = {v for key in keys if key in listed for v in value_lexicon.get(key, ()) if len(v) > 1} - set(own)
    remaining = mask(text, own)
    found = []
    for value in sorted(candidates, key=lambda w: (-len(w), w)):
        if value in remaining:
            found.append(value)
            remaining = remaining.replace(value, _MASK)
    return found
