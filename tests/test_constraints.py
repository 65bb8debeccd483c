"""Decoding constraints on tiny random models: pushed hard towards a string, the model writes it; with the
processor after the push it never does, whatever the tokenizer (byte-level BPE or one token per character)."""

import re

import pytest
import torch
from transformers import LogitsProcessor, LogitsProcessorList

from reasongen.adgen.prompts import build_prompt
from reasongen.modeling.constraints import (
    CharNgramBlock,
    MentionBias,
    StringBan,
    TokenIndex,
    token_bytes,
)
from reasongen.modeling.encoding import encode_prompt
from reasongen.modeling.generation import left_pad
from reasongen.modeling.text import decode
from reasongen.text.controls import decoder_bans

PROMPTS = [build_prompt("类型#裙*颜色#红色"), build_prompt("类型#裤*颜色#白色")]
TEXTS = ["这款蓝色连衣裙穿着舒适", "国家级的v领polo衫", "最近很火"]
SAMPLES = 12  # per prompt


@pytest.fixture(scope="module")
def char_tokenizer(tmp_path_factory, tiny_rows):
    """One token per character (the project's default kind): a WordPiece vocabulary of the fixture's characters,
    the prompt's and the advertising-law list's."""
    from transformers import BertTokenizerFast

    text = "".join([row["content"] + row["summary"] for row in tiny_rows] + PROMPTS + TEXTS + decoder_bans())
    chars = sorted(set(text.lower()) - {" "})
    chars += [f"##{ch}" for ch in chars if ch.isascii()]  # WordPiece spells a latin word as p ##o ##l ##o
    path = tmp_path_factory.mktemp("chars") / "vocab.txt"
    path.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *chars]) + "\n", encoding="utf-8")
    return BertTokenizerFast(vocab=str(path), bos_token="[CLS]", eos_token="[SEP]")


@pytest.fixture(params=["bpe", "chars"])
def tokenizer(request, bpe_tokenizer, char_tokenizer):
    return bpe_tokenizer if request.param == "bpe" else char_tokenizer


@pytest.fixture
def model(tokenizer, tiny_model):
    return tiny_model("gpt2", tokenizer).eval()


def sample(model, tokenizer, processors: list[LogitsProcessor], max_new_tokens: int = 12) -> list[list[str]]:
    """SAMPLES texts per prompt, sampled with the processors (plain multinomial sampling, seeded)."""
    torch.manual_seed(0)
    pad = tokenizer.pad_token_id
    input_ids, attention_mask = left_pad([encode_prompt(tokenizer, p) for p in PROMPTS], pad, "cpu")
    with torch.inference_mode():
        out = model.generate(input_ids=input_ids, attention_mask=attention_mask, do_sample=True, top_k=0,
                             max_new_tokens=max_new_tokens, num_return_sequences=SAMPLES, pad_token_id=pad,
                             eos_token_id=tokenizer.eos_token_id, logits_processor=LogitsProcessorList(processors))
    texts = [decode(tokenizer, seq[input_ids.shape[1] :]) for seq in out]
    return [texts[i * SAMPLES : (i + 1) * SAMPLES] for i in range(len(PROMPTS))]


def push(index: TokenIndex, text: str) -> MentionBias:
    """Pressure towards text on every row: a bonus no random model resists."""
    return MentionBias(index, per_prompt=[[text]] * len(PROMPTS), bonus=30.0)


# --- the vocabulary as bytes ----------------------------------------------------------------------------------


@pytest.mark.parametrize("text", TEXTS)
def test_token_bytes_spell_the_decoded_text(tokenizer, text):
    units = token_bytes(tokenizer)
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    assert tokenizer.unk_token_id not in ids
    assert b"".join(units[i] for i in ids) == text.encode("utf-8")
    assert all(units[i] == b"" for i in tokenizer.all_special_ids)


def test_byte_level_tokens_may_hold_part_of_a_character(bpe_tokenizer):
    # 国家级 never occurs in the fixture rows: the byte-level BPE spells it with tokens of single bytes
    units = token_bytes(bpe_tokenizer)
    ids = bpe_tokenizer("国家级", add_special_tokens=False)["input_ids"]
    assert len(ids) > 3 and b"".join(units[i] for i in ids) == "国家级".encode()


# --- banned strings -------------------------------------------------------------------------------------------

HAND = [b"", "国".encode(), "家".encode(), "级".encode(), "国家".encode(), "家级".encode(), "级别".encode(),
        "国家级".encode(), "好".encode()]


def test_string_ban_finds_the_tokens_that_complete_a_string():
    ban = StringBan(TokenIndex(HAND), banned=["国家级"])
    ids = lambda text: sorted(set(ban.banned_ids(text.encode(), ban.banned).tolist()))  # noqa: E731
    assert ids("") == [7]  # only the token that holds all of 国家级
    assert ids("这是国") == [5, 7]  # 家级 completes it after 国; 家 alone does not
    assert ids("这是国家") == [3, 6, 7]  # 级 and 级别 complete it
    assert ids("国家级") == [7]  # already written (a string is banned from being completed, not from being there)


def test_string_ban_rows_and_prompts():
    index = TokenIndex(HAND)
    ban = StringBan(index, banned=["好"], per_prompt=[["国家"], []], prompt_length=1)
    input_ids = torch.tensor([[0, 1], [0, 1], [0, 2], [0, 2]])  # two prompts, two rows each; one token written
    scores = ban(input_ids, torch.zeros(4, len(HAND)))
    banned = [set(torch.nonzero(row == -float("inf")).flatten().tolist()) for row in scores]
    assert banned[0] == banned[1] == {2, 4, 5, 7, 8}  # after 国: 家 and 家级 complete 国家; 国家, 国家级 hold it; 好
    assert banned[2] == banned[3] == {8}
    with pytest.raises(ValueError, match="3 rows for 2 prompts"):
        StringBan(index, per_prompt=[[], []])(torch.zeros(3, 2, dtype=torch.long), torch.zeros(3, len(HAND)))


