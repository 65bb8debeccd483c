"""The fine-tuned Task A model as a text generator: rows -> candidates -> one chosen, repaired text each; from a
model folder or a registered model."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from reasongen.adgen.prompts import PROMPT_END, prompt_for_row
from reasongen.adgen.selection import Checks, choose
from reasongen.modeling import model_io
from reasongen.modeling.generation import generate_candidates


class Generator:
    """Rows in the AdvertiseGen format (+ optional controls) -> texts, with the decoding saved beside the model:
    `num_candidates` samples (+ the greedy text) per row, one chosen by `selection`, then `repair`."""

    def __init__(self, model, tokenizer, generation: dict[str, Any], checks: Checks):
        self.model = model
        self.tokenizer = tokenizer
        self.generation = dict(generation)
        self.checks = checks

    @classmethod
    def from_dir(cls, model_dir: str | Path, generation: dict[str, Any] | None = None) -> Generator:
        model, tokenizer, meta = model_io.load_model(model_dir, model_io.default_device())
        generation = {"max_source_length": meta.get("max_source_length"), **(generation or {})}
        if "length_bounds" not in meta or "checked_keys" not in generation:
            raise ValueError(f"{model_dir}: needs a fine-tuned reasongen model folder (with length_bounds) and "
                             "decoding settings with checked_keys (a registered model or params.yaml carries them)")
        return cls(model, tokenizer, generation, rule_checks(meta, generation))

    def candidates(self, rows: list[dict[str, Any]], use_controls: bool = True, progress: bool = True,
                   **overrides: Any) -> list[list[str]]:
        """Every candidate text of every row (num_candidates samples, then the greedy text if include_greedy)."""
        prompts = [prompt_for_row(row, use_controls) for row in rows]
        return generate_candidates(self.model, self.tokenizer, prompts, {**self.generation, **overrides},
                                   prompt_end=PROMPT_END, progress=progress)

    def choose(self, rows: list[dict[str, Any]], candidates: list[list[str]], use_controls: bool = True,
               **overrides: Any) -> list[str]:
        """One text per row from its candidates, by the configured selection and repair. Without controls the
        rows' aspect / length requests are not the model's to meet, so selection ignores them."""
        cfg = {**self.generation, **overrides}
        targets = rows if use_controls else [{"content": row["content"]} for row in rows]
        return choose(candidates, targets, self.checks, cfg.get("selection"), cfg.get("repair"))

    def generate(self, rows: list[dict[str, Any]], use_controls: bool = True, progress: bool = True,
                 **overrides: Any) -> list[str]:
        found = self.candidates(rows, use_controls, progress, **overrides)
        return self.choose(rows, found, use_controls, **overrides)


def rule_checks(meta: dict[str, Any], generation: dict[str, Any]) -> Checks:
    """The rules a model was fine-tuned and evaluated with (its folder's meta: the training split's values, the
    length buckets) and the keys its decoding checks."""
    return Checks(value_lexicon=meta.get("value_lexicon") or {}, checked_keys=tuple(generation["checked_keys"]),
                  length_bounds=tuple(meta["length_bounds"]))


def load_text_generator(model: str) -> Generator:
    """A Generator from `models:/name/version`, `models:/name@alias`, `runs:/id/model`, or a model folder."""
    from reasongen import tracking

    return tracking.load_registered_generator(model) if tracking.is_model_uri(model) else Generator.from_dir(model)
