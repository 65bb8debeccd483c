"""Tokenizers for any task: a byte-level BPE learned from texts, the bert-base-chinese vocabulary (optionally
trimmed to the tokens some texts use), or the tokenizer saved with a pretrained model."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from reasongen.modeling.model_io import check_name_or_path

SPECIAL = {"bos_token": "<s>", "eos_token": "</s>", "pad_token": "<pad>", "unk_token": "<unk>"}


def bpe_from_texts(texts: Iterable[str], vocab_size: int, min_frequency: int):
    """A byte-level BPE learned from `texts` (any task's training texts), as a transformers fast tokenizer."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    core = Tokenizer(models.BPE())
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    core.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=list(SPECIAL.values()),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=True,
    )
    core.train_from_iterator(texts, trainer=trainer)
    return PreTrainedTokenizerFast(tokenizer_object=core, **SPECIAL)


def bert_vocab(vocab_file: Path):
    """The bert-base-chinese WordPiece vocabulary (one token per Chinese character); [CLS]/[SEP] serve as
    begin/end of text."""
    from transformers import BertTokenizerFast

    if not vocab_file.exists():
        raise FileNotFoundError(f"{vocab_file} not found: set REASONGEN_SHARED or tokenizer.bert_vocab_file")
    # transformers 5 takes the vocabulary file as `vocab` (`vocab_file=` is ignored: a 5-token vocabulary)
    return BertTokenizerFast(vocab=str(vocab_file), bos_token="[CLS]", eos_token="[SEP]")


def trim_vocab(tokenizer, texts: Iterable[str], out_file: Path):
    """The WordPiece tokenizer cut down to the special tokens and the tokens `texts` use (for the training texts,
    a few thousand of bert-base-chinese's 21,128): a smaller embedding and softmax, the same tokenisation for seen
    text; characters never seen in training become [UNK]."""
    from transformers import BertTokenizerFast

    used: set[str] = set()
    for text in texts:
        used.update(tokenizer.tokenize(text))
    keep = [token for token in tokenizer.get_vocab() if token in used or token in tokenizer.all_special_tokens]
    keep.sort(key=tokenizer.convert_tokens_to_ids)  # the original order: specials first
    out_file.parent.mkdir(parents=True, exist_ok=True)
    out_file.write_text("\n".join(keep) + "\n", encoding="utf-8")
    return BertTokenizerFast(vocab=str(out_file), bos_token="[CLS]", eos_token="[SEP]")


def pretrained(name_or_path: str, trust_remote_code: bool):
    """The tokenizer saved with a pretrained model; pad falls back to eos as for most causal LMs."""
    from transformers import AutoTokenizer

    check_name_or_path(name_or_path)
    tokenizer = AutoTokenizer.from_pretrained(name_or_path, trust_remote_code=trust_remote_code)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer
