"""The fine-tuned model as a text generator: from a folder or an MLflow URI, and as an MLflow pyfunc model."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import mlflow.pyfunc

from reasongen.modeling import model_io
from reasongen.modeling.generation import generate_candidates
from reasongen.modeling.prompts import prompt_for_row
from reasongen.modeling.selection import Checks, choose

ARTIFACT_KEY = "model_dir"


class Generator:
    """Rows in the AdvertiseGen format (+ optional controls) -> texts, with the decoding saved beside the model:
    `num_candidates` samples (+ the greedy text) per row, one chosen by `selection`, then `repair`."""

    def __init__(self, model, tokenizer, generation: dict[str, Any], checks: Checks | None = None):
        self.model = model
        self.tokenizer = tokenizer
        self.generation = dict(generation)
        self.checks = checks or Checks()

    @classmethod
    def from_dir(cls, model_dir: str | Path, generation: dict[str, Any] | None = None) -> Generator:
        import torch

        device = "cuda" if torch.cuda.is_available() else "cpu"
        model, tokenizer, meta = model_io.load_model(model_dir, device)
        generation = {"max_source_length": meta.get("max_source_length"), **(generation or {})}
        checks = Checks(value_lexicon=meta.get("value_lexicon") or {},
                        checked_keys=tuple(generation.get("checked_keys") or Checks.checked_keys),
                        length_bounds=tuple(meta.get("length_bounds") or Checks.length_bounds))
        return cls(model, tokenizer, generation, checks)

    def candidates(self, rows: list[dict[str, Any]], use_controls: bool = True, progress: bool = True,
                   **overrides: Any) -> list[list[str]]:
        """Every candidate text of every row (num_candidates samples, then the greedy text if include_greedy)."""
        prompts = [prompt_for_row(row, use_controls) for row in rows]
        return generate_candidates(self.model, self.tokenizer, prompts, {**self.generation, **overrides},
                                   progress=progress)

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


def load_generator(model: str) -> Generator:
    """A Generator from `models:/name/version`, `models:/name@alias`, `runs:/id/model`, or a model folder."""
    if "://" not in model and ":/" not in model:
        return Generator.from_dir(model)
    from reasongen.tracking import configure

    configure()
    return mlflow.pyfunc.load_model(model).unwrap_python_model().generator


def _text(value: Any) -> str | None:
    """A request field as text; pandas fills fields a row leaves out with NaN / None."""
    return value.strip() or None if isinstance(value, str) else None


def _as_row(record: dict[str, Any]) -> dict[str, Any]:
    """A request record as a generation row; keywords may be a list or one comma-separated string."""
    keywords = record.get("keywords")
    if isinstance(keywords, str):
        keywords = keywords.replace("，", ",").replace("、", ",").split(",")
    if not isinstance(keywords, list):
        keywords = []  # absent, or NaN where other rows of the request give keywords
    words = [word.strip() for word in keywords if isinstance(word, str) and word.strip()]
    return {"content": record["content"], "aspect": _text(record.get("aspect")),
            "length_bucket": _text(record.get("length_bucket")), "keywords": words}


class ReasonGenModel(mlflow.pyfunc.PythonModel):
    """MLflow pyfunc: a DataFrame of content (+ aspect, length_bucket, keywords) -> a list of texts."""

    def load_context(self, context) -> None:
        # model_config carries the decoding settings the pipeline evaluated with
        generation = (context.model_config or {}).get("generation", {})
        self.generator = Generator.from_dir(context.artifacts[ARTIFACT_KEY], generation)

    def predict(self, context, model_input, params: dict[str, Any] | None = None) -> list[str]:
        records = model_input.to_dict(orient="records") if hasattr(model_input, "to_dict") else list(model_input)
        missing = [i for i, r in enumerate(records) if not isinstance(r.get("content"), str) or not r["content"]]
        if missing:
            raise ValueError(f"rows {missing} need a non-empty string 'content' such as 类型#裙*颜色#蓝色")
        return self.generator.generate([_as_row(r) for r in records], progress=False, **(params or {}))


def signature():
    """Inputs: content (required) + optional controls; output: the text; params: decoding overrides."""
    from mlflow.models import ModelSignature
    from mlflow.types.schema import ColSpec, ParamSchema, ParamSpec, Schema

    inputs = Schema([ColSpec("string", "content"), ColSpec("string", "aspect", required=False),
                     ColSpec("string", "length_bucket", required=False),
                     ColSpec("string", "keywords", required=False)])
    params = ParamSchema([ParamSpec("do_sample", "boolean", True), ParamSpec("max_new_tokens", "long", 128),
                          ParamSpec("temperature", "double", 0.95), ParamSpec("top_p", "double", 0.7)])
    return ModelSignature(inputs=inputs, outputs=Schema([ColSpec("string")]), params=params)


def input_example():
    import pandas as pd

    return pd.DataFrame([{"content": "类型#裙*颜色#蓝色*风格#清新*裙长#连衣裙", "aspect": "显瘦",
                          "length_bucket": "short", "keywords": "气质"}])
