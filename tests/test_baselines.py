"""The model-free baselines: retrieval picks the max-overlap training row; the template names every value."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_EVALUATE_OFFLINE", "1")

import pytest  # noqa: E402

from reasongen import metrics  # noqa: E402
from reasongen.adgen.baselines import RetrievalBaseline, TemplateBaseline, predict_all  # noqa: E402

TRAIN = [
    {"id": "A", "content": "类型#裙*颜色#红色", "summary": "A 的文案"},
    {"id": "B", "content": "类型#裙*颜色#蓝色*材质#棉", "summary": "B 的文案"},
    {"id": "C", "content": "类型#裙*颜色#蓝色", "summary": "C 的文案"},
    {"id": "D", "content": "颜色#蓝色*类型#裙", "summary": "D 的文案"},  # same pairs as C, later
]

# Contents that exercise many keys, repeated values and several 类型-less rows.
TEMPLATE_CONTENTS = [
    "类型#裙*版型#显瘦*风格#复古*图案#复古*图案#线条*颜色#黑色*材质#雪纺*裙长#连衣裙*裙领型#v领",
    "类型#裤*版型#宽松*风格#性感*图案#线条*裤型#阔腿裤",
    "类型#上衣*材质#棉*颜色#白色*衣样式#衬衫*衣领型#翻领*衣袖型#落肩袖*衣门襟#单排扣",
    "颜色#纯色*图案#纯色*裙下摆#荷叶边*裙腰型#高腰",
]


def test_retrieval_picks_the_max_overlap_row():
    # query {裙, 蓝色, 雪纺}: Jaccard A = 1/4, B = 2/4, C = 2/3, D = 2/3 -> C (the earlier of the tie)
    baseline = RetrievalBaseline(TRAIN)
    assert baseline.predict({"content": "类型#裙*颜色#蓝色*材质#雪纺"}) == "C 的文案"


def test_retrieval_never_returns_the_row_itself():
    baseline = RetrievalBaseline(TRAIN)
    assert baseline.predict({"id": "C", "content": "类型#裙*颜色#蓝色"}) == "D 的文案"
    assert baseline.predict({"id": "X", "content": "类型#裙*颜色#蓝色"}) == "C 的文案"


def test_retrieval_without_any_overlap_takes_the_earliest_row():
    baseline = RetrievalBaseline(TRAIN)
    assert baseline.predict({"content": "类型#鞋*颜色#绿色"}) == "A 的文案"
    assert baseline.predict({"id": "A", "content": "类型#鞋"}) == "B 的文案"


def test_template_names_every_value_and_breaks_no_rule():
    rows = [{"content": content} for content in TEMPLATE_CONTENTS]
    texts = predict_all(TemplateBaseline(), rows)
    assert texts == predict_all(TemplateBaseline(), rows)  # deterministic
    faith = metrics.load("faithfulness").compute(predictions=texts, contents=TEMPLATE_CONTENTS)
    assert faith["coverage"] == 100.0
    assert metrics.load("ad_law").compute(predictions=texts)["violation_rate"] == 0.0
    assert texts[0].startswith("这款裙，") and texts[0].count("复古") == 1
    assert texts[3].startswith("这款单品，")


def test_retrieval_needs_training_rows():
    with pytest.raises(ValueError, match="at least one"):
        RetrievalBaseline([])
