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


def sentence_rouge_l(prediction: str, reference: str) -> float:
    """One example's ROUGE-L F in [0, 1] on jieba words (ChatGLM-6B's definition: rouge_chinese's rouge-l F of the
    space-joined jieba words, the same number; tests compare the two); a text with no words scores 0. Written out
    (a bit-parallel LCS) because selection's MBR scores every candidate against every other: rouge_chinese's
    dynamic programme takes about 2 ms a pair, this some 15 us."""
    hypothesis, gold = jieba_words(prediction), jieba_words(reference)
    if not hypothesis or not gold:
        return 0.0
    common = _lcs_length(gold, hypothesis)
    precision, recall = common / len(hypothesis), common / len(gold)
    return 2.0 * ((precision * recall) / (precision + recall + 1e-8))  # rouge_chinese's formula, its epsilon


@lru_cache(maxsize=65536)
def jieba_words(text: str) -> tuple[str, ...]:
    """text as ROUGE counts it: jieba's tokens, spaces dropped."""
    import jieba  # lazily: its dictionary takes half a second to load

    return tuple(" ".join(jieba.cut(text)).split())


def load_words() -> None:
    """Load jieba's dictionary now: before forking workers, which would each load it again."""
    import jieba

    jieba.initialize()


def _lcs_length(first: Sequence[str], second: Sequence[str]) -> int:
    """Length of the longest common subsequence (Hyyroe's bit-vector algorithm: one pass over second, each
    step a few operations on an integer with a bit per word of first)."""
    positions: dict[str, int] = {}
    for index, word in enumerate(first):
        positions[word] = positions.get(word, 0) | (1 << index)
    full = (1 << len(first)) - 1
    state = full
    for word in second:
        matched = positions.get(word)
        if matched:
            kept = state & matched
            state = ((state + kept) | (state - kept)) & full
    return len(first) - state.bit_count()


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
