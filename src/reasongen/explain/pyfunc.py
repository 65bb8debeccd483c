"""Task B as an MLflow pyfunc model (registered as reasongen-explain): user_id, item_id (+ feature) -> explanations."""

from __future__ import annotations

from typing import Any

import mlflow.pyfunc

from reasongen.explain.generator import ExplainGenerator, check_rows

ARTIFACT_KEY = "model_dir"
PYFUNC_CLASS = "ExplainModel"  # what tracking.log_model instantiates


class ExplainModel(mlflow.pyfunc.PythonModel):
    """MLflow pyfunc: a DataFrame of user_id, item_id (+ feature) -> a list of explanations."""

    def load_context(self, context) -> None:
        generation = (context.model_config or {}).get("generation", {})
        self.generator = ExplainGenerator.from_dir(context.artifacts[ARTIFACT_KEY], generation)

    def predict(self, context, model_input, params: dict[str, Any] | None = None) -> list[str]:
        records = model_input.to_dict(orient="records") if hasattr(model_input, "to_dict") else list(model_input)
        return self.generator.explain(check_rows(records), progress=False, **(params or {}))


def signature():
    """Inputs: user_id, item_id (required), feature (optional); output: the explanation; params: decoding."""
    from mlflow.models import ModelSignature
    from mlflow.types.schema import ColSpec, ParamSchema, ParamSpec, Schema

    inputs = Schema([ColSpec("string", "user_id"), ColSpec("string", "item_id"),
                     ColSpec("string", "feature", required=False)])
    params = ParamSchema([ParamSpec("do_sample", "boolean", False), ParamSpec("max_new_tokens", "long", 32),
                          ParamSpec("temperature", "double", 1.0), ParamSpec("top_p", "double", 1.0)])
    return ModelSignature(inputs=inputs, outputs=Schema([ColSpec("string")]), params=params)


def input_example(profiles: dict[str, Any] | None = None):
    import pandas as pd

    user = next(iter(profiles["users"]), "u000000000000") if profiles else "u000000000000"
    item = next(iter(profiles["items"]), "B0002E1G5C") if profiles else "B0002E1G5C"
    return pd.DataFrame([{"user_id": user, "item_id": item, "feature": "sound"}])
