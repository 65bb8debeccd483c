"""Candidate selection (MBR + rules) and repair, checked with the project's own metric modules."""

from __future__ import annotations

import os

import pytest

from reasongen import metrics
from reasongen.adgen.selection import Checks, choose, clauses, consensus, evidence_scores, faults, repair, select
from reasongen.metrics.text_checks import sentence_bleu4, sentence_rouge_l
from reasongen.modeling.generation import generate_candidates, generate_texts
from reasongen.text.attributes import parse_content

KEYS = ["颜色", "材质"]  # evaluate.hallucination_keys of the default config

LEXICON = {"颜色": ["红色", "蓝色", "黑色"], "材质": ["棉", "牛仔布", "雪纺"]}
CHECKS = Checks(value_lexicon=LEXICON, checked_keys=("颜色", "材质"), length_bounds=(10, 20))
ROW = {"content": "类型#裙*颜色#蓝色*材质#雪纺", "aspect": "显瘦", "length_bucket": "short"}
ALL_RULES = {"coverage": 1.0, "hallucination": 10.0, "violation": 10.0, "aspect": 1.0, "length": 1.0}
OPTIONS = {"value_lexicon": LEXICON, "length_bounds": [10, 20], "hallucination_keys": KEYS}


def test_consensus_is_the_mean_bleu_against_the_others():
    texts = ["蓝色雪纺连衣裙很显瘦", "蓝色雪纺连衣裙很显高", "今天天气不错啊"]
    got = consensus(texts)
    expected_0 = (sentence_bleu4(texts[0], texts[1]) + sentence_bleu4(texts[0], texts[2])) / 2
    assert got[0] == pytest.approx(expected_0)
    assert got[2] < min(got[0], got[1])  # the outlier agrees least
    assert consensus(["一个"]) == [0.0]


def test_the_agreement_adds_rouge_l_times_its_weight():
    texts = ["蓝色雪纺连衣裙很显瘦", "这条连衣裙的雪纺很显瘦", "今天天气不错啊"]
    bleu, both = consensus(texts), consensus(texts, rouge_l=2.0)
    rouge_0 = (sentence_rouge_l(texts[0], texts[1]) + sentence_rouge_l(texts[0], texts[2])) / 2
    assert rouge_0 > 0
    assert both[0] == pytest.approx(bleu[0] + 2.0 * rouge_0)
    human = ["蓝色雪纺裙，清新显瘦。", "这条蓝色雪纺裙很显瘦。", "雪纺面料轻盈飘逸。"]
    scores = [sentence_bleu4(texts[1], text) + sentence_rouge_l(texts[1], text) for text in human]
    assert evidence_scores(texts, human, rouge_l=1.0)[1] == pytest.approx((sum(scores) - max(scores)) / 2)


def test_the_rouge_l_weight_can_change_the_choice():
    # the first shares more characters in order with the evidence (BLEU-4), the second more words (ROUGE-L)
    rows = [{"content": "类型#裙*颜色#蓝色"}]
    human = [["这条裙子的颜色是蓝色，穿上很显瘦。", "裙子的颜色是蓝色，穿上它很显瘦。", "裙子颜色是蓝色，很显瘦。"]]
    pool = [["裙子的颜色色是蓝色色，显瘦。", "裙子 颜色 是 蓝色 ，穿上 很 显瘦。"]]
    weights = {"evidence": 1.0}
    scores = {rouge: evidence_scores(pool[0], human[0], rouge) for rouge in (0.0, 5.0)}
    assert scores[0.0][0] > scores[0.0][1] and scores[5.0][1] > scores[5.0][0], scores
    assert choose(pool, rows, CHECKS, weights, {}, evidence=lambda: human) == [pool[0][0]]
    assert choose(pool, rows, CHECKS, {**weights, "rouge_l": 5.0}, {}, evidence=lambda: human) == [pool[0][1]]


