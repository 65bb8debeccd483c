"""Task A as an MLflow pyfunc model (registered as reasongen-adgen): a DataFrame of content (+ controls) -> texts."""

from __future__ import annotations

from typing import Any

from reasongen import serving
from reasongen.adgen.generator import Generator, request_row

ARTIFACT_KEY = serving.ARTIFACT_KEY
PYFUNC_CLASS = "ReasonGenModel"  # what tracking.log_model instantiates


class ReasonGenModel(serving.GeneratorModel):
    """MLflow pyfunc: a DataFrame of content (+ aspect, length_bucket, keywords) -> a list of texts."""

    generator_class = Generator
    request_row = staticmethod(request_row)

    def write(self, rows: list[dict[str, Any]], overrides: dict[str, Any]) -> list[str]:
        return self.generator.generate(rows, progress=False, **overrides)


def signature(generation: dict[str, Any]):
    """Inputs: content (required) + optional controls; output: the text; params: decoding overrides, whose
    defaults are the registered decoding."""
    from mlflow.models import ModelSignature
    from mlflow.types.schema import ColSpec, Schema

    inputs = Schema([ColSpec("string", "content"), ColSpec("string", "aspect", required=False),
                     ColSpec("string", "length_bucket", required=False),
                     ColSpec("string", "keywords", required=False)])
    return ModelSignature(inputs=inputs, outputs=Schema([ColSpec("string")]),
                          params=serving.decoding_params(generation))


def input_example():
    import pandas as pd

    return pd.DataFrame([{"content": "类型#裙*颜色#蓝色*风格#清新*裙长#连衣裙", "aspect": "显瘦",
                          "length_bucket": "short", "keywords": "气质"}])
