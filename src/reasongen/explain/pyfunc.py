"""Task B as an MLflow pyfunc model (registered as reasongen-explain): user_id, item_id (+ feature) -> explanations."""

from __future__ import annotations

from typing import Any

from reasongen import serving
from reasongen.explain.generator import ExplainGenerator, request_row

ARTIFACT_KEY = serving.ARTIFACT_KEY
PYFUNC_CLASS = "ExplainModel"  # what tracking.log_model instantiates


class ExplainModel(serving.GeneratorModel):
    """MLflow pyfunc: a DataFrame of user_id, item_id (+ feature) -> a list of explanations."""

    generator_class = ExplainGenerator
    request_row = staticmethod(request_row)

    def write(self, rows: list[dict[str, Any]], overrides: dict[str, Any]) -> list[str]:
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
