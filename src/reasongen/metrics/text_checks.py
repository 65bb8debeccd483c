"""Per-text definitions behind the metric modules, shared with candidate selection: one definition each."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from nltk.translate.bleu_score import SmoothingFunction, sentence_bleu

from reasongen.text.attributes import Attributes, values, values_by_key

_MASK = "\x00"  # cannot occur in text, and breaks adjacency so masking never creates a new match
_SMOOTHING = SmoothingFunction().method3


def sentence_bleu4(prediction: str, reference: str) -> float:
    """One example's character BLEU-4 in [0, 1] (ChatGLM-6B's definition); an empty text scores 0."""
    if not prediction or not reference:
        return 0.0
    return sentence_bleu([list(reference)], list(prediction), smoothing_function=_SMOOTHING)


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
