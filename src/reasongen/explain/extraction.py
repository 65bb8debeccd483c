"""Task B extraction: a feature (aspect) vocabulary mined from the reviews, and for each review the one
explanation sentence that mentions a feature with an opinion word near it.

Offline and deterministic. The candidate features come from the reviews themselves (`explain/mining.py`, no
domain knowledge), or, when `explain.extraction.lexicon` names one, from a curated lexicon file (such as the
musical-instrument `resources/explain_lexicon.yaml`: canonical name -> surface forms, plus opinion words); a
candidate enters the vocabulary when at least `min_feature_count` reviews mention it. Sentences are lower-cased
word tokens joined by single spaces (the form PETER's metrics tokenise on whitespace)."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import yaml

from reasongen.explain import mining
from reasongen.text.features import Lexicon, find_mentions, tokenize

# A sentence ends at . ! ? ; or a line break, also when the next sentence follows with no space ("cheap.I did").
_SENTENCE_END = re.compile(r"(?<=[.!?;])\s*|\n+")


def sentences(text: str) -> list[str]:
    """The review's sentences, split on . ! ? ; and line breaks."""
    return [part.strip() for part in _SENTENCE_END.split(text) if part and part.strip()]


def load_lexicon(path: str | Path) -> Lexicon:
    """A curated lexicon file: {features: {name: [surface forms]}, opinions: [words]}."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"explain.extraction.lexicon: {path} not found (null mines the features instead)")
    return Lexicon.from_mapping(yaml.safe_load(path.read_text(encoding="utf-8")))


def candidate_lexicon(texts: Sequence[str], extraction_cfg: Any) -> Lexicon:
    """The candidate features: mined from the texts, or the curated lexicon that explain.extraction.lexicon names."""
    if extraction_cfg.lexicon:
        return load_lexicon(extraction_cfg.lexicon)
    words = mining.default_word_lists()
    features = mining.mine_features([[tokenize(s) for s in sentences(text)] for text in texts], words,
                                    min_count=extraction_cfg.min_feature_count,
                                    window=extraction_cfg.opinion_window, max_features=extraction_cfg.max_features)
    return mining.mined_lexicon(features, words)


def review_features(text: str, lexicon: Lexicon) -> set[str]:
    """The features a review mentions anywhere."""
    return {name for sentence in sentences(text) for _, _, name in find_mentions(tokenize(sentence), lexicon)}


def mine_vocabulary(texts: Iterable[str], lexicon: Lexicon, min_count: int) -> dict[str, int]:
    """Features mentioned by at least min_count of the texts (review frequency), most frequent first."""
    counts = Counter(name for text in texts for name in review_features(text, lexicon))
    return {name: n for name, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])) if n >= min_count}


def best_pair(tokens: Sequence[str], lexicon: Lexicon, window: int) -> tuple[int, str] | None:
    """(distance, feature) of the feature mention closest to an opinion word within `window` tokens, or None."""
    opinion_positions = [i for i, token in enumerate(tokens) if token in lexicon.opinions]
    best: tuple[int, str] | None = None
    for start, end, name in find_mentions(tokens, lexicon):
        for position in opinion_positions:
            if start <= position < end:
                continue  # the feature word itself ("quality", "light") is no opinion on it
            distance = start - position if position < start else position - end + 1
            if distance <= window and (best is None or distance < best[0]):
                best = (distance, name)
    return best


def extract(text: str, lexicon: Lexicon, *, min_words: int, max_words: int, window: int) -> dict[str, str] | None:
    """The review's explanation: among sentences of min_words..max_words tokens, the one whose feature sits
    closest to an opinion word (ties: the earliest sentence). None when no sentence qualifies."""
    best: tuple[int, int, str, list[str]] | None = None
    for index, sentence in enumerate(sentences(text)):
        tokens = tokenize(sentence)
        if not min_words <= len(tokens) <= max_words:
            continue
        pair = best_pair(tokens, lexicon, window)
        if pair is not None and (best is None or (pair[0], index) < best[:2]):
            best = (pair[0], index, pair[1], tokens)
    if best is None:
        return None
    return {"feature": best[2], "explanation": " ".join(best[3])}
