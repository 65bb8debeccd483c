"""Task B units: extraction on hand-made reviews, pseudonyms, the split, profiles from train only, PETER's metrics
against hand-computed values, the retrieval baseline and the soft-prompt model."""

from __future__ import annotations

import gzip
import json
import math
from pathlib import Path

import pytest
from conftest import MALFORMED_LINE_NUMBERS, MALFORMED_REVIEW_LINES, make_reviews, tiny_reviews_file

from reasongen import metrics
from reasongen.explain import extraction, privacy
from reasongen.explain.baselines import ProfileRetrieval
from reasongen.explain.profiles import build_profiles
from reasongen.explain.prompts import ProfilePrompter, build_prompt
from reasongen.explain.split import split_rows
from reasongen.io import read_json, read_jsonl
from reasongen.paths import resource

PRIVATE = ("REVIEWER", "Person ", "AMISSING", "No Item")  # what the tiny reviews' raw ids and names contain

LEXICON = extraction.Lexicon.from_mapping({
    "features": {"sound": ["sound"], "strings": ["strings", "string"], "sound quality": ["sound quality"],
                 "price": ["price"], "light": ["light"]},
    "opinions": ["great", "cheap", "good", "light", "bright"],
})


def extract(text: str, **kwargs):
    settings = {"min_words": 3, "max_words": 12, "window": 3} | kwargs
    return extraction.extract(text, LEXICON, **settings)


# --- extraction ---------------------------------------------------------------------------------------------------

def test_sentences_split_on_punctuation_even_without_a_space() -> None:
    assert extraction.sentences("Works fine.I love it! Really? yes;no\nnext") == [
        "Works fine.", "I love it!", "Really?", "yes;", "no", "next"]
    assert extraction.tokenize("The E-string's tone, honestly!") == ["the", "e", "string's", "tone", "honestly"]


def test_extract_picks_the_sentence_with_a_feature_next_to_an_opinion() -> None:
    review = ("I bought it in May. The strings arrived quickly and the box was fine. "
              "The sound is great for the money. Great price too.")
    found = extract(review)
    # "Great price too" has the opinion next to the feature (distance 1), "The sound is great" at distance 2
    assert found == {"feature": "price", "explanation": "great price too"}
    assert extract("The sound is great for the money. I like it a lot.") == {
        "feature": "sound", "explanation": "the sound is great for the money"}


def test_extract_none_without_feature_opinion_or_within_length() -> None:
    assert extract("I bought it for my son. He plays every day.") is None  # no feature
    assert extract("The strings arrived on a Tuesday morning.") is None  # feature, no opinion
    assert extract("Great sound.") is None  # 2 tokens < min_words
    assert extract("The sound of this thing when you play it at night in a big room is great") is None  # window
    long = "the sound is great " + "and so on " * 10
    assert extract(long) is None  # over max_words


def test_longest_mention_wins_and_the_feature_word_is_no_opinion() -> None:
    assert extract("The sound quality is great here.")["feature"] == "sound quality"
    assert extract("The light on it is nice.") is None  # `light` is the feature, not an opinion on it
    assert extract("The light is bright and clear.")["feature"] == "light"


def test_mine_vocabulary_keeps_features_mentioned_by_enough_reviews() -> None:
    reviews = ["great sound and strings", "the sound", "sound again, nice price", "strings strings strings"]
    assert extraction.mine_vocabulary(reviews, LEXICON, min_count=2) == {"sound": 3, "strings": 2}
    assert extraction.mine_vocabulary(reviews, LEXICON, min_count=4) == {}


# --- privacy and split --------------------------------------------------------------------------------------------

