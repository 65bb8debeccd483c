"""Model-side building blocks: prompt format, label masking, padding, context checks, batched generation."""

from __future__ import annotations

import random

import pytest
import torch

from reasongen.adgen.prompts import PROMPT_END, build_prompt, datamodule_options, prompt_for_row
from reasongen.modeling import model_io, peft_builder
from reasongen.modeling.datamodule import PromptDataModule
from reasongen.modeling.encoding import IGNORE_INDEX, PadCollator, encode_example, prefix_ids
from reasongen.modeling.generation import generate_texts, left_pad, length_batches

KINDS = ["gpt2", "llama"]


def ids_of(tokenizer, text: str) -> list[int]:
    return tokenizer(text, add_special_tokens=False)["input_ids"]


# --- prompts -----------------------------------------------------------------------------------------------


def test_prompt_has_each_given_control_and_nothing_else(tiny_rows):
    row = {"content": "类型#裙*颜色#蓝色", "aspect": "舒适", "length_bucket": "short", "keywords": ["修身", "百搭"]}
    full = prompt_for_row(row)
    assert full == "商品:类型#裙*颜色#蓝色 | 卖点:舒适 | 长度:短 | 关键词:修身、百搭" + PROMPT_END
    assert prompt_for_row(row, use_controls=False) == "商品:类型#裙*颜色#蓝色" + PROMPT_END
    assert build_prompt("类型#裙", keywords=["修身"]) == "商品:类型#裙 | 关键词:修身" + PROMPT_END
    no_aspect = next(r for r in tiny_rows if r["aspect"] is None)
    assert "卖点" not in prompt_for_row(no_aspect)


def test_prefix_ids_is_bos_or_nothing(bpe_tokenizer):
    assert prefix_ids(bpe_tokenizer) == [bpe_tokenizer.bos_token_id]

    class NoBos:
        bos_token_id = None

    assert prefix_ids(NoBos()) == []


# --- encoding ----------------------------------------------------------------------------------------------


def test_finetune_labels_mask_exactly_bos_and_prompt(bpe_tokenizer, tiny_rows):
    tok = bpe_tokenizer
    for row in tiny_rows:
        prompt = prompt_for_row(row)
        example = encode_example(tok, prompt, row["summary"], 1000, 1000, loss_on_prompt=False)
        n_source = 1 + len(ids_of(tok, prompt))
        target = ids_of(tok, row["summary"]) + [tok.eos_token_id]
        assert example["input_ids"] == [tok.bos_token_id] + ids_of(tok, prompt) + target
        assert len(example["labels"]) == len(example["input_ids"])
        assert example["labels"][:n_source] == [IGNORE_INDEX] * n_source
        assert example["labels"][n_source:] == target  # the text and eos are learned, nothing else is masked


def test_pretrain_labels_are_the_inputs(bpe_tokenizer, tiny_rows):
    row = tiny_rows[3]
    example = encode_example(bpe_tokenizer, prompt_for_row(row), row["summary"], 1000, 1000, loss_on_prompt=True)
    assert example["labels"] == example["input_ids"]
    assert IGNORE_INDEX not in example["labels"]


@pytest.mark.parametrize(("max_source", "max_target"), [(5, 7), (1, 1), (40, 3)])
def test_truncation_respects_both_limits(bpe_tokenizer, tiny_rows, max_source, max_target):
    tok = bpe_tokenizer
    row = max(tiny_rows, key=lambda r: len(r["summary"]))
    prompt = prompt_for_row(row)
    assert len(ids_of(tok, prompt)) > 40 and len(ids_of(tok, row["summary"])) > 7
    example = encode_example(tok, prompt, row["summary"], max_source, max_target, loss_on_prompt=False,
                             prompt_end=PROMPT_END)
    assert len(example["input_ids"]) == 1 + max_source + max_target + 1
    # the prompt loses tokens from its middle: its start, and its ` | 文案:` ending as far as room allows, stay
    keep = min(len(ids_of(tok, PROMPT_END)), max_source)
    prompt_ids = ids_of(tok, prompt)
    assert example["input_ids"][1 : 1 + max_source] == prompt_ids[: max_source - keep] + prompt_ids[-keep:]
    assert example["input_ids"][-1] == tok.eos_token_id  # eos survives truncation of the text
    assert example["labels"].count(IGNORE_INDEX) == 1 + max_source


def test_pad_collator_pads_right_and_masks_only_padding():
    batch = [{"input_ids": [5, 6, 7], "labels": [-100, 6, 7]}, {"input_ids": [8], "labels": [8]}]
    out = PadCollator(pad_token_id=2)(batch)
    assert out["input_ids"].tolist() == [[5, 6, 7], [8, 2, 2]]
    assert out["attention_mask"].tolist() == [[1, 1, 1], [1, 0, 0]]
    assert out["labels"].tolist() == [[-100, 6, 7], [8, -100, -100]]


