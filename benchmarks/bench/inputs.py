"""What the bench measures on: the pipeline's prepared data and fine-tuned model when this checkout has them, else
data prepared from the shared AdvertiseGen file by the prepare stage's own code and a freshly initialised default
model (the speed figures hold; the texts are noise)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from reasongen.config import compose, load_params
from reasongen.io import read_jsonl


@dataclass
class Inputs:
    cfg: DictConfig
    params_file: Path  # what child processes load the same config from
    prepared_dir: Path
    model_dir: Path  # a fine-tuned model folder (generation, evaluate, serving)
    base_dir: Path | None  # the base model folder training starts from, if there is one
    note: str

    def rows(self, split: str) -> list[dict[str, Any]]:
        return read_jsonl(self.prepared_dir / f"{split}.jsonl")


def locate(outputs: Path, params_file: Path, work: Path) -> Inputs:
    """The pipeline's outputs under `outputs` with params_file, or inputs built under `work`."""
    model_dir, prepared = outputs / "finetune" / "model", outputs / "prepare"
    if (model_dir / "reasongen.json").is_file() and (prepared / "train.jsonl").is_file() and params_file.is_file():
        base = outputs / "base_model" / "model"
        return Inputs(load_params(params_file), params_file, prepared, model_dir, base if base.is_dir() else None,
                      f"Inputs: the pipeline's own ({prepared}, {model_dir}, {params_file}).")
    return build(work)


def build(work: Path) -> Inputs:
    """Prepared data from the shared file through the prepare and tokenizer stages, and a freshly initialised model
    of the default config saved as a fine-tuned model folder (with the rules the finetune stage saves beside it)."""
    from reasongen import sources
    from reasongen.config import write_params
    from reasongen.modeling import model_io
    from reasongen.stages import prepare, tokenizer
    from reasongen.text.attributes import value_lexicon

    cfg = compose()
    params_file = work / "params.yaml"
    write_params(cfg, params_file)
    prepared, model_dir = work / "prepare", work / "model"
    if not (model_dir / "reasongen.json").is_file():
        prepare.run(cfg, sources.shared_file(cfg.data), prepared)
        tok = tokenizer.run(cfg, prepared / "train.jsonl", work / "tokenizer")
        model = model_io.base_model(cfg.model, tok)
        rules = {"value_lexicon": value_lexicon(read_jsonl(prepared / "train.jsonl")),
                 "length_bounds": list(cfg.data.controls.length_bounds),
                 "max_source_length": cfg.finetune.max_source_length}
        model_io.save_model(model, tok, model_dir, rules)
    return Inputs(cfg, params_file, prepared, model_dir, None,
                  "Inputs: **no pipeline outputs in this checkout**: data prepared from the shared AdvertiseGen file "
                  "by the prepare stage's code, and a freshly initialised (untrained) default model; speed figures "
                  "hold, the generated texts (and so their lengths) are an untrained model's.")