def test_pseudonyms_are_salted_stable_and_redacted_from_raw_lines(monkeypatch: pytest.MonkeyPatch) -> None:
    first = privacy.pseudonym("A2IBPI20UZIR0U", "a salt")
    assert first == privacy.pseudonym("A2IBPI20UZIR0U", "a salt") and first.startswith("u") and len(first) == 13
    assert first != privacy.pseudonym("A2IBPI20UZIR0U", "another salt")
    monkeypatch.setenv(privacy.SALT_ENV, "secret")
    assert privacy.pseudonym("A2IBPI20UZIR0U") == privacy.pseudonym("A2IBPI20UZIR0U", "secret") != first
    raw = '{"reviewerID": "A2IBPI20UZIR0U", "asin": "B1", "reviewerName": "Jake \\"J\\" Doe", "overall": 9}'
    redacted = privacy.redact(raw, "secret")
    assert "A2IBPI20UZIR0U" not in redacted and "Jake" not in redacted and "reviewerName" not in redacted
    assert privacy.pseudonym("A2IBPI20UZIR0U", "secret") in redacted and '"overall": 9' in redacted


def test_salt_is_a_random_user_secret_made_on_first_use(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv(privacy.SALT_ENV, raising=False)
    monkeypatch.setenv(privacy.SECRETS_DIR_ENV, str(tmp_path / "mine"))
    first = privacy.salt()
    assert first == privacy.salt() and len(first) == 64  # kept in the file, not drawn again
    assert (tmp_path / "mine" / privacy.SALT_FILE).stat().st_mode & 0o777 == 0o600
    monkeypatch.setenv(privacy.SECRETS_DIR_ENV, str(tmp_path / "someone else"))
    assert privacy.salt() != first  # another user, another random salt
    monkeypatch.setenv(privacy.SALT_ENV, "given")
    assert privacy.salt() == "given"


@pytest.mark.parametrize("line", MALFORMED_REVIEW_LINES)
def test_quarantined_lines_keep_no_raw_id_or_name_whatever_their_shape(line: str) -> None:
    if line == "OVERALL_OUT_OF_RANGE":
        line = json.dumps({**make_reviews()[0], "overall": 7.0})
    record = privacy.redact_quarantined({"line": 3, "reason": "x", "detail": "", "raw": line}, "salt")
    assert record["line"] == 3 and record["reason"] == "x"
    assert not any(word in json.dumps(record) for word in PRIVATE), record
    if record["raw"] is None:  # dropped, not half-redacted
        assert set(record) == {"line", "reason", "detail", "raw", "raw_dropped"}
    else:
        assert "reviewerName" not in record["raw"] and json.loads(record["raw"])


def tuples(n_users: int = 30, n_items: int = 20, per_user: int = 10) -> list[dict]:
    return [{"user": f"u{u}", "item": f"i{(u * 3 + k) % n_items}", "rating": 1.0 + (u + k) % 5,
             "feature": ("sound", "price", "strings")[(u + k) % 3], "explanation": f"text {u} {k}"}
            for u in range(n_users) for k in range(per_user)]


def test_split_is_8_1_1_seeded_and_every_test_user_and_item_is_in_training() -> None:
    rows = tuples()
    split = split_rows(rows, 0.1, 0.1, seed=7)
    assert [len(split[name]) for name in ("train", "val", "test")] == [240, 30, 30]
    assert sorted(split["train"] + split["val"] + split["test"]) == list(range(len(rows)))
    train_users = {rows[i]["user"] for i in split["train"]}
    train_items = {rows[i]["item"] for i in split["train"]}
    for name in ("val", "test"):
        assert {rows[i]["user"] for i in split[name]} <= train_users
        assert {rows[i]["item"] for i in split[name]} <= train_items
    assert split == split_rows(rows, 0.1, 0.1, seed=7) and split != split_rows(rows, 0.1, 0.1, seed=8)


def test_split_refuses_when_held_out_rows_cannot_keep_users_in_training() -> None:
    one_each = [{"user": f"u{i}", "item": f"i{i}"} for i in range(20)]
    with pytest.raises(ValueError, match="users and items are all in training"):
        split_rows(one_each, 0.1, 0.1, seed=0)


# --- profiles -----------------------------------------------------------------------------------------------------

def test_profiles_count_features_and_ratings_of_the_rows_given() -> None:
    rows = [{"user": "u1", "item": "a", "rating": 5.0, "feature": "sound"},
            {"user": "u1", "item": "b", "rating": 4.0, "feature": "price"},
            {"user": "u1", "item": "c", "rating": 3.0, "feature": "sound"},
            {"user": "u2", "item": "a", "rating": 1.0, "feature": "strings"}]
    profiles = build_profiles(rows, top_k=1)
    assert profiles["users"]["u1"] == {"features": ["sound"], "feature_counts": {"price": 1, "sound": 2},
                                       "mean_rating": 4.0, "reviews": 3}
    assert profiles["items"]["a"]["mean_rating"] == 3.0
    assert profiles["items"]["a"]["features"] == ["sound"]  # tie sound/strings: alphabetical
    assert build_prompt(profiles["users"]["u1"], profiles["items"]["a"], "price") == (
        "user: sound (4.0) | item: sound (3.0) | feature: price | explanation:")
    assert ProfilePrompter(profiles).prompt({"user": "new", "item": "a", "feature": "x"}, use_feature=False) == (
        "user: unknown | item: sound (3.0) | explanation:")


def test_prepare_stage_quarantines_pseudonymises_and_profiles_from_train_only(tmp_path: Path, tiny_cfg) -> None:
    from reasongen.stages import explain_prepare

    raw = tiny_reviews_file(tmp_path)
    cfg = tiny_cfg(explain={"data": {"shared_file": str(raw), "sha256": None}})
    out = tmp_path / "out"
    stats = explain_prepare.run(cfg, out_dir=out)
    n_reviews = len(make_reviews())
    assert stats["rows_in"] == n_reviews + len(MALFORMED_REVIEW_LINES) == stats["kept"] + stats["quarantined"]
    assert stats["quarantine_reasons"] == {"invalid json": 2, "missing field": 3, "rating out of range": 1,
                                           "duplicate key": 1, "wrong type": 1, "not an object": 1}
    quarantine = read_jsonl(out / "quarantine.jsonl")
    assert [r["line"] for r in quarantine] == MALFORMED_LINE_NUMBERS
    # dropped: not JSON, cut short, an id that is not a string, a nested id, not an object
    assert sum(r["raw"] is None for r in quarantine) == 5
    assert stats["tuples"] == n_reviews  # every hand-made review has one feature-opinion sentence
    for path in out.iterdir():  # no raw reviewer id or name in any output
        text = path.read_text(encoding="utf-8")
        assert not any(word in text for word in PRIVATE), path.name
    splits = {name: read_jsonl(out / f"{name}.jsonl") for name in ("train", "val", "test")}
    assert {len(rows) for rows in (splits["val"], splits["test"])} == {round(0.1 * n_reviews)}
    profiles = read_json(out / "profiles.json")
    assert profiles == json.loads(json.dumps(build_profiles(splits["train"], cfg.explain.profiles.top_features)))
    everything = build_profiles(splits["train"] + splits["val"] + splits["test"], cfg.explain.profiles.top_features)
    assert profiles != json.loads(json.dumps(everything))  # held-out rows changed nothing
    assert {row["user"] for row in splits["test"]} <= set(profiles["users"])
    # mined with no lexicon: the judged nouns; "Shipping took a week." and "for my band" are never judged
    features = {"sound", "tone", "price", "strings", "cable", "tuner"}
    assert set(read_json(out / "features.json")["forms"]) == features
    assert {row["feature"] for rows in splits.values() for row in rows} == features


def test_prepare_stage_with_a_curated_lexicon_uses_its_features(tmp_path: Path, tiny_cfg) -> None:
    from reasongen.stages import explain_prepare

    cfg = tiny_cfg(explain={"data": {"shared_file": str(tiny_reviews_file(tmp_path)), "sha256": None},
                            "extraction": {"lexicon": str(resource("explain_lexicon.yaml"))}})
    explain_prepare.run(cfg, out_dir=tmp_path / "out")
    # the lexicon lists `shipping`, mentioned with no opinion: in the vocabulary, never an explanation
    assert set(read_json(tmp_path / "out" / "features.json")["forms"]) == {
        "sound", "tone", "price", "strings", "cable", "tuner", "shipping"}


def test_split_does_not_depend_on_the_salt(tmp_path: Path, tiny_cfg, monkeypatch: pytest.MonkeyPatch) -> None:
    from reasongen.stages import explain_prepare

    cfg = tiny_cfg(explain={"data": {"shared_file": str(tiny_reviews_file(tmp_path)), "sha256": None}})
    runs = []
    for salt in ("one salt", "another salt"):
        monkeypatch.setenv(privacy.SALT_ENV, salt)
        explain_prepare.run(cfg, out_dir=tmp_path / salt)
        runs.append((read_json(tmp_path / salt / "split_manifest.json")["ids"],
                     {row["user"] for row in read_jsonl(tmp_path / salt / "train.jsonl")}))
    assert runs[0][0] == runs[1][0]  # the same rows in each split
    assert not runs[0][1] & runs[1][1]  # under other pseudonyms


def test_prepare_stage_rejects_data_that_is_not_the_pinned_file(tmp_path: Path, tiny_cfg) -> None:
    from reasongen.stages import explain_prepare

    raw = tmp_path / "reviews.json.gz"
    with gzip.open(raw, "wt") as handle:
        handle.write("{}\n")
    with pytest.raises(ValueError, match="not the pinned explain.data.sha256"):
        explain_prepare.run(tiny_cfg(explain={"data": {"shared_file": str(raw), "sha256": "0" * 64}}),
                            out_dir=tmp_path / "out")


def test_prepare_stage_stops_when_too_many_reviews_are_bad(tmp_path: Path, tiny_cfg) -> None:
    from reasongen.stages import explain_prepare

    raw = tmp_path / "reviews.jsonl"
    raw.write_text("{not json\n" + json.dumps(make_reviews()[0]) + "\n[1]\n", encoding="utf-8")
    cfg = tiny_cfg(explain={"data": {"shared_file": str(raw), "sha256": None}})
    with pytest.raises(ValueError, match=r"2 of 3 rows quarantined .* explain.data.max_quarantined_share=0.25"):
        explain_prepare.run(cfg, out_dir=tmp_path / "out")
    assert len(read_jsonl(tmp_path / "out" / "quarantine.jsonl")) == 2  # the reasons stay behind


# --- metrics ------------------------------------------------------------------------------------------------------

def test_bleu_matches_hand_computed_corpus_values() -> None:
    bleu = metrics.load("bleu_words")
    # prediction "the cat sat" vs reference "the cat sat down": p1 = p2 = p3 = 1, p4 = 0/0 -> 0 -> BLEU-4 = 0;
    # BLEU-1 = 1 * exp(1 - 4/3)
    scores = bleu.compute(predictions=["the cat sat"], references=["the cat sat down"])
    assert scores["bleu1"] == pytest.approx(100 * math.exp(1 - 4 / 3))
    assert scores["bleu4"] == 0.0
    # two pairs: clipped unigram matches (2 + 4) / (3 + 4) = 6/7; bigrams (1 + 3) / (2 + 3); trigrams (0 + 2) / (1 + 2);
    # 4-grams (0 + 1) / (0 + 1); lengths 7 vs 8 -> brevity penalty exp(1 - 8/7)
    scores = bleu.compute(predictions=["the the cat", "a b c d"], references=["the cat is here", "a b c d"])
    precisions = [6 / 7, 4 / 5, 2 / 3, 1 / 1]
    penalty = math.exp(1 - 8 / 7)
    assert scores["bleu1"] == pytest.approx(100 * precisions[0] * penalty)
    assert scores["bleu4"] == pytest.approx(100 * math.prod(precisions) ** 0.25 * penalty)


def test_rouge_matches_hand_computed_values() -> None:
    scores = metrics.load("rouge_words").compute(predictions=["the cat sat on mat"],
                                                references=["the cat is on the mat"])
    # unigram sets: pred {the, cat, sat, on, mat} (5), ref {the, cat, is, on, mat} (5): 4 common -> F = 0.8
    assert scores["rouge1"] == pytest.approx(80.0, abs=1e-4)
    # bigrams: pred {the cat, cat sat, sat on, on mat}, ref {the cat, cat is, is on, on the, the mat}: 1 common
    assert scores["rouge2"] == pytest.approx(100 * 2 * (1 / 4) * (1 / 5) / (1 / 4 + 1 / 5), abs=1e-4)
    # LCS "the cat on mat" = 4: R = 4/6, P = 4/5, beta = P / R
    r, p = 4 / 6, 4 / 5
    beta = p / r
    assert scores["rougeL"] == pytest.approx(100 * (1 + beta**2) * r * p / (r + beta**2 * p), abs=1e-4)


def test_usr_fmr_fcr_div_match_hand_computed_values() -> None:
    vocabulary = {"sound": ["sound"], "strings": ["strings", "string"], "price": ["price"], "tone": ["tone"]}
    predictions = ["great sound and great price", "great sound and great price", "the string is good",
                   "nothing here"]
    features = ["sound", "strings", "strings", "tone"]
    scores = metrics.load("explanation_features").compute(predictions=predictions, features=features,
                                                          vocabulary=vocabulary)
    assert scores["usr"] == pytest.approx(3 / 4)
    assert scores["fmr"] == pytest.approx(2 / 4)  # rows 1 and 3 contain their feature
    assert scores["fcr"] == pytest.approx(3 / 4)  # sound, price, strings of 4
    # feature sets {sound, price} x2, {strings}, {}: pairs share 2 (rows 1-2) and 0 elsewhere; 6 pairs
    assert scores["div"] == pytest.approx(2 / 6)
    with pytest.raises(ValueError, match="vocabulary"):
        metrics.load("explanation_features").compute(predictions=["x"], features=["sound"])


def test_semantic_similarity_is_high_for_paraphrases_and_exact_for_copies() -> None:
    module = metrics.load("semantic_similarity")
    same = module.compute(predictions=["the sound is great"], references=["the sound is great"])
    assert same["semantic_similarity"] == pytest.approx(100.0, abs=1e-3)
    close = module.compute(predictions=["the tone is excellent"], references=["the sound is great"])
    far = module.compute(predictions=["shipping took two weeks"], references=["the sound is great"])
    assert close["semantic_similarity"] > far["semantic_similarity"]


def test_score_explanations_reports_every_metric() -> None:
    rows = [{"explanation": "the sound is great", "feature": "sound"},
            {"explanation": "cheap strings", "feature": "strings"}]
    scores = metrics.score_explanations(["the sound is great", "good price"], rows,
                                        vocabulary={"sound": ["sound"], "strings": ["strings"]},
                                        semantic_similarity=False)
    assert {"bleu1", "bleu4", "rouge1", "rouge2", "rougeL", "usr", "fmr", "fcr", "div", "n"} <= set(scores)
    assert scores["fmr"] == 0.5 and scores["n"] == 2 and "semantic_similarity" not in scores


# --- retrieval and soft prompt --------------------------------------------------------------------------------------

def test_retrieval_takes_the_explanation_of_the_most_similar_pair() -> None:
    train = [{"user": "u1", "item": "a", "feature": "sound", "rating": 5, "explanation": "u1 on a"},
             {"user": "u2", "item": "b", "feature": "price", "rating": 5, "explanation": "u2 on b"},
             {"user": "u3", "item": "b", "feature": "sound", "rating": 5, "explanation": "u3 on b"},
             {"user": "u1", "item": "c", "feature": "price", "rating": 5, "explanation": "u1 on c"}]
    retrieval = ProfileRetrieval(train, build_profiles(train, top_k=2))
    # u3 on item a: candidates are a's row (u1: sound+price vs u3: sound -> 0.71 + 1) and u3's row (1 + cos(a, b))
    # a = {sound}, b = {price, sound} -> cos 0.71: u1-on-a scores 1.71, u3-on-b scores 1.71: the earliest wins
    assert retrieval.predict({"user": "u3", "item": "a"}) == "u1 on a"
    # u2 on item c: u2-on-b scores 1 + cos(c={price}, b={price, sound}) = 1.71, u1-on-c cos(u2, u1) + 1 = 1.71 too
    assert retrieval.predict({"user": "u2", "item": "c"}) == "u2 on b"
    # a new item d like c ({price}): u3's only row (1 + cos(d, b) = 1.71) beats nothing else; d's row (u4, {price})
    # scores cos(u3={sound}, u4={price}) + 1 = 1.0
    train.append({"user": "u4", "item": "d", "feature": "price", "rating": 5, "explanation": "u4 on d"})
    retrieval = ProfileRetrieval(train, build_profiles(train, top_k=2))
    assert retrieval.predict({"user": "u3", "item": "d"}) == "u3 on b"
    assert retrieval.similarity({"user": "u3", "item": "d"}, 4) == pytest.approx(1.0)


def test_soft_prompt_model_trains_saves_and_reloads(tmp_path: Path, bpe_tokenizer, tiny_model) -> None:
    import torch

    from reasongen.explain import soft_prompt
    from reasongen.modeling.encoding import PadCollator, encode_example

    lm = tiny_model("gpt2", bpe_tokenizer)
    model = soft_prompt.SoftPromptLM(lm, ["u1", "u2"], ["a", "b"])
    examples = [encode_example(bpe_tokenizer, "", text, 8, 12, loss_on_prompt=False) | model.index(u, i)
                for text, u, i in (("great sound", "u1", "a"), ("cheap strings here", "u2", "b"))]
    batch = PadCollator(bpe_tokenizer.pad_token_id)(examples)
    assert batch["user"].tolist() == [0, 1] and batch["item"].tolist() == [0, 1]
    loss = model(**batch).loss
    loss.backward()
    assert model.user_embeddings.weight.grad.abs().sum() > 0  # the soft prompt gets gradient
    with pytest.raises(KeyError, match="user 'u9' not in the training data"):
        model.index("u9", "a")
    model.eval()
    settings = {"max_new_tokens": 5, "do_sample": False, "batch_size": 1}
    before = model.generate_texts(bpe_tokenizer, [("u1", "a"), ("u2", "b")], settings)
    soft_prompt.save(model, bpe_tokenizer, tmp_path / "model", {"peft_method": "none"})
    loaded, _, meta = soft_prompt.load(tmp_path / "model")
    assert meta["kind"] == "soft_prompt"
    assert torch.equal(loaded.user_embeddings.weight, model.user_embeddings.weight)
    assert loaded.generate_texts(bpe_tokenizer, [("u1", "a"), ("u2", "b")], settings) == before


def test_choose_keeps_greedy_when_it_names_the_feature_else_the_first_sample_that_does() -> None:
    from reasongen.explain.generator import choose

    vocabulary = {"strings": ["string", "strings"], "sound": ["sound"]}
    greedy_ok = ["the strings feel great", "nice sound here", "the string is bright"]
    assert choose(greedy_ok, "strings", vocabulary) == greedy_ok[0]
    greedy_miss = ["nice sound here", "good value", "the string is bright", "strings are fine"]
    assert choose(greedy_miss, "strings", vocabulary) == "the string is bright"  # a surface form counts
    assert choose(greedy_miss, "tuner", vocabulary) == greedy_miss[0]  # nobody names it: greedy stays
    assert choose(greedy_miss, None, vocabulary) == greedy_miss[0]
    scores = metrics.load("explanation_features").compute(
        predictions=[choose(greedy_miss, "strings", vocabulary)], features=["strings"], vocabulary=vocabulary)
    assert scores["fmr"] == 1.0


def test_choose_longest_and_consensus_pick_among_the_texts_naming_the_feature() -> None:
    from reasongen.explain.generator import choose

    texts = ["nice sound here and a very long text without it", "the strings are fine", "strings are great",
             "the strings are great and they stay in tune", "the strings are great"]
    assert choose(texts, "strings", rule="longest") == texts[3]  # the longer text has no feature: not chosen
    # "the strings are great" shares the most bigrams with the other candidates
    assert choose(texts, "strings", rule="consensus") == texts[4]
    with pytest.raises(ValueError, match="feature_choice='best'"):
        choose(texts, "strings", rule="best")


def test_min_new_tokens_bans_the_end_only_for_the_first_tokens() -> None:
    import torch

    from reasongen.explain.decoding import MinNewTokens

    ban = MinNewTokens(2, eos_id=0)
    for width, banned in ((5, True), (6, True), (7, False)):  # the prompt is 5 wide: new tokens 0, 1, then 2
        scores = ban(torch.zeros(3, width, dtype=torch.long), torch.zeros(3, 4))
        assert bool(torch.isinf(scores[:, 0]).all()) is banned and not torch.isinf(scores[:, 1:]).any()
