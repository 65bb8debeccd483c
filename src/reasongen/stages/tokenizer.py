"""Stage `tokenizer`: train a byte-level BPE on the training split, or adopt a given vocabulary."""

from __future__ import annotations

import tempfile
from pathlib import Path

from omegaconf import DictConfig

from reasongen.adgen.prompts import training_texts
from reasongen.io import iter_jsonl
from reasongen.modeling import tokenizers
from reasongen.paths import shared_root


def build(cfg: DictConfig, train_path: Path, work_dir: Path):
    kind = cfg.tokenizer.kind
    if kind == "bpe":
        return tokenizers.bpe_from_texts(training_texts(iter_jsonl(train_path)), cfg.tokenizer.vocab_size,
                                         cfg.tokenizer.min_frequency)
    if kind == "bert_vocab":
        tokenizer = tokenizers.bert_vocab(shared_root() / cfg.tokenizer.bert_vocab_file)
        if cfg.tokenizer.get("trim_to_training"):
            tokenizer = tokenizers.trim_vocab(tokenizer, training_texts(iter_jsonl(train_path)),
                                              work_dir / "trimmed_vocab.txt")
        return tokenizer
    if kind == "pretrained":
        if not cfg.model.name_or_path:
            raise ValueError("tokenizer.kind=pretrained needs model.name_or_path")
        return tokenizers.pretrained(cfg.model.name_or_path, cfg.model.trust_remote_code)
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
