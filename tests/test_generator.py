"""The Task A generator's decoding constraints, wired from the config through generation on a tiny model: pushed
towards a value the input contradicts and towards an advertising-law word, the model writes them without the
constraints and never with them; the steering bonus makes it name an input value it otherwise would not."""

from __future__ import annotations

import pytest

from reasongen.adgen.generator import Generator
from reasongen.adgen.selection import Checks
from reasongen.modeling.constraints import MentionBias, TokenIndex

LEXICON = {"类型": ["裙", "裤"], "颜色": ["红色", "蓝色", "白色", "黑色"], "裙领型": ["圆领", "v领"]}
ROWS = [{"content": "类型#裙*颜色#蓝色"}, {"content": "类型#裤*颜色#白色"}]
PUSHED = ["红色", "第一"]  # red contradicts both inputs' colour; 第一 is on the advertising-law list
SAMPLING = {"max_new_tokens": 10, "do_sample": True, "top_p": 1.0, "temperature": 1.0, "top_k": 0, "seed": 1,
            "batch_size": 32, "num_candidates": 8, "include_greedy": False}
OFF = {"mention_bonus": 0.0, "ngram_block": 0, "ban_contradictions": False, "ban_unlisted": False, "ban_wording": False}


@pytest.fixture
def generator(tiny_model, bpe_tokenizer, monkeypatch):
    """A generator whose every decoding is first pushed hard towards PUSHED (a processor placed before the
    configured constraints, as a strongly biased model would be)."""
    found = Generator(tiny_model("gpt2", bpe_tokenizer).eval(), bpe_tokenizer, SAMPLING,
                      Checks(LEXICON, ("颜色",), (100, 125)))
    configured = Generator.constraints

    def pushed(self, rows, spec):
        build = configured(self, rows, spec)
        index = TokenIndex.of(self.tokenizer)
        push = list(PUSHED)  # read at call time: a test may push other strings
        return lambda batch: [MentionBias(index, per_prompt=[push] * len(batch), bonus=30.0),
                              *(build(batch) if build else [])]

    monkeypatch.setattr(Generator, "constraints", pushed)
    return found


def texts(generator: Generator, constraints: dict) -> list[str]:
    return [text for found in generator.candidates(ROWS, progress=False, constraints=constraints) for text in found]


def test_without_constraints_the_pushed_model_writes_the_banned_strings(generator):
    written = texts(generator, OFF)
    assert any("红色" in text for text in written) and any("第一" in text for text in written)


def test_banned_values_and_words_are_never_produced(generator):
    written = texts(generator, {**OFF, "ban_contradictions": True, "ban_wording": True})
    assert len(written) == 16 and all(written)
    assert not any("红色" in text or "第一" in text for text in written)


def test_only_the_contradicting_value_is_banned_not_the_inputs_own(generator, monkeypatch):
    # pushed towards 蓝色: row 0 gives 蓝色 (allowed), row 1 gives 白色 (蓝色 contradicts it)
    monkeypatch.setattr(__import__(__name__), "PUSHED", ["蓝色"])
    own, other = generator.candidates(ROWS, progress=False, constraints={**OFF, "ban_contradictions": True})
    assert any("蓝色" in text for text in own)
    assert not any("蓝色" in text for text in other)


def test_a_detail_the_input_never_gave_is_not_produced(generator, monkeypatch):
    # no row lists a collar: pushed towards 圆领, the model writes it unless ban_unlisted keeps it out
    monkeypatch.setattr(__import__(__name__), "PUSHED", ["圆领"])
    assert any("圆领" in text for text in texts(generator, OFF))
    assert not any("圆领" in text for text in texts(generator, {**OFF, "ban_unlisted": True}))


def test_likelihoods_are_the_models_own_per_text_loss(generator):
    """Batched, padded and cached, each candidate's likelihood is minus the loss the model reports for that one
    example alone (mean over the text's tokens and its end)."""
    import torch

    from reasongen.adgen.prompts import PROMPT_END, prompt_for_row
    from reasongen.modeling.encoding import encode_example

    pools = [["蓝色的裙子", "一条裙", "裙裙裙裙裙裙裙裙"], ["白色裤子很好看，舒适"]]
    generator.generation["max_new_tokens"] = 256  # a text is scored as far as the model may write: all of these
    found = generator.likelihoods(ROWS, pools, use_controls=False)
    assert [len(values) for values in found] == [3, 1]
    for row, texts, values in zip(ROWS, pools, found, strict=True):
        for text, value in zip(texts, values, strict=True):
            example = encode_example(generator.tokenizer, prompt_for_row(row, False), text, 10**9, 256, False,
                                     PROMPT_END)
            with torch.inference_mode():
                loss = generator.model(input_ids=torch.tensor([example["input_ids"]]),
                                       labels=torch.tensor([example["labels"]])).loss
            assert value == pytest.approx(-loss.item(), abs=1e-3)
    assert len({value for values in found for value in values}) == 4  # the texts differ, so do their scores
    assert generator.likelihoods(ROWS, pools, use_controls=False) == found  # from the cache, the same


def test_the_likelihood_weight_picks_the_text_the_model_finds_likelier(generator):
    row, texts = [ROWS[0]], [["裙裙裙裙裙裙裙裙", "蓝色的裙子"]]
    likely = max(texts[0], key=lambda text: generator.likelihoods(row, [[text]], False)[0][0])
    for weight, expected in ((0.0, texts[0][0]), (100.0, likely)):  # weight 0: ties go to the first candidate
        chosen = generator.choose(row, texts, use_controls=False, selection={"likelihood": weight}, repair={})
        assert chosen == [expected]


def test_neighbour_texts_are_the_summaries_of_the_most_similar_training_products(generator):
    generator.train_texts = [{"content": "类型#裙*颜色#蓝色*风格#清新", "summary": "清新的蓝色裙子。"},
                             {"content": "类型#裤*颜色#白色", "summary": "白色的裤子。"},
                             {"content": "类型#裙*颜色#红色", "summary": "红色的裙子。"}]
    # best overlap first; a product sharing no attribute with the input is no evidence about it
    assert generator.neighbour_texts(ROWS, 2) == [["清新的蓝色裙子。", "红色的裙子。"], ["白色的裤子。"]]
    assert generator.neighbour_texts(ROWS, 0) == [[], []]
