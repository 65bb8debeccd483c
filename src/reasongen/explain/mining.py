"""Task B feature mining without a domain lexicon: the nouns and two-word terms that reviews judge.

A candidate is a word (or a pair of adjacent words) that is no stopword, opinion word or generic noun. Nouns are
told apart by context statistics instead of a tagger (none can be downloaded here): a noun often follows a
determiner (`the sound`, `this pedal`, `my knife`), seldom follows a copula, intensifier or subject pronoun
(`is padded`, `very portable`, `it feels`: adjectives and verbs), and usually ends its phrase (`a portable amp`:
adjectives are followed by the noun they modify). A candidate becomes a feature when at least `min_count`
reviews put an opinion word within `window` tokens of it and it is not clearly less judged than words are on
average (lift); features are ranked by opinion-reviews x lift (frequency x association) and the first
`max_features` kept. Plurals (`x`/`xs`) are one feature, named by the more frequent form."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cache

import yaml

from reasongen.paths import resource
from reasongen.text.features import Lexicon

WORDS_FILE = "explain_mining.yaml"
MIN_WORD_LENGTH = 3  # shorter tokens are mostly fragments (`ve`, `pc`) or abbreviations
# Noun tests, tuned on the musical-instrument reviews and checked on the synthetic knife reviews of the tests:
MIN_AFTER_DETERMINER = 0.15  # nouns: `the sound` 28%, `the quality` 19%; adverbs and verbs: near 0
MAX_AFTER_PREDICATE = 0.1    # adjectives/verbs: `is super` 21%, `it feels` 26%; nouns: `is noise` 2%
MIN_PHRASE_END = 0.5         # modifiers: `extra strings`, `real wood`: 40% end their phrase; nouns 60-90%
MIN_LIFT = 0.75              # frequent parts (`volume`, `neck`) are judged about as often as words on average


@dataclass(frozen=True)
class WordLists:
    """The domain-free lists the miner reads (resources/explain_mining.yaml)."""

    opinions: frozenset[str]
    determiners: frozenset[str]
    predicates: frozenset[str]
    excluded: frozenset[str]  # stopwords, generic nouns, determiners and opinion words: never a feature word

    @classmethod
    def from_mapping(cls, mapping: dict[str, list[str]]) -> WordLists:
        lists = {key: frozenset(words(mapping, key)) for key in ("opinions", "determiners", "predicates",
                                                                  "stopwords", "generic")}
        return cls(lists["opinions"], lists["determiners"], lists["predicates"],
                   lists["stopwords"] | lists["generic"] | lists["determiners"] | lists["opinions"])


def words(mapping: dict[str, list[str]], key: str) -> list[str]:
    """One word list, all strings (YAML reads a bare no / yes / on / off as a boolean: they must be quoted)."""
    wrong = [word for word in mapping[key] if not isinstance(word, str)]
    if wrong:
        raise ValueError(f"{WORDS_FILE}: {key} holds {wrong}, not words (quote no, yes, on, off)")
    return mapping[key]


@cache
def default_word_lists() -> WordLists:
    return WordLists.from_mapping(yaml.safe_load(resource(WORDS_FILE).read_text(encoding="utf-8")))


@dataclass
class CandidateCounts:
    """Per candidate term: occurrences, the contexts of the noun tests, and review frequencies."""

    occurrences: Counter = field(default_factory=Counter)
    after_determiner: Counter = field(default_factory=Counter)
    after_predicate: Counter = field(default_factory=Counter)
    phrase_end: Counter = field(default_factory=Counter)
    reviews: Counter = field(default_factory=Counter)
    opinion_reviews: Counter = field(default_factory=Counter)  # reviews with an opinion word within the window

    def is_noun(self, term: tuple[str, ...]) -> bool:
        """A noun, or a compound whose last word is a noun and whose first is no plural (`guitar strings`;
        `strings sound` and `blade feels` are a noun and its verb)."""
        n = self.occurrences[term]
        if len(term) > 1 and (not self.is_noun(term[-1:]) or is_plural(term[0])):
            return False
        return (self.after_determiner[term] >= MIN_AFTER_DETERMINER * n
                and self.after_predicate[term] <= MAX_AFTER_PREDICATE * n
                and self.phrase_end[term] >= MIN_PHRASE_END * n)


def is_plural(word: str) -> bool:
    return word.endswith("s") and not word.endswith(("ss", "us", "is"))


def is_feature_word(token: str, words: WordLists) -> bool:
    return (len(token) >= MIN_WORD_LENGTH and token.isalpha() and token not in words.excluded
            and not token.endswith("ly"))


def candidates(tokens: Sequence[str], words: WordLists) -> list[tuple[int, int, tuple[str, ...]]]:
    """(start, end, term) of every candidate word and adjacent candidate pair in a sentence."""
    ok = [is_feature_word(token, words) for token in tokens]
    found = [(i, i + 1, (tokens[i],)) for i in range(len(tokens)) if ok[i]]
    found += [(i, i + 2, (tokens[i], tokens[i + 1])) for i in range(len(tokens) - 1) if ok[i] and ok[i + 1]]
    return found


def count_candidates(tokenized_reviews: Iterable[list[list[str]]], words: WordLists, window: int) -> CandidateCounts:
    """Counts over reviews given as sentences of word tokens."""
    counts = CandidateCounts()
    for review in tokenized_reviews:
        seen, judged = set(), set()
        for tokens in review:
            opinions = [i for i, token in enumerate(tokens) if token in words.opinions]
            ok = [is_feature_word(token, words) for token in tokens] + [False]
            for start, end, term in candidates(tokens, words):
                before = tokens[start - 1] if start else ""
                counts.occurrences[term] += 1
                counts.after_determiner[term] += before in words.determiners
                counts.after_predicate[term] += before in words.predicates
                counts.phrase_end[term] += not ok[end]
                seen.add(term)
                if any(start - window <= i < end + window for i in opinions):
                    judged.add(term)
        counts.reviews.update(seen)
        counts.opinion_reviews.update(judged)
    return counts


def merge_plurals(terms: Iterable[tuple[str, ...]], frequency: Counter) -> dict[tuple[str, ...], list[tuple[str, ...]]]:
    """{canonical term: its forms}: `x` and `xs` (also `xes`) are one feature named by the more frequent form."""
    groups: dict[tuple[str, ...], list[tuple[str, ...]]] = {}
    for term in sorted(set(terms), key=lambda t: (len(t[-1]), t)):
        stems = [term[:-1] + (term[-1][: -len(end)],) for end in ("es", "s") if term[-1].endswith(end)]
        stem = next((s for s in stems if s in groups), None)
        groups.setdefault(stem or term, []).append(term) if stem else groups.setdefault(term, [term])
    return {max(forms, key=lambda f: (frequency[f], f)): sorted(forms) for forms in groups.values()}


def feature_scores(counts: CandidateCounts, n_reviews: int, min_count: int) -> Counter:
    """opinion-reviews x lift for the candidates that pass the noun tests, the count and the lift floor."""
    # the average chance that a review mentioning a candidate also judges it: the lift's baseline
    base = sum(counts.opinion_reviews.values()) / max(sum(counts.reviews.values()), 1)
    scores: Counter = Counter()
    for term, judged in counts.opinion_reviews.items():
        lift = judged / counts.reviews[term] / base
        if judged >= min_count and lift >= MIN_LIFT and counts.is_noun(term) and counts.reviews[term] < n_reviews:
            scores[term] = judged * lift
    return scores


def mine_features(tokenized_reviews: Sequence[list[list[str]]], words: WordLists, *, min_count: int, window: int,
                  max_features: int) -> dict[str, list[str]]:
    """{feature name: surface forms}, best first, mined from reviews given as sentences of word tokens."""
    counts = count_candidates(tokenized_reviews, words, window)
    scores = feature_scores(counts, len(tokenized_reviews), min_count)
    groups = merge_plurals(scores, counts.occurrences)
    ranked = sorted(groups, key=lambda term: (-sum(scores[f] for f in groups[term]), term))
    return {" ".join(term): [" ".join(form) for form in groups[term]] for term in ranked[:max_features]}


def mined_lexicon(features: dict[str, list[str]], words: WordLists) -> Lexicon:
    """The mined features as a Lexicon (the form extraction and the metrics read), with the generic opinions."""
    return Lexicon.from_mapping({"features": features, "opinions": sorted(words.opinions)})