@pytest.mark.parametrize("processor", [
    lambda index: StringBan(index, banned=["好"], prompt_length=1),
    lambda index: CharNgramBlock(index, n=2, prompt_length=1),
    lambda index: MentionBias(index, per_prompt=[["国家"]] * 2, prompt_length=1),
])
def test_a_row_that_has_ended_is_left_alone(processor):
    index = TokenIndex(HAND, ending={0})  # token 0 as eos
    input_ids = torch.tensor([[0, 1, 1, 0], [0, 1, 1, 1]])  # row 0 has ended, row 1 goes on
    scores = processor(index)(input_ids, torch.zeros(2, len(HAND)))
    assert torch.equal(scores[0], torch.zeros(len(HAND)))
    assert not torch.equal(scores[1], torch.zeros(len(HAND)))  # the same processor acts on a live row


def test_decoder_bans_from_the_word_list(tmp_path):
    words = decoder_bans()
    assert "最" in words and "国家级" in words and not any(w.startswith("re:") for w in words)
    path = tmp_path / "words.txt"
    path.write_text("# comment\n第一\nre:最(?![近后])\nre:顶.级\n", encoding="utf-8")
    with pytest.raises(ValueError, match="顶.级"):
        decoder_bans(path)


@pytest.mark.parametrize("banned", ["蓝色", "国家级"])
def test_banned_string_is_never_sampled(model, tokenizer, banned):
    index = TokenIndex.of(tokenizer)
    pushed = sample(model, tokenizer, [push(index, banned)])
    assert all(banned in text for texts in pushed for text in texts)  # the push works: the test can fail
    guarded = sample(model, tokenizer, [push(index, banned), StringBan(index, banned=[banned])])
    assert not any(banned in text for texts in guarded for text in texts)


def test_banned_per_prompt(model, tokenizer):
    index = TokenIndex.of(tokenizer)
    first, second = sample(model, tokenizer, [push(index, "蓝色"), StringBan(index, per_prompt=[["蓝色"], []])])
    assert not any("蓝色" in text for text in first)
    assert all("蓝色" in text for text in second)


# --- character n-gram loops -----------------------------------------------------------------------------------


class Loop(LogitsProcessor):
    """A fixed bonus for two tokens (whole characters) inside a phrase: the model writes them over and over, and
    16 tokens drawn from two cannot avoid repeating a 3-gram."""

    def __init__(self, index: TokenIndex, phrase: str = "版型修身显瘦面料柔软亲肤") -> None:
        data = phrase.encode()
        self.ids = torch.tensor([i for i, unit in enumerate(index.units) if unit and unit in data
                                 and len(unit.decode(errors="ignore").encode()) == len(unit)][:2])
        assert len(self.ids), f"no token of {phrase} in this vocabulary"

    def __call__(self, input_ids, scores):
        scores = scores.clone()
        scores[:, self.ids] += 30.0
        return scores


def repeated_ngrams(text: str, n: int) -> list[str]:
    grams = [text[i : i + n] for i in range(len(text) - n + 1) if not re.search(r"[^\w]", text[i : i + n])]
    return [gram for gram in set(grams) if grams.count(gram) > 1]


def test_char_ngram_block_stops_loops(model, tokenizer):
    index = TokenIndex.of(tokenizer)
    looping = sample(model, tokenizer, [Loop(index)], max_new_tokens=16)
    assert all(repeated_ngrams(text, 3) for texts in looping for text in texts)
    blocked = sample(model, tokenizer, [Loop(index), CharNgramBlock(index, n=3)], max_new_tokens=16)
    assert not any(repeated_ngrams(text, 3) for texts in blocked for text in texts)


def test_char_ngram_block_needs_two_characters():
    with pytest.raises(ValueError, match="n=1"):
        CharNgramBlock(TokenIndex(HAND), n=1)


# --- mention bias ---------------------------------------------------------------------------------------------


def test_mention_bias_pulls_towards_missing_values_only():
    index = TokenIndex(HAND)
    bias = MentionBias(index, per_prompt=[["国家级", "好"]], bonus=2.0, prompt_length=1)
    scores = bias(torch.tensor([[0, 8]]), torch.zeros(1, len(HAND)))  # the text so far: 好
    assert torch.nonzero(scores[0]).flatten().tolist() == [1, 4, 7]  # 国, 国家, 国家级 start 国家级; 好 is there
    scores = bias(torch.tensor([[0, 8, 4]]), torch.zeros(1, len(HAND)))  # 好国家: begun, so only its rest
    assert set(torch.nonzero(scores[0]).flatten().tolist()) == {3, 6}  # 级, 级别


def test_char_ngram_block_checks_whole_multi_character_tokens():
    units = [b"", "显".encode(), "瘦".encode(), "好".encode(), "瘦好".encode(), "，".encode()]
    block = CharNgramBlock(TokenIndex(units), n=3, prompt_length=1)
    # written: 显瘦好显. 瘦好 would write 显瘦好 again (inside the token, past its first character); 瘦 alone would not
    scores = block(torch.tensor([[0, 1, 2, 3, 1]]), torch.zeros(1, len(units)))
    assert torch.nonzero(scores[0] == -float("inf")).flatten().tolist() == [4]
    # after 显瘦，显瘦 a second 显瘦， is fine: n-grams with punctuation do not count (but 显瘦显 would repeat nothing)
    scores = block(torch.tensor([[0, 1, 2, 5, 1, 2]]), torch.zeros(1, len(units)))
    assert not torch.isinf(scores).any()
