"""Task A as an MLflow pyfunc model (registered as reasongen-adgen): a DataFrame of content (+ controls) -> texts."""

from __future__ import annotations

from typing import Any

import mlflow.pyfunc

from reasongen import serving
from reasongen.adgen.generator import Generator, request_row

ARTIFACT_KEY = "model_dir"
PYFUNC_CLASS = "ReasonGenModel"  # what tracking.log_model instantiates


class ReasonGenModel(mlflow.pyfunc.PythonModel):
    """MLflow pyfunc: a DataFrame of content (+ aspect, length_bucket, keywords) -> a list of texts."""

    def load_context(self, context) -> None:
        # model_config carries the decoding settings the pipeline evaluated with and the serving limits;
        # trust_remote_code is registered false: only the one who loads the model may turn it on
        config = context.model_config or {}
        self.limits = config.get("limits") or {}
        self.generator = Generator.from_dir(context.artifacts[ARTIFACT_KEY], config.get("generation", {}),
                                            trust_remote_code=bool(config.get("trust_remote_code")))

    def predict(self, context, model_input, params: dict[str, Any] | None = None) -> list[str]:
        rows, overrides = serving.request_rows(model_input, params, self.limits, request_row)
        with serving.GENERATE_LOCK:
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
