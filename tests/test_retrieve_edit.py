"""Retrieve-and-edit candidates: human clauses of similar training products, edited to fit the input, judged by the
project's own metric functions."""

from __future__ import annotations

import pytest

from reasongen.adgen.evaluation import ablation_pool
from reasongen.adgen.generator import Generator
from reasongen.adgen.retrieve_edit import ClauseBank
from reasongen.adgen.selection import Checks, clauses, faults
from reasongen.errors import UserError
from reasongen.metrics.text_checks import value_coverage
from reasongen.metrics.text_quality import bare_attribute_clause, known_values
from reasongen.text.attributes import parse_content, value_lexicon

TRAIN = [
    {"content": "类型#裙*颜色#红色*材质#棉*裙长#连衣裙",
     "summary": "这款连衣裙采用红色的棉质面料，穿着舒适透气。红色热情又显白，日常出街很吸睛。"},
    {"content": "类型#裙*颜色#蓝色*图案#条纹*裙长#半身裙",
     "summary": "这款半身裙选用清新的蓝色，搭配条纹图案，活泼又减龄。条纹拉长身形，上身很显高。"},
    {"content": "类型#裙*领型#v领*裙长#连衣裙*材质#雪纺",
     "summary": "v领的剪裁修饰脸型，露出精致的锁骨。雪纺面料轻盈飘逸，行走间尽显温柔气质。"},
    {"content": "类型#裤*颜色#黑色*材质#牛仔布*裤长#九分裤",
     "summary": "这款九分裤采用黑色牛仔布，百搭又显瘦，搭配小白鞋很有精神，出游通勤都合适。"},
    {"content": "类型#裙*颜色#蓝色*裙长#连衣裙",
     "summary": "蓝色的连衣裙清爽又大方，夏天穿很凉快。"},
    {"content": "类型#上衣*材质#棉*衣样式#衬衫",
     "summary": "纯棉面料柔软亲肤，吸汗透气。这件衬衫宽松百搭。"},
]
LEXICON = value_lexicon(TRAIN)
CHECKS = Checks(value_lexicon=LEXICON, checked_keys=("颜色", "材质"), length_bounds=(40, 80))
ROW = {"content": "类型#裙*颜色#蓝色*材质#棉*领型#v领*裙长#连衣裙"}


@pytest.fixture(scope="module")
def bank() -> ClauseBank:
    return ClauseBank(TRAIN, LEXICON)


def test_edited_texts_claim_nothing_the_input_does_not_give(bank):
    found = bank.candidates(ROW, CHECKS, neighbours=4)
    assert found
    pairs = parse_content(ROW["content"])
    for text in found:
        assert "红色" not in text and "雪纺" not in text and "牛仔布" not in text  # other values of listed keys
        assert "条纹" not in text  # a detail under a key the input does not list
        assert "半身裙" not in text and "九分裤" not in text  # another garment
        assert sum(faults(text, pairs, CHECKS).values()) == 0
        known = known_values(LEXICON, pairs)
        assert not any(bare_attribute_clause(clause, known) for clause in clauses(text))


def test_missing_values_are_covered_by_borrowed_human_clauses(bank):
    found = bank.candidates(ROW, CHECKS, neighbours=4)
    pairs = parse_content(ROW["content"])
    best = max(value_coverage(text, pairs) for text in found)
    assert best == 1.0  # 蓝色 + 连衣裙, 棉 and v领 come from three training texts
    human = {clause.rstrip("，。") for row in TRAIN for clause in clauses(row["summary"])}
    for text in found:
        assert all(clause.rstrip("，。") in human for clause in clauses(text))  # every clause a copywriter's


def test_requested_keywords_and_aspect_are_borrowed_too(bank):
    row = {**ROW, "keywords": ["锁骨"], "aspect": "显瘦"}
    assert all("锁骨" in text for text in bank.candidates(row, CHECKS, neighbours=2))


def test_another_products_brand_unk_and_cut_off_clauses_are_never_borrowed():
    train = [*TRAIN, {"content": "类型#裙*颜色#蓝色*裙长#连衣裙",
                      "summary": "veromoda的蓝色连衣裙很清爽，的v领<UNK>设计，了不少v领的美感。"}]
    lexicon = value_lexicon(train)
    checks = Checks(value_lexicon=lexicon, checked_keys=("颜色", "材质"), length_bounds=(40, 80))
    for text in ClauseBank(train, lexicon).candidates(ROW, checks, neighbours=6):
        assert "veromoda" not in text and "<UNK>" not in text and "了不少" not in text