def test_select_without_weights_is_plain_decoding():
    assert select(["第一个", "第二个"], ROW, CHECKS, {}) == "第一个"


def test_select_follows_the_rules_before_agreement():
    clean = "蓝色雪纺裙，显瘦。"
    candidates = ["红色雪纺裙，显瘦。", "蓝色雪纺裙，最显瘦。", clean, "蓝色裙子，很好看的一条裙子呢。"]
    assert select(candidates, ROW, CHECKS, ALL_RULES) == clean
    # with MBR alone, the most typical text wins, whatever it breaks
    typical = ["蓝色雪纺裙子最好", "蓝色雪纺裙子最好看", "蓝色雪纺裙子最美", "黄"]
    assert select(typical, ROW, CHECKS, {"mbr": 1.0}) in typical[:3]
    assert select(typical, ROW, CHECKS, {"mbr": 1.0}) != "黄"


def test_clauses_rejoin_to_the_text():
    text = "这条裙子很美，适合夏天！穿上显瘦~"
    assert "".join(clauses(text)) == text
    assert clauses(text) == ["这条裙子很美，", "适合夏天！", "穿上显瘦~"]


DROP_ALL = {"drop_violations": True, "drop_hallucinations": True, "drop_other_garments": True, "drop_repeats": True,
            "drop_list_endings": True}


def test_repair_drops_what_breaks_a_rule_and_never_adds_text():
    text = "这款裙子是最好的选择，红色很亮眼，穿着舒适。"
    fixed = repair(text, ROW, CHECKS, DROP_ALL)
    scores = metrics.score([fixed], [{**ROW, "summary": text}], **OPTIONS)
    assert scores["violation_rate"] == 0 and scores["hallucination_rate"] == 0
    before = metrics.score([text], [{**ROW, "summary": text}], **OPTIONS)
    assert before["violation_rate"] == 100 and before["hallucination_rate"] == 100  # the repair did the work
    assert fixed == "穿着舒适。"  # what is left is the text's own clause; no value phrase is appended
    assert set(fixed) <= set(text)


def test_repair_drops_repeats_list_endings_and_other_garments():
    looping = "这款蓝色雪纺裙，穿着舒适，穿着舒适，穿着舒适。"
    assert repair(looping, ROW, CHECKS, {"drop_repeats": True}) == "这款蓝色雪纺裙，穿着舒适。"
    listed = "这款蓝色雪纺裙清新显瘦，蓝色配色，雪纺面料，棉材质。"
    fixed = repair(listed, ROW, CHECKS, {"drop_list_endings": True})
    assert fixed == "这款蓝色雪纺裙清新显瘦。"
    assert not metrics.score([fixed], [{**ROW, "summary": fixed}], **OPTIONS)["list_ending_rate"]
    trousers = {"content": "类型#裤*裤型#阔腿裤*颜色#蓝色"}
    other = "这款蓝色阔腿裤垂感很好，这款牛仔裤很百搭，搭配短裤也好看。"
    assert repair(other, trousers, CHECKS, {"drop_other_garments": True}) == "这款蓝色阔腿裤垂感很好，搭配短裤也好看。"


def test_repair_leaves_a_good_text_alone_and_each_option_does_only_its_part():
    good = "这款蓝色雪纺裙，清爽显瘦。"
    assert repair(good, ROW, CHECKS, DROP_ALL) == good
    bad = "蓝色雪纺裙，最好看。"
    assert repair(bad, ROW, CHECKS, {"drop_violations": False}) == bad
    assert "最" not in repair(bad, ROW, CHECKS, {"drop_violations": True})
    assert repair("最好看，最美。", ROW, CHECKS, DROP_ALL) == "最好看，最美。"  # nothing left: kept for selection


