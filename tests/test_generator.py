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
