"""The local evaluate metrics against hand-worked values and against the reference libraries called directly."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_EVALUATE_OFFLINE", "1")

import jieba  # noqa: E402
import pytest  # noqa: E402
from nltk.translate.bleu_score import SmoothingFunction, sentence_bleu  # noqa: E402
from rouge_chinese import Rouge  # noqa: E402

from reasongen import metrics  # noqa: E402
from reasongen.text.attributes import value_lexicon  # noqa: E402

KEYS = ["颜色", "材质"]  # evaluate.hallucination_keys of the default config

# Real-looking AdvertiseGen texts: (prediction, reference).
PAIRS = [
    (
        "这款连衣裙采用雪纺面料，轻盈飘逸，v领设计修饰脸型，收腰版型显瘦又有气质。",
        "雪纺面料的连衣裙，上身轻盈飘逸，精致的v领设计，巧妙修饰脸型，收腰的设计勾勒出纤细的腰身。",
    ),
    (
        "宽松的阔腿裤，遮肉显瘦，休闲百搭。",
        "宽松的阔腿裤这两年真的吸粉不少，明星时尚达人的心头爱。毕竟好穿时尚，谁都能穿出腿长2米的效果。",
    ),
    ("简约的白色衬衫，纯棉面料亲肤透气。", "一款简约的衬衫，白色百搭，棉质面料柔软亲肤，日常通勤都很合适。"),
]

LEXICON = {"颜色": ["红", "白色", "深蓝色", "蓝色"], "材质": ["棉", "蕾丝", "雪纺"], "风格": ["复古", "简约"]}
OPTIONS = {"value_lexicon": LEXICON, "length_bounds": [100, 125], "hallucination_keys": KEYS}


def compute(name: str, **inputs):
    return metrics.load(name).compute(**inputs)


# --- BLEU-4 on characters ---------------------------------------------------------------


def test_bleu_matches_nltk_called_directly():
    preds, refs = zip(*PAIRS, strict=True)
    expected = [sentence_bleu([list(r)], list(p), smoothing_function=SmoothingFunction().method3) for p, r in PAIRS]
    got = compute("bleu_char", predictions=list(preds), references=list(refs))["bleu4"]
    assert got == pytest.approx(100 * sum(expected) / len(expected))


def test_the_written_out_bleu_is_nltks_on_random_texts():
    import random

    from reasongen.metrics.text_checks import sentence_bleu4, sentence_bleu4_both_ways

    rng = random.Random(0)
    alphabet = "红色连衣裙雪纺面料显瘦，。"  # few characters: many shared n-grams, and orders without a match
    for _ in range(500):
        pred = "".join(rng.choices(alphabet, k=rng.randint(1, 30)))
        ref = "".join(rng.choices(alphabet, k=rng.randint(1, 30)))
        expected = sentence_bleu([list(ref)], list(pred), smoothing_function=SmoothingFunction().method3)
        assert sentence_bleu4(pred, ref) == pytest.approx(expected, rel=1e-12, abs=1e-15)
        # MBR's pair: both directions from one count of the shared n-grams
        assert sentence_bleu4_both_ways(pred, ref) == (sentence_bleu4(pred, ref), sentence_bleu4(ref, pred))


def test_bleu_hand_worked():
    # identical: 100. "红色连衣服" vs "红色连衣裙": n-gram precisions 4/5, 3/4, 2/3, 1/2, no brevity
    # penalty -> (4/5 * 3/4 * 2/3 * 1/2) ** (1/4) = 0.2 ** 0.25 = 0.66874. Empty prediction: 0.
    got = compute(
        "bleu_char", predictions=["红色连衣裙", "红色连衣服", ""], references=["红色连衣裙", "红色连衣裙", "红色连衣裙"]
    )
    assert got["bleu4"] == pytest.approx((100 + 100 * 0.2**0.25 + 0) / 3)


def test_bleu_empty_prediction_is_zero():
    assert compute("bleu_char", predictions=[""], references=[PAIRS[0][1]])["bleu4"] == 0.0


# --- ROUGE on jieba words ---------------------------------------------------------------


def test_rouge_matches_rouge_chinese_called_directly():
    rouge = Rouge()
    expected = {"rouge1": 0.0, "rouge2": 0.0, "rougeL": 0.0}
    for pred, ref in PAIRS:
        scores = rouge.get_scores(" ".join(jieba.cut(pred)), " ".join(jieba.cut(ref)))[0]
        for name, key in (("rouge1", "rouge-1"), ("rouge2", "rouge-2"), ("rougeL", "rouge-l")):
            expected[name] += 100 * scores[key]["f"] / len(PAIRS)
    preds, refs = zip(*PAIRS, strict=True)
    got = compute("rouge_jieba", predictions=list(preds), references=list(refs))
    assert got == pytest.approx(expected)


def test_the_written_out_rouge_l_is_rouge_chineses_on_random_texts():
    import random

    from reasongen.metrics.text_checks import sentence_rouge_l

    rng = random.Random(0)
    # few words, said again and again (an LCS has many choices), punctuation, a space and Latin letters
    words = ["红色", "连衣裙", "雪纺", "面料", "显瘦", "的", "，", "。", "v领", " ", "polo衫", "设计"]
    for _ in range(300):
        pred = "".join(rng.choices(words, k=rng.randint(1, 40)))
        ref = "".join(rng.choices(words, k=rng.randint(1, 40)))
        if not pred.strip() or not ref.strip():
            continue
        expected = Rouge().get_scores(" ".join(jieba.cut(pred)), " ".join(jieba.cut(ref)))[0]["rouge-l"]["f"]
        assert sentence_rouge_l(pred, ref) == pytest.approx(expected, rel=1e-12, abs=1e-15)
    assert sentence_rouge_l("", "红色连衣裙") == sentence_rouge_l("红色", " ") == 0.0


def test_rouge_hand_worked_and_empty():
    assert list(jieba.cut("蓝色连衣裙")) == ["蓝色", "连衣裙"]  # the segmentation the numbers below assume
    # "蓝色" vs "蓝色 连衣裙": ROUGE-1 P=1, R=1/2, F=2/3; no bigram in the prediction: ROUGE-2 = 0;
    # LCS = 1 word: ROUGE-L F = 2/3. Second example: empty prediction scores 0 (rouge_chinese would raise).
    got = compute("rouge_jieba", predictions=["蓝色", ""], references=["蓝色连衣裙", "蓝色连衣裙"])
    assert got["rouge1"] == pytest.approx(100 * (2 / 3) / 2, abs=1e-4)
    assert got["rouge2"] == 0.0
    assert got["rougeL"] == pytest.approx(100 * (2 / 3) / 2, abs=1e-4)


# --- diversity ------------------------------------------------------------------------------


def test_diversity_hand_worked():
    # characters 4+3+3 = 10, distinct {好, 看, 吗} = 3 -> 30; bigrams 3+2+2 = 7 (none across texts),
    # distinct {好看, 看好, 看吗} = 3 -> 300/7; distinct texts 2 of 3 -> 66.67.
    got = compute("diversity", predictions=["好看好看", "好看吗", "好看吗"])
    assert got == pytest.approx({"distinct1": 30.0, "distinct2": 300 / 7, "unique_ratio": 200 / 3})


def test_diversity_of_empty_texts_is_zero():
    assert compute("diversity", predictions=["", ""]) == {"distinct1": 0.0, "distinct2": 0.0, "unique_ratio": 50.0}


# --- faithfulness ---------------------------------------------------------------------------

FAITH_CONTENTS = ["类型#裙*颜色#深蓝色*材质#雪纺", "类型#裙*颜色#深蓝色", "类型#裙*颜色#白色*材质#棉"]
FAITH_TEXTS = ["深蓝色雪纺裙", "白色裙子，点缀红色蕾丝，复古简约", "深蓝色纯棉裙"]


def test_faithfulness_hand_worked():
    # 1: all of 裙/深蓝色/雪纺 named -> coverage 1; 深蓝色 is masked, so the 蓝色 inside it is no hallucination.
    # 2: 裙 yes, 深蓝色 no -> 1/2; 颜色 is listed, 白色 is another 颜色 value -> 1 hallucination
    #    (红 is one character: ignored; 蕾丝 is 材质, which this input does not list; 风格 is not checked).
    # 3: 裙 yes, 白色 no, 棉 yes -> 2/3; 深蓝色 is matched first and masked, so 蓝色 inside it is not counted
    #    again -> 1 hallucination. coverage = (1 + 1/2 + 2/3) / 3; 2 of 3 texts hallucinate, 2 values / 3 texts.
    got = compute("faithfulness", predictions=FAITH_TEXTS, contents=FAITH_CONTENTS, value_lexicon=LEXICON,
                  hallucination_keys=KEYS)
    assert got["coverage"] == pytest.approx(100 * (1 + 1 / 2 + 2 / 3) / 3)
    assert got["hallucination_rate"] == pytest.approx(200 / 3)
    assert got["hallucinated_values_per_output"] == pytest.approx(2 / 3)


def test_faithfulness_masks_the_inputs_own_longer_value():
    got = compute("faithfulness", predictions=["深蓝色的裙子"], contents=["类型#裙*颜色#深蓝色"], value_lexicon=LEXICON,
                  hallucination_keys=KEYS)
    assert got == {"coverage": 100.0, "hallucination_rate": 0.0, "hallucinated_values_per_output": 0.0}
    # the other way round the mask is lenient by definition: the input's 蓝色 is masked inside 深蓝色, and a
    # shade of the input's own colour is not counted; a different colour still is.
    got = compute(
        "faithfulness",
        predictions=["深蓝色的裙子", "白色的裙子"],
        contents=["类型#裙*颜色#蓝色"] * 2,
        value_lexicon=LEXICON,
        hallucination_keys=KEYS,
    )
    assert got["hallucination_rate"] == 50.0


def test_faithfulness_keys_and_missing_lexicon():
    wider = compute(
        "faithfulness",
        predictions=FAITH_TEXTS[1:2],
        contents=["类型#裙*颜色#深蓝色*风格#清新"],
        value_lexicon=LEXICON,
        hallucination_keys=["颜色", "风格"],
    )
    assert wider["hallucinated_values_per_output"] == 3  # 白色, 复古, 简约
    bare = compute("faithfulness", predictions=FAITH_TEXTS, contents=FAITH_CONTENTS)
    assert bare["hallucination_rate"] is None and bare["coverage"] == pytest.approx(100 * (1 + 1 / 2 + 2 / 3) / 3)


# --- control --------------------------------------------------------------------------------


def test_control_hand_worked():
    # bounds [5, 10]: "这条裙子显瘦又百搭" has 9 characters -> medium (asked medium: hit);
    # its aspects are 显瘦, 百搭 (asked 显瘦: hit). "穿着很舒服" has 5 -> short (asked long: miss),
    # its aspect is 舒适 (asked 保暖: miss). The third row asks only for a keyword.
    # keywords: 百搭 yes, 气质 no, 时尚 yes -> 2/3.
    got = compute(
        "control",
        predictions=["这条裙子显瘦又百搭", "穿着很舒服", "时尚"],
        aspects=["显瘦", "保暖", ""],
        length_buckets=["medium", "long", ""],
        keywords=[["百搭", "气质"], [], ["时尚"]],
        length_bounds=[5, 10],
    )
    assert got == pytest.approx(
        {
            "aspect_accuracy": 50.0,
            "length_accuracy": 50.0,
            "keyword_recall": 200 / 3,
            "n_aspect_rows": 2,
            "n_length_rows": 2,
            "n_keywords": 3,
        }
    )


def test_control_without_controls_is_none_not_zero():
    got = compute("control", predictions=["随便", "什么"], aspects=["", ""], length_buckets=["", ""], keywords=[[], []])
    assert got["aspect_accuracy"] is None and got["length_accuracy"] is None and got["keyword_recall"] is None
    assert got["n_aspect_rows"] == got["n_length_rows"] == got["n_keywords"] == 0


def test_control_needs_bounds_for_length_rows():
    with pytest.raises(ValueError, match="length_bounds"):
        compute("control", predictions=["短"], aspects=[""], length_buckets=["short"], keywords=[[]])


# --- advertising law ------------------------------------------------------------------------


def test_ad_law_allows_zuijin_and_bans_zuihao():
    # 最近 is everyday wording; 最好 is a superlative (1 hit); 全网第一 breaks two entries.
    got = compute("ad_law", predictions=["最近很火的款式", "这是最好的裙子", "全网第一"])
    assert got == pytest.approx({"violation_rate": 200 / 3, "violations": 3})


# --- the facade -----------------------------------------------------------------------------

ROWS = [
    {
        "id": "L1",
        "content": "类型#裙*颜色#深蓝色*材质#雪纺",
        "summary": "深蓝色雪纺裙，显瘦又百搭。",
        "aspect": "显瘦",
        "length_bucket": "short",
        "keywords": ["百搭"],
    },
    {
        "id": "L2",
        "content": "类型#裙*颜色#白色",
        "summary": "白色的裙子，最近很流行。",
        "aspect": None,
        "length_bucket": "short",
        "keywords": [],
    },
]
SCORE_KEYS = {
    "bleu4", "rouge1", "rouge2", "rougeL", "distinct1", "distinct2", "unique_ratio", "coverage",
    "hallucination_rate", "aspect_accuracy", "length_accuracy", "keyword_recall", "violation_rate", "avg_length", "n",
}  # fmt: skip


def test_value_lexicon_collects_sorted_values_per_key():
    assert value_lexicon(ROWS) == {"类型": ["裙"], "材质": ["雪纺"], "颜色": ["深蓝色", "白色"]}


def test_score_returns_every_metric_flat():
    got = metrics.score(
        ["深蓝色雪纺裙，显瘦。", "白色的裙子，最好看。"], ROWS, **OPTIONS
    )
    assert SCORE_KEYS <= set(got)
    assert got["n"] == 2 and got["avg_length"] == 10.0
    assert got["coverage"] == 100.0 and got["violation_rate"] == 50.0
    assert got["aspect_accuracy"] == 100.0 and got["length_accuracy"] == 100.0 and got["keyword_recall"] == 0.0
    perfect = metrics.score([r["summary"] for r in ROWS], ROWS, **OPTIONS)
    assert perfect["bleu4"] == pytest.approx(100.0) and perfect["rougeL"] == pytest.approx(100.0, abs=1e-4)


def test_score_without_controls_and_length_mismatch():
    got = metrics.score(["a", "b"], ROWS, **OPTIONS, use_controls=False)
    assert got["aspect_accuracy"] is None and got["length_accuracy"] is None and got["keyword_recall"] is None
    with pytest.raises(ValueError, match="1 predictions for 2 rows"):
        metrics.score(["a"], ROWS, **OPTIONS)


def test_score_references_is_the_ceiling_row():
    got = metrics.score_references(ROWS, **OPTIONS)
    assert SCORE_KEYS <= set(got) and got["bleu4"] is None
    assert got["coverage"] == 100.0 and got["violation_rate"] == 0.0 and got["aspect_accuracy"] == 100.0


def test_load_is_cached_and_checks_the_name():
    assert metrics.load("diversity") is metrics.load("diversity")
    with pytest.raises(ValueError, match="unknown metric"):
        metrics.load("bleu")