def test_choose_repairs_then_selects_per_row():
    rows = [ROW, {"content": "类型#裤*颜色#黑色"}]
    candidates = [["红色雪纺裙。", "蓝色雪纺裙，显瘦。"], ["这条裤子很好，这条裤子很好。", "黑色的裤子很好。"]]
    texts = choose(candidates, rows, CHECKS, ALL_RULES, {"drop_repeats": True})
    # red contradicts; the first trousers text names no value
    assert texts == ["蓝色雪纺裙，显瘦。", "黑色的裤子很好。"]


def test_generate_candidates_samples_n_then_greedy(bpe_tokenizer, tiny_rows, tiny_model):
    model = tiny_model("gpt2", bpe_tokenizer).eval()
    prompts = [f"商品:{row['content']} | 文案:" for row in tiny_rows[:5]]
    settings = {"max_new_tokens": 8, "do_sample": True, "top_p": 0.9, "temperature": 1.0, "seed": 3,
                "batch_size": 8, "num_candidates": 3, "include_greedy": True}
    found = generate_candidates(model, bpe_tokenizer, prompts, settings, progress=False)
    assert [len(texts) for texts in found] == [4] * len(prompts)
    greedy = generate_texts(model, bpe_tokenizer, prompts, {**settings, "do_sample": False}, progress=False)
    assert [texts[-1] for texts in found] == greedy
    assert any(len(set(texts[:3])) > 1 for texts in found)  # the samples differ: they are samples
    again = generate_candidates(model, bpe_tokenizer, prompts, settings, progress=False)
    assert again == found  # seeded


def test_fit_length_drops_trailing_clauses_that_carry_no_value():
    text = "蓝色雪纺裙，很好看，非常漂亮，适合夏天。"
    fitted = repair(text, ROW, CHECKS, {"fit_length": True})  # short: at most 10 characters
    assert len(fitted) <= CHECKS.length_bounds[0] < len(text)
    assert fitted.startswith("蓝色雪纺裙") and fitted.endswith("。")
    # a clause naming an input value or the requested aspect is never dropped, even over the bound
    keep = "这条裙子很好看，颜色是蓝色，面料是雪纺，穿上显瘦。"
    assert repair(keep, ROW, CHECKS, {"fit_length": True}) == keep
    assert repair(text, {**ROW, "length_bucket": "long"}, CHECKS, {"fit_length": True}) == text


def test_choose_judges_candidates_after_their_repair():
    options = {"drop_violations": True, "drop_hallucinations": True, "complete_coverage": True, "fit_length": True}
    candidates = [["红色的裙子，漂亮", "蓝色雪纺裙，显瘦"]]
    # repaired, the first names blue and chiffon in added phrases and runs past the short bucket; the second fits
    texts = choose(candidates, [ROW], CHECKS, ALL_RULES, options)
    scores = metrics.score(texts, [{**ROW, "summary": "蓝色雪纺裙"}], **OPTIONS)
    assert scores["length_accuracy"] == 100 and scores["coverage"] == 100 and scores["hallucination_rate"] == 0
    assert texts == [repair("蓝色雪纺裙，显瘦", ROW, CHECKS, options)]


def test_fault_weights_prefer_the_text_a_reader_would_publish():
    repeated, varied = "穿着舒适，穿着舒适，穿着舒适。", "穿着舒适，版型显瘦，颜色清新。"
    assert faults(repeated, [], CHECKS)["repetition"] > 0 == faults(varied, [], CHECKS)["repetition"]
    assert select([repeated, varied], {"content": "类型#裙"}, CHECKS, {"repetition": 1.0}) == varied
    listed = "蓝色雪纺裙，蓝色配色，雪纺面料，棉材质。"
    prose = "蓝色雪纺裙，轻盈透气，穿着显瘦。"
    assert select([listed, prose], ROW, CHECKS, {"list_ending": 1.0}) == prose
    assert select([listed, prose], ROW, CHECKS, {}) == listed  # weights off: the first candidate


