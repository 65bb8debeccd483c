"""Feature mentions in English review text: a lexicon of features (each with surface forms) and opinion words,
word tokens, and where a sentence mentions a feature. The one definition that extraction and the FMR/FCR/DIV
metrics share."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

_TOKEN = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")


@dataclass(frozen=True, eq=False)
class Lexicon:
    """Candidate features (canonical name -> surface forms as token tuples) and opinion words."""

    features: dict[str, tuple[tuple[str, ...], ...]]
    opinions: frozenset[str]

    @classmethod
    def from_mapping(cls, mapping: dict[str, Any]) -> Lexicon:
        features = {str(name): tuple(tuple(tokenize(form)) for form in forms)
                    for name, forms in mapping["features"].items()}
        return cls(features=features, opinions=frozenset(str(word) for word in mapping["opinions"]))

    def by_first_token(self) -> dict[str, list[tuple[tuple[str, ...], str]]]:
        """(form, feature) pairs keyed by the form's first token, for a single pass over a sentence."""
        return _first_token_index(self)

    def restricted(self, names: Iterable[str]) -> Lexicon:
        """The same lexicon with only the named features (the mined vocabulary)."""
        keep = set(names)
        return Lexicon({name: forms for name, forms in self.features.items() if name in keep}, self.opinions)


@cache
def _first_token_index(lexicon: Lexicon) -> dict[str, list[tuple[tuple[str, ...], str]]]:
    index: dict[str, list[tuple[tuple[str, ...], str]]] = {}
    for name, forms in lexicon.features.items():
        for form in forms:
            index.setdefault(form[0], []).append((form, name))
    return index


def tokenize(text: str) -> list[str]:
    """Lower-cased word tokens (letters, digits, inner apostrophes); punctuation dropped."""
    return _TOKEN.findall(text.lower())


def find_mentions(tokens: Sequence[str], lexicon: Lexicon) -> list[tuple[int, int, str]]:
    """(start, end, feature) of every feature mention in tokens; longer forms win where two overlap
    ("sound quality" over "sound")."""
    found: list[tuple[int, int, str]] = []
    by_first = lexicon.by_first_token()
    for start, token in enumerate(tokens):
        for form, name in by_first.get(token, ()):
            if tuple(tokens[start : start + len(form)]) == form:
                found.append((start, start + len(form), name))
    kept: list[tuple[int, int, str]] = []
    for mention in sorted(found, key=lambda m: -(m[1] - m[0])):
        if all(mention[1] <= other[0] or mention[0] >= other[1] for other in kept):
            kept.append(mention)
    return sorted(kept)