@pytest.mark.parametrize("pretrain", [False, True])
def test_datamodule_batches_mask_prompt_or_only_padding(bpe_tokenizer, tiny_rows, pretrain):
    tok = bpe_tokenizer
    dm = PromptDataModule(tok, tiny_rows[:12], tiny_rows[12:16], **datamodule_options(), batch_size=5,
                          max_source_length=200,
                          max_target_length=20, pretrain=pretrain, control_dropout=0.5, seed=3)
    dm.setup("fit")
    seen = 0
    for batch in dm.train_dataloader():
        padding = batch["attention_mask"] == 0
        assert (batch["input_ids"][padding] == tok.pad_token_id).all()
        assert (batch["labels"][padding] == IGNORE_INDEX).all()
        real = ~padding
        if pretrain:  # the loss covers every real token
            assert (batch["labels"][real] == batch["input_ids"][real]).all()
        else:  # bos + prompt masked: everything up to and including the prompt end marker
            for ids, labels, mask in zip(batch["input_ids"], batch["labels"], batch["attention_mask"], strict=True):
                n_source = int((labels[mask.bool()] == IGNORE_INDEX).sum())
                text = tok.decode(ids[1:n_source].tolist())
                assert text.startswith("商品:") and text.endswith(PROMPT_END)
                assert (labels[n_source : int(mask.sum())] == ids[n_source : int(mask.sum())]).all()
        seen += batch["input_ids"].size(0)
    assert seen == 12
    if pretrain:  # no controls in pretraining
        assert all("卖点" not in tok.decode(e["input_ids"]) for e in dm.encoded["train"])


def test_control_dropout_is_seeded_and_spares_validation(bpe_tokenizer, tiny_rows):
    def encoded(seed):
        dm = PromptDataModule(bpe_tokenizer, tiny_rows[:30], tiny_rows[30:], **datamodule_options(), batch_size=4,
                              max_source_length=200,
                              max_target_length=8, control_dropout=0.5, seed=seed)
        dm.setup()
        return dm.encoded

    first, again, other = encoded(1), encoded(1), encoded(2)
    assert first == again
    assert first["train"] != other["train"]
    full = [len(ids_of(bpe_tokenizer, prompt_for_row(r))) for r in tiny_rows[:30]]
    kept = [e["labels"].count(IGNORE_INDEX) - 1 for e in first["train"]]
    assert any(k < f for k, f in zip(kept, full, strict=True))  # some controls were dropped
    val_full = [1 + len(ids_of(bpe_tokenizer, prompt_for_row(r))) for r in tiny_rows[30:]]
    assert [e["labels"].count(IGNORE_INDEX) for e in first["val"]] == val_full


# --- models and context ------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_from_config_sizes_the_model_to_the_tokenizer(bpe_tokenizer, tiny_model, kind):
    model = tiny_model(kind, bpe_tokenizer)
    assert model.config.model_type == kind
    assert model.get_input_embeddings().num_embeddings == len(bpe_tokenizer)
    assert (model.config.bos_token_id, model.config.eos_token_id, model.config.pad_token_id) == (
        bpe_tokenizer.bos_token_id, bpe_tokenizer.eos_token_id, bpe_tokenizer.pad_token_id)


@pytest.mark.parametrize("kind", KINDS)
def test_check_context_names_the_settings_to_change(bpe_tokenizer, tiny_model, kind):
    model = tiny_model(kind, bpe_tokenizer)
    model_io.check_context(model, 128)  # exactly fits
    with pytest.raises(ValueError, match=r"need 129 positions but the model has 128") as error:
        model_io.check_context(model, 129)
    assert "finetune.max_source_length" in str(error.value) and "finetune.max_target_length" in str(error.value)


def test_unknown_peft_method_is_refused():
    with pytest.raises(ValueError, match="peft.method='qlora'.*lora, adalora"):
        peft_builder.peft_config({"method": "qlora"}, total_steps=10)


# --- generation --------------------------------------------------------------------------------------------


def test_left_pad_puts_padding_first():
    ids, mask = left_pad([[7, 8, 9], [5]], pad_id=0, device="cpu")
    assert ids.tolist() == [[7, 8, 9], [0, 0, 5]]
    assert mask.tolist() == [[1, 1, 1], [0, 0, 1]]


def greedy_prompts(tiny_rows) -> list[str]:
    """Prompts of very different token lengths, in no particular order."""
    prompts = [prompt_for_row(row, use_controls=i % 2 == 0) for i, row in enumerate(tiny_rows[:7])]
    prompts += ["商品:类型#裙" + PROMPT_END, "商品:类型#裤*颜色#蓝色*风格#简约*材质#棉*版型#宽松" + PROMPT_END]
    random.Random(0).shuffle(prompts)
    return prompts