def test_repair_drops_design_details_that_name_no_input_value_and_other_products():
    text = "这款蓝色雪纺裙很清新，可爱的小星星装饰，雪纺面料轻盈，宝宝穿着很舒适，搭配细跟鞋更优雅，上身显瘦。"
    fixed = repair(text, ROW, CHECKS, {"drop_unnamed_details": True})
    # the invented star trim, the child and the shoes go; a detail clause about the input's own 雪纺 stays
    assert fixed == "这款蓝色雪纺裙很清新，雪纺面料轻盈，上身显瘦。"
    assert repair(text, ROW, CHECKS, {}) == text


def test_repair_drops_clauses_cut_off():
    text = "这款蓝色雪纺裙很清新，肩带各有两个纽扣和，上身显瘦。"
    assert repair(text, ROW, CHECKS, {"drop_cut_off": True}) == "这款蓝色雪纺裙很清新，上身显瘦。"
    assert faults(text, parse_content(ROW["content"]), CHECKS)["cut_off"] == 1


def test_reuse_steers_later_rows_away_from_what_earlier_rows_said():
    rows = [{"content": "类型#裙*颜色#蓝色"}] * 3
    pool = [["蓝色的裙子，穿着舒适。", "蓝色的裙子，气质优雅。", "这条蓝色裙子，百搭好看。"]] * 3
    plain = choose(pool, rows, CHECKS, {"coverage": 1.0}, {})
    assert plain == [pool[0][0]] * 3  # without reuse, every identical row gets the same text
    varied = choose(pool, rows, CHECKS, {"coverage": 1.0, "reuse": 1.0}, {})
    assert varied[0] == pool[0][0] and len(set(varied)) == 3
    assert varied[1] == pool[0][2]  # shares no clause with the first; the second candidate repeats 蓝色的裙子


def test_the_model_scores_only_the_shortlist():
    rows = [{"content": "类型#裙*颜色#蓝色"}]
    pool = [["蓝色的裙子，穿着舒适。", "一条裙子。", "蓝色的裙子，气质优雅。"]]  # the middle one leaves out 蓝色
    asked = []

    def likelihoods(_, pools):  # the model would love the middle one
        asked.append(pools)
        return [[0.0 if text == "一条裙子。" else -5.0 for text in found] for found in pools]

    weights = {"coverage": 1.0, "likelihood": 10.0}
    assert choose(pool, rows, CHECKS, weights, {}, likelihoods) == [pool[0][1]]
    assert asked.pop() == pool  # no shortlist: every candidate is scored
    assert choose(pool, rows, CHECKS, {**weights, "shortlist": 2}, {}, likelihoods) == [pool[0][0]]
    assert asked.pop() == [[pool[0][0], pool[0][2]]]  # the two best by coverage, in their order


def test_a_candidate_off_the_shortlist_counts_as_no_likelier_than_the_least_likely_scored():
    rows = [{"content": "类型#裙*颜色#蓝色"}] * 2
    pool = [["蓝色的裙子，穿着舒适。", "蓝色的裙子，气质优雅。", "这条蓝色裙子，百搭好看。"]] * 2
    asked = []

    def likelihoods(_, pools):
        asked.append(pools)
        return [[-1.0] * len(found) for found in pools]

    weights = {"coverage": 1.0, "likelihood": 1.0, "reuse": 5.0, "shortlist": 1}
    chosen = choose(pool, rows, CHECKS, weights, {}, likelihoods)
    assert asked.pop() == [[pool[0][0]]] * 2  # the model scored one candidate a row
    # the second row's shortlisted text was said already: reuse turns the choice to one the model did not score
    assert chosen == [pool[0][0], pool[0][2]]


def test_evidence_is_the_mean_bleu_against_human_texts_without_the_best_match():
    human = ["蓝色雪纺裙，清新显瘦。", "这条蓝色雪纺裙很显瘦。", "雪纺面料轻盈飘逸。"]
    candidates = [human[0], "蓝色雪纺裙，清新又显瘦。", "今天天气不错啊"]
    got = evidence_scores(candidates, human)
    own = sorted(sentence_bleu4(candidates[0], text) for text in human)
    assert got[0] == pytest.approx(sum(own[:-1]) / 2)  # its own source (BLEU 1) is left out
    assert got[2] < min(got[:2])  # nothing like what the copywriters wrote
    assert evidence_scores(candidates, human[:1]) == [0.0] * 3  # too little evidence to leave one out


