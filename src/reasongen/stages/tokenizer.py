"""Stage `tokenizer`: train a byte-level BPE on the training split, or adopt a given vocabulary."""

from __future__ import annotations

import tempfile
from collections.abc import Iterable
from pathlib import Path

from omegaconf import DictConfig

from reasongen.io import iter_jsonl
from reasongen.modeling.prompts import build_prompt
from reasongen.paths import shared_root

SPECIAL = {"bos_token": "<s>", "eos_token": "</s>", "pad_token": "<pad>", "unk_token": "<unk>"}


def training_texts(train_path: Path):
    """What the tokenizer learns from: prompts with every control, and the texts."""
    for row in iter_jsonl(train_path):
        yield build_prompt(row["content"], row.get("aspect"), row.get("length_bucket"), row.get("keywords") or ())
        yield row["summary"]


def train_bpe(train_path: Path, vocab_size: int, min_frequency: int):
    """A byte-level BPE (no unknown characters possible) wrapped as a transformers fast tokenizer."""
    return bpe_from_texts(training_texts(train_path), vocab_size, min_frequency)


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


def trim_vocab(tokenizer, train_path: Path, out_file: Path):
    """The WordPiece tokenizer cut down to the special tokens and the tokens the training texts use (a few
    thousand of bert-base-chinese's 21,128): a smaller embedding and softmax, the same tokenisation for seen text;
    characters never seen in training become [UNK]."""
    from transformers import BertTokenizerFast

    used: set[str] = set()
    for text in training_texts(train_path):
        used.update(tokenizer.tokenize(text))
    keep = [token for token in tokenizer.get_vocab() if token in used or token in tokenizer.all_special_tokens]
    keep.sort(key=tokenizer.convert_tokens_to_ids)  # the original order: specials first
    out_file.parent.mkdir(parents=True, exist_ok=True)
    out_file.write_text("\n".join(keep) + "\n", encoding="utf-8")
    return BertTokenizerFast(vocab=str(out_file), bos_token="[CLS]", eos_token="[SEP]")


def pretrained(name_or_path: str, trust_remote_code: bool):
    """The tokenizer saved with a pretrained model; pad falls back to eos as for most causal LMs."""
    from transformers import AutoTokenizer

    from reasongen.modeling.model_io import check_name_or_path

    check_name_or_path(name_or_path)
    tokenizer = AutoTokenizer.from_pretrained(name_or_path, trust_remote_code=trust_remote_code)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def build(cfg: DictConfig, train_path: Path, work_dir: Path):
    kind = cfg.tokenizer.kind
    if kind == "bpe":
        return train_bpe(train_path, cfg.tokenizer.vocab_size, cfg.tokenizer.min_frequency)
    if kind == "bert_vocab":
        tokenizer = bert_vocab(shared_root() / cfg.tokenizer.bert_vocab_file)
        if cfg.tokenizer.get("trim_to_training"):
            tokenizer = trim_vocab(tokenizer, train_path, work_dir / "trimmed_vocab.txt")
        return tokenizer
    if kind == "pretrained":
        if not cfg.model.name_or_path:
            raise ValueError("tokenizer.kind=pretrained needs model.name_or_path")
        return pretrained(cfg.model.name_or_path, cfg.model.trust_remote_code)
    raise ValueError(f"tokenizer.kind={kind!r}: choose bpe, bert_vocab or pretrained")


def run(
    cfg: DictConfig,
    train_path: Path = Path("outputs/prepare/train.jsonl"),
    out_dir: Path = Path("outputs/tokenizer"),
):
    """Build the tokenizer and save it as a Hugging Face tokenizer folder."""
    with tempfile.TemporaryDirectory() as work_dir:
        tokenizer = build(cfg, train_path, Path(work_dir))
        if tokenizer.eos_token is None:
            raise ValueError("the tokenizer has no end-of-text token; set one on the pretrained tokenizer")
        tokenizer.save_pretrained(str(out_dir))
    print(f"tokenizer: {cfg.tokenizer.kind}, {len(tokenizer)} tokens -> {out_dir}")
    return tokenizer
