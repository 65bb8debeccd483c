"""Task B as an MLflow pyfunc model (registered as reasongen-explain): user_id, item_id (+ feature) -> explanations."""

from __future__ import annotations

from typing import Any

import mlflow.pyfunc

from reasongen import serving
from reasongen.explain.generator import ExplainGenerator, request_row

ARTIFACT_KEY = "model_dir"
PYFUNC_CLASS = "ExplainModel"  # what tracking.log_model instantiates


class ExplainModel(mlflow.pyfunc.PythonModel):
    """MLflow pyfunc: a DataFrame of user_id, item_id (+ feature) -> a list of explanations."""

    def load_context(self, context) -> None:
        config = context.model_config or {}  # decoding and limits as registered; trust_remote_code as loaded
        self.limits = config.get("limits") or {}
        self.generator = ExplainGenerator.from_dir(context.artifacts[ARTIFACT_KEY], config.get("generation", {}),
                                                   trust_remote_code=bool(config.get("trust_remote_code")))

    def predict(self, context, model_input, params: dict[str, Any] | None = None) -> list[str]:
        rows, overrides = serving.request_rows(model_input, params, self.limits, request_row)
        with serving.GENERATE_LOCK:
            return self.generator.explain(rows, progress=False, **overrides)


def signature(generation: dict[str, Any]):
    """Inputs: user_id, item_id (required), feature (optional); output: the explanation; params: decoding, whose
    defaults are the registered decoding."""
    from mlflow.models import ModelSignature
    from mlflow.types.schema import ColSpec, Schema

    inputs = Schema([ColSpec("string", "user_id"), ColSpec("string", "item_id"),
                     ColSpec("string", "feature", required=False)])
    return ModelSignature(inputs=inputs, outputs=Schema([ColSpec("string")]),
                          params=serving.decoding_params(generation))


def input_example(profiles: dict[str, Any] | None = None):
    import pandas as pd

    user = next(iter(profiles["users"]), "u000000000000") if profiles else "u000000000000"
    item = next(iter(profiles["items"]), "B0002E1G5C") if profiles else "B0002E1G5C"
    return pd.DataFrame([{"user_id": user, "item_id": item, "feature": "sound"}])