def test_the_evidence_weight_picks_the_candidate_closest_to_what_copywriters_wrote():
    rows = [{"content": "类型#裙*颜色#蓝色"}]
    pool = [["蓝色的裙子，好看的裙子。", "蓝色的裙子，清新又显瘦。"]]
    human = [["这条蓝色的裙子清新显瘦。", "蓝色的裙子，清新又显瘦，很百搭。", "一条清新显瘦的蓝色裙子。"]]
    asked = []

    def evidence():
        asked.append(True)
        return human

    assert choose(pool, rows, CHECKS, {"coverage": 1.0}, {}, evidence=evidence) == [pool[0][0]]
    assert not asked  # weight 0: the neighbours are not even looked up
    assert choose(pool, rows, CHECKS, {"coverage": 1.0, "evidence": 1.0}, {}, evidence=evidence) == [pool[0][1]]


def test_choose_over_several_processes_chooses_what_one_process_chooses(monkeypatch):
    from reasongen import processes

    colours = LEXICON["颜色"]
    rows = [{"content": f"类型#裙*颜色#{colours[i % 3]}"} for i in range(3 * processes.MIN_ITEMS_PER_WORKER)]
    pool = [[f"{colours[(i + k) % 3]}的裙子，穿着舒适{'' if k else '，最好看'}。" for k in range(3)]
            + [f"{colours[i % 3]}的裙子，气质优雅，第{i}款。"] for i in range(len(rows))]
    weights = {**ALL_RULES, "mbr": 1.0, "reuse": 1.0}
    monkeypatch.setenv("REASONGEN_THREADS", "1")
    one = choose(pool, rows, CHECKS, weights, DROP_ALL)
    monkeypatch.setenv("REASONGEN_THREADS", "3")
    assert set(processes.fork_map(_pid, rows)) - {os.getpid()}  # rows this many go to forked workers
    assert choose(pool, rows, CHECKS, weights, DROP_ALL) == one
    assert len(set(one)) > 3  # a real choice per row (repair, rules, reuse), not one text


def _pid(_: object) -> int:
    return os.getpid()


def test_the_models_own_candidates_vote_but_are_not_published_unless_asked():
    rows = [{"content": "类型#裙*颜色#蓝色"}]
    best = "蓝色的裙子，清新显瘦。"
    pool = [[best, best, "这条蓝色裙子清新。", "蓝色的裙子，清新又显瘦。"]]  # two model texts first, two edited
    weights = {"coverage": 1.0, "mbr": 1.0, "likelihood": 1.0}
    asked = []

    def likelihoods(_, pools):
        asked.append(pools)
        return [[0.0] * len(found) for found in pools]

    assert choose(pool, rows, CHECKS, weights, {}, likelihoods, voters=[2]) == [best]  # publish_samples: default
    published = choose(pool, rows, CHECKS, {**weights, "publish_samples": False}, {}, likelihoods, voters=[2])
    # not a model text, and the one its two votes agree with most (the other edited text shares less with them)
    assert published == [pool[0][3]]
    assert asked.pop() == [pool[0][2:]]  # the model scores only what may be published
    without_votes = choose([pool[0][2:]], rows, CHECKS, {**weights, "publish_samples": False}, {}, likelihoods)
    assert consensus(pool[0])[3] > consensus(pool[0])[2] and without_votes == [pool[0][2]]  # the votes decided
    only_model = choose([pool[0][:2]], rows, CHECKS, {**weights, "publish_samples": False}, {}, voters=[2])
    assert only_model == [best]  # nothing else to publish: the model's text
