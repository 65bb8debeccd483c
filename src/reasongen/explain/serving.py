"""The Task B model as an explanation writer: (user id, item id, optional feature) -> explanation; from a folder or
an MLflow URI, and as an MLflow pyfunc model (registered as reasongen-explain)."""

from __future__ import annotations

import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import mlflow.pyfunc

from reasongen.explain import privacy
from reasongen.explain.prompts import ProfilePrompter
from reasongen.io import read_json
from reasongen.metrics.explanation_features.explanation_features import feature_sets
from reasongen.modeling import model_io
from reasongen.modeling.generation import generate_candidates, generate_texts
from reasongen.serving import _text

ARTIFACT_KEY = "model_dir"
PYFUNC_CLASS = "ExplainModel"  # what register.log_model instantiates
PROFILES_FILE = "profiles.json"


def add_profiles(model_dir: Path, profiles_path: Path) -> None:
    """Ship the training profiles (pseudonymous) inside the model folder: the model needs them to write."""
    shutil.copy(profiles_path, model_dir / PROFILES_FILE)


class ExplainGenerator:
    """Rows {user_id, item_id, feature?} -> explanations, with the decoding settings given."""

    def __init__(self, model, tokenizer, profiles: dict[str, Any], generation: dict[str, Any]):
        self.model = model
        self.tokenizer = tokenizer
        self.prompter = ProfilePrompter(profiles)
        self.generation = dict(generation)

    @classmethod
    def from_dir(cls, model_dir: str | Path, generation: dict[str, Any] | None = None) -> ExplainGenerator:
        import torch

        device = "cuda" if torch.cuda.is_available() else "cpu"
        model, tokenizer, meta = model_io.load_model(model_dir, device)
        profiles = read_json(Path(model_dir) / PROFILES_FILE)
        return cls(model, tokenizer, profiles, {"max_source_length": meta.get("max_source_length"),
                                                **(generation or {})})

    def user_key(self, user_id: str) -> str:
        """A pseudonym as the model knows it: given as is, or a raw reviewer id hashed with the current salt."""
        return user_id if user_id in self.prompter.users else privacy.pseudonym(user_id)

    def explain(self, rows: list[dict[str, Any]], use_feature: bool = True, progress: bool = True,
                vocabulary: Mapping[str, Sequence[str]] | None = None, **overrides: Any) -> list[str]:
        """One explanation per row. With a feature asked for and `feature_candidates` > 0, the greedy text is kept
        when it names the feature, else the first of that many samples that does (vocabulary: the features'
        surface forms; without it the feature word itself)."""
        prompts = [self.prompter.prompt({"user": self.user_key(str(row["user_id"])), "item": str(row["item_id"]),
                                         "feature": _text(row.get("feature"))}, use_feature) for row in rows]
        cfg = {**self.generation, **overrides}
        samples = int(cfg.get("feature_candidates") or 0)
        if not use_feature or samples < 1:
            return generate_texts(self.model, self.tokenizer, prompts, cfg, progress=progress)
        found = generate_candidates(self.model, self.tokenizer, prompts, {**cfg, "do_sample": True,
                                    "num_candidates": samples, "include_greedy": True}, progress=progress)
        return [naming_feature([texts[-1], *texts[:-1]], _text(row.get("feature")), vocabulary)
                for texts, row in zip(found, rows, strict=True)]


def naming_feature(texts: Sequence[str], feature: str | None,
                   vocabulary: Mapping[str, Sequence[str]] | None = None) -> str:
    """The first text that mentions feature (as the FMR metric detects it), or the first text when none does."""
    if not feature or not texts:
        return texts[0] if texts else ""
    forms = {feature: list((vocabulary or {}).get(feature) or [feature])}
    mentions = feature_sets(texts, forms)
    return next((text for text, found in zip(texts, mentions, strict=True) if feature in found), texts[0])


def load_generator(model: str) -> ExplainGenerator:
    """An ExplainGenerator from `models:/reasongen-explain/...`, `runs:/...`, or a model folder."""
    if "://" not in model and ":/" not in model:
        return ExplainGenerator.from_dir(model)
    from reasongen.serving import load_generator as load_registered

    return load_registered(model)  # any registered pyfunc of this project unwraps to its generator


def check_rows(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Request rows need non-empty user_id and item_id; the error names the bad rows."""
    bad = [i for i, r in enumerate(records) if not _text(str(r.get("user_id") or "")) or
           not _text(str(r.get("item_id") or ""))]
    if bad:
        raise ValueError(f"rows {bad} need non-empty 'user_id' and 'item_id' (feature is optional)")
    return records


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