def test_clauses_that_lost_characters_are_neither_kept_nor_borrowed():
    from reasongen.adgen.dataset import normalize_summary
    from reasongen.adgen.retrieve_edit import lost_clauses

    # the data's <UNK> dropped a word: "整款不是<UNK>的那种" reads 整款不是的那种
    summary, lost = normalize_summary("蓝色的连衣裙很清爽，整款不是<UNK>的那种，v领显脸小，棉质面料舒适。")
    assert lost_clauses(summary, lost) == [False, True, False, False]
    assert lost_clauses("显瘦。", [3]) == [True]  # a loss at the very end belongs to the last clause
    damaged = {"content": "类型#裙*颜色#蓝色*材质#棉*领型#v领*裙长#连衣裙", "summary": summary, "lost": lost}
    train = [*TRAIN, damaged]
    lexicon = value_lexicon(train)
    checks = Checks(value_lexicon=lexicon, checked_keys=("颜色", "材质"), length_bounds=(40, 80))
    found = ClauseBank(train, lexicon).candidates(ROW, checks, neighbours=7)
    assert any("v领显脸小" in text for text in found)  # the same row's whole clauses are used
    assert not any("整款不是的那种" in text for text in found)
    whole = ClauseBank([*TRAIN, {**damaged, "lost": []}], lexicon).candidates(ROW, checks, neighbours=7)
    assert any("整款不是的那种" in text for text in whole)  # what the test above would see without `lost`


def test_the_same_seed_gives_the_same_candidates(bank):
    assert bank.candidates(ROW, CHECKS, 4, seed=3) == ClauseBank(TRAIN, LEXICON).candidates(ROW, CHECKS, 4, seed=3)


def test_a_model_without_training_texts_says_how_to_turn_retrieval_off():
    generator = Generator(model=None, tokenizer=None, generation={"retrieve_edit": {"neighbours": 2}}, checks=CHECKS)
    with pytest.raises(UserError, match="retrieve_edit.neighbours=0"):
        generator.retrieved([ROW])
    assert generator.retrieved([ROW], retrieve_edit={"neighbours": 0}) == [[]]
    with_texts = Generator(None, None, {"retrieve_edit": {"neighbours": 2}}, CHECKS, train_texts=TRAIN)
    assert with_texts.retrieved([ROW]) == [ClauseBank(TRAIN, LEXICON).candidates(ROW, CHECKS, 2)]


def test_the_ablation_pools_keep_the_model_and_the_edited_candidates_apart():
    found, edited = [["样本一", "样本二", "贪心"]], [["编辑一"]]
    assert ablation_pool(found, edited, {"candidates": "generated"}, True)[0] == found
    assert ablation_pool(found, edited, {"candidates": "retrieved"}, True)[0] == edited
    assert ablation_pool(found, edited, {}, True)[0] == [["样本一", "样本二", "贪心", "编辑一"]]
    assert ablation_pool(found, edited, {"candidates": "greedy"}, True)[0] == [["贪心"]]
    assert ablation_pool(found, [[]], {"candidates": "retrieved"}, True)[0] is None


def test_a_clause_that_leaned_on_a_dropped_one_goes_with_it():
    from reasongen.adgen.retrieve_edit import dangling_dropped

    # found by reading: the edit dropped 西装斑驳领… and left 也带来了… and 让整款上衣… with no subject
    original = ["西装斑驳领，", "也带来了一丝复古的气息，", "让整款上衣吸睛，", "单排扣很利落。"]
    kept = ["也带来了一丝复古的气息", "让整款上衣吸睛", "单排扣很利落"]
    assert dangling_dropped(original, kept) == ["单排扣很利落。"]
    # a clause that leans on one that stays stays; so does a clause that leans on nothing
    both = ["这款裙子很美，", "也很百搭。"]
    assert dangling_dropped(both, ["这款裙子很美", "也很百搭"]) == both
    assert dangling_dropped(["凸显气质，", "很百搭。"], ["凸显气质", "很百搭"]) == ["凸显气质，", "很百搭。"]
    # kept is what repair left, in order: a repeated clause that repair dropped the second time stays dropped
    assert dangling_dropped(["很百搭，", "很百搭。"], ["很百搭"]) == ["很百搭，"]

    train = [*TRAIN, {"content": "类型#裙*颜色#红色*裙长#连衣裙",
                      "summary": "红色的连衣裙很热情，也带来了一丝复古的气息，v领修饰脸型。"}]
    lexicon = value_lexicon(train)
    checks = Checks(value_lexicon=lexicon, checked_keys=("颜色", "材质"), length_bounds=(40, 80))
    found = ClauseBank(train, lexicon).candidates(ROW, checks, neighbours=7)
    assert any("v领修饰脸型" in text for text in found)  # the red product's text was edited, not skipped
    assert not any("也带来了一丝复古的气息" in text for text in found)


def test_clauses_with_another_products_own_details_are_found():
    from reasongen.adgen.retrieve_edit import peculiar_clauses

    # found by reading: a borrowed 胸前笑脸上的亮片 brought a smiley that the input never had
    parts = ["v领修饰脸型，", "很百搭。"] * 5 + ["胸前笑脸的v领。"]
    per_text = [2] * 5 + [1]
    assert peculiar_clauses(parts, per_text, ["v领"]) == [False] * 10 + [True]
    # a rare word that is part of an attribute value is the value, not a detail
    assert peculiar_clauses(parts, per_text, ["v领", "胸前笑脸"]) == [False] * 11