@pytest.mark.parametrize("kind", KINDS)
def test_batched_greedy_generation_equals_one_at_a_time(bpe_tokenizer, tiny_rows, tiny_model, kind):
    tok = bpe_tokenizer
    model = tiny_model(kind, tok).eval()
    with torch.no_grad():  # Llama zeroes the padding embedding; a real one (often eos) is not zero
        model.get_input_embeddings().weight[tok.pad_token_id].normal_(0, 0.5)
    prompts = greedy_prompts(tiny_rows)
    lengths = {len(ids_of(tok, p)) for p in prompts}
    assert max(lengths) - min(lengths) > 20
    settings = {"max_new_tokens": 10, "do_sample": False, "top_p": 0.7, "no_repeat_ngram_size": 0}

    batched = generate_texts(model, tok, prompts, {**settings, "batch_size": len(prompts)}, progress=False)
    single = generate_texts(model, tok, prompts, {**settings, "batch_size": 1}, progress=False)
    assert batched == single
    assert len(set(single)) > 1 and any(single)  # outputs depend on the prompt: the comparison means something

    # The same at the token level, with eos disabled so that every row generates all its tokens.
    encoded = [prefix_ids(tok) + ids_of(tok, p) for p in prompts]
    with torch.inference_mode():
        ids, mask = left_pad(encoded, tok.pad_token_id, "cpu")
        together = model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=8, do_sample=False,
                                  pad_token_id=tok.pad_token_id, eos_token_id=None, use_cache=True)
        for row, sequence in enumerate(encoded):
            alone = model.generate(input_ids=torch.tensor([sequence]), attention_mask=torch.ones(1, len(sequence),
                                   dtype=torch.long), max_new_tokens=8, do_sample=False,
                                   pad_token_id=tok.pad_token_id, eos_token_id=None, use_cache=True)
            assert together[row, ids.size(1) :].tolist() == alone[0, len(sequence) :].tolist()


def test_generate_texts_keeps_input_order_and_handles_empty(bpe_tokenizer, tiny_rows, tiny_model):
    model = tiny_model("gpt2", bpe_tokenizer).eval()
    prompts = greedy_prompts(tiny_rows)
    settings = {"max_new_tokens": 6, "do_sample": False, "batch_size": 4}
    forward = generate_texts(model, bpe_tokenizer, prompts, settings, progress=False)
    backward = generate_texts(model, bpe_tokenizer, prompts[::-1], settings, progress=False)
    assert forward == backward[::-1]
    assert generate_texts(model, bpe_tokenizer, [], settings, progress=False) == []


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("method", ["prefix", "prompt"])
def test_batched_generation_with_virtual_tokens_equals_one_at_a_time(bpe_tokenizer, tiny_rows, tiny_model,
                                                                     tiny_cfg, kind, method):
    """Prompt tuning puts its virtual tokens before the left padding: generate_texts must not pad for it."""
    tok = bpe_tokenizer
    model = tiny_model(kind, tok)
    with torch.no_grad():
        model.get_input_embeddings().weight[tok.pad_token_id].normal_(0, 0.5)
    model = peft_builder.wrap(model, tiny_cfg(f"peft={method}", peft={"num_virtual_tokens": 8}).peft, 10).eval()
    with torch.no_grad():  # trained-looking virtual tokens, so that they matter
        for parameter in model.prompt_encoder.parameters():
            parameter.normal_(0, 0.5)
    prompts = greedy_prompts(tiny_rows)
    prompts += [p.replace("裙", "裤") for p in prompts[:3]]  # some prompts of equal length
    settings = {"max_new_tokens": 8, "do_sample": False}
    batched = generate_texts(model, tok, prompts, {**settings, "batch_size": 4}, progress=False)
    single = generate_texts(model, tok, prompts, {**settings, "batch_size": 1}, progress=False)
    assert batched == single
    assert len(set(single)) > 1


def test_length_batches_group_similar_or_equal_lengths():
    lengths = [3, 1, 3, 2, 1, 3]
    assert length_batches(lengths, 2) == [[1, 4], [3, 0], [2, 5]]
    assert length_batches(lengths, 2, same_length=True) == [[1, 4], [3], [0, 2], [5]]
    assert length_batches([], 4) == []
    # no short last batch: 5 rows at 4 a batch are 3 + 2, not 4 + 1
    assert [len(batch) for batch in length_batches([1, 2, 3, 4, 5], 4)] == [3, 2]
    assert sorted(i for batch in length_batches(list(range(514)), 512) for i in batch) == list(range(514))
