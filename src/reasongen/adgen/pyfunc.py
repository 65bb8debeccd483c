"""Task A as an MLflow pyfunc model (registered as reasongen-adgen): a DataFrame of content (+ controls) -> texts."""

from __future__ import annotations

from typing import Any

import mlflow.pyfunc

from reasongen.adgen.generator import Generator
from reasongen.rows import text_field

ARTIFACT_KEY = "model_dir"
PYFUNC_CLASS = "ReasonGenModel"  # what tracking.log_model instantiates


def _as_row(record: dict[str, Any]) -> dict[str, Any]:
    """A request record as a generation row; keywords may be a list or one comma-separated string."""
    keywords = record.get("keywords")
    if isinstance(keywords, str):
        keywords = keywords.replace("，", ",").replace("、", ",").split(",")
    if not isinstance(keywords, list):
        keywords = []  # absent, or NaN where other rows of the request give keywords
    words = [word.strip() for word in keywords if isinstance(word, str) and word.strip()]
    return {"content": record["content"], "aspect": text_field(record.get("aspect")),
            "length_bucket": text_field(record.get("length_bucket")), "keywords": words}


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
