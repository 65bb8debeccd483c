"""DVC stage `explain_tokenizer` (Task B): a byte-level BPE trained on the training prompts and explanations,
by the tokenizer stage's own trainer."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from omegaconf import DictConfig

from reasongen.explain.prompts import ProfilePrompter
from reasongen.io import iter_jsonl, read_json
from reasongen.modeling.tokenizers import bpe_from_texts

PREPARED = Path("outputs/explain/prepare")
OUT_DIR = Path("outputs/explain/tokenizer")


def training_texts(prepared_dir: Path) -> Iterator[str]:
    """Each training row's full prompt (profiles + feature) and its explanation."""
    prompter = ProfilePrompter(read_json(prepared_dir / "profiles.json"))
    for row in iter_jsonl(prepared_dir / "train.jsonl"):
        yield prompter.prompt(row)
        yield row["explanation"]


def run(cfg: DictConfig, prepared_dir: Path = PREPARED, out_dir: Path = OUT_DIR):
    settings = cfg.explain.tokenizer
    tokenizer = bpe_from_texts(training_texts(prepared_dir), settings.vocab_size, settings.min_frequency)
    tokenizer.save_pretrained(str(out_dir))
    print(f"explain_tokenizer: bpe, {len(tokenizer)} tokens -> {out_dir}")
    return tokenizer
