"""Task B feature mining with no lexicon, on reviews of another domain (kitchen knives) built here from templates:
it finds the judged nouns and none of the generic, filler, verb or modifier words around them."""

from __future__ import annotations

import random

from reasongen.explain import extraction, mining
from reasongen.text.features import tokenize

KNIFE_FEATURES = ["blade", "handle", "edge", "tip", "sheath", "steel", "balance"]
JUDGEMENTS = ["The {f} is really {o}.", "I found the {f} {o} after a month.", "{O} {f}, as promised.",
              "My wife says the {f} feels {o} in the hand.", "Such a {o} {f} for this price range."]
OPINIONS = ["great", "sharp", "sturdy", "comfortable", "flimsy", "solid", "excellent", "poor", "nice", "dull"]
FILLER = ["I bought this for my kitchen last year.", "Shipping took a week.", "It came in a plain box.",
          "The stainless finish matches my other knives in the drawer.", "We cook dinner every night.",
          "I chopped onions yesterday and carrots today.", "My husband ordered a second one for his brother."]


def knife_reviews(n: int = 300, seed: int = 0) -> list[str]:
    """n reviews: one or two judgement sentences about a knife feature among filler sentences."""
    rng = random.Random(seed)
    reviews = []
    for _ in range(n):
        sentences = rng.sample(FILLER, 2)
        for _ in range(rng.randint(1, 2)):
            opinion = rng.choice(OPINIONS)
            judged = rng.choice(JUDGEMENTS).format(f=rng.choice(KNIFE_FEATURES), o=opinion, O=opinion.capitalize())
            sentences.insert(rng.randint(0, len(sentences)), judged)
        reviews.append(" ".join(sentences))
    return reviews


def mine(reviews: list[str], min_count: int = 10) -> dict[str, list[str]]:
    tokenized = [[tokenize(sentence) for sentence in extraction.sentences(text)] for text in reviews]
    return mining.mine_features(tokenized, mining.default_word_lists(), min_count=min_count, window=4,
                                max_features=50)


def test_mining_finds_the_features_of_another_domain_without_a_lexicon() -> None:
    features = mine(knife_reviews())
    assert set(KNIFE_FEATURES) <= set(features)
    filler_words = {word for sentence in FILLER for word in tokenize(sentence)}
    # generic nouns (kitchen, week, box, wife), verbs (bought, chopped) and the modifier `stainless`: never features
    assert not filler_words & {word for name in features for word in name.split()}, features


def test_mined_features_yield_explanations_and_thresholds_bite() -> None:
    reviews = knife_reviews()
    words = mining.default_word_lists()
    lexicon = mining.mined_lexicon(mine(reviews), words)
    found = [extraction.extract(text, lexicon, min_words=3, max_words=25, window=4) for text in reviews]
    assert sum(f is not None for f in found) >= 0.9 * len(reviews)
    assert {f["feature"] for f in found if f} == set(KNIFE_FEATURES)
    assert mine(reviews, min_count=len(reviews)) == {}  # no feature is judged in every review


def test_plurals_are_one_feature_named_by_the_more_frequent_form() -> None:
    counts = {("blade",): 5, ("blades",): 9, ("box",): 2, ("boxes",): 1, ("tip",): 3}
    from collections import Counter

    assert mining.merge_plurals(counts, Counter(counts)) == {
        ("blades",): [("blade",), ("blades",)], ("box",): [("box",), ("boxes",)], ("tip",): [("tip",)]}


def test_word_lists_refuse_what_yaml_read_as_booleans() -> None:
    import pytest
    import yaml

    mapping = {key: ["the"] for key in ("opinions", "determiners", "predicates", "stopwords", "generic")}
    mapping["stopwords"] = yaml.safe_load("[nor, no, off]")
    with pytest.raises(ValueError, match=r"stopwords holds \[False, False\]"):
        mining.WordLists.from_mapping(mapping)
    assert "no" in mining.default_word_lists().determiners and "off" in mining.default_word_lists().excluded
