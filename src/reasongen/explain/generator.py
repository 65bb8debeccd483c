"""The Task B model as an explanation writer: (user id, item id, optional feature) -> explanation; from a model folder
or a registered model."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from reasongen.explain import privacy
from reasongen.explain.profiles import PROFILES_FILE
from reasongen.explain.prompts import PROMPT_END, ProfilePrompter
from reasongen.io import read_json
from reasongen.metrics.explanation_features.explanation_features import feature_sets
from reasongen.modeling import model_io
from reasongen.modeling.generation import generate_candidates, generate_texts
from reasongen.rows import text_field


class ExplainGenerator:
    """Rows {user_id, item_id, feature?} -> explanations, with the decoding settings given."""

    def __init__(self, model, tokenizer, profiles: dict[str, Any], generation: dict[str, Any]):
        self.model = model
        self.tokenizer = tokenizer
        self.prompter = ProfilePrompter(profiles)
        self.generation = dict(generation)

    @classmethod
    def from_dir(cls, model_dir: str | Path, generation: dict[str, Any] | None = None,
                 trust_remote_code: bool = False) -> ExplainGenerator:
        model, tokenizer, meta = model_io.load_model(model_dir, model_io.default_device(), trust_remote_code)
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
                                         "feature": text_field(row.get("feature"))}, use_feature) for row in rows]
        cfg = {**self.generation, **overrides}
        samples = int(cfg.get("feature_candidates") or 0)
        if not use_feature or samples < 1:
            return generate_texts(self.model, self.tokenizer, prompts, cfg, prompt_end=PROMPT_END, progress=progress)
        found = generate_candidates(self.model, self.tokenizer, prompts, {**cfg, "do_sample": True,
                                    "num_candidates": samples, "include_greedy": True},
                                    prompt_end=PROMPT_END, progress=progress)
        return [naming_feature([texts[-1], *texts[:-1]], text_field(row.get("feature")), vocabulary)
                for texts, row in zip(found, rows, strict=True)]


def naming_feature(texts: Sequence[str], feature: str | None,
                   vocabulary: Mapping[str, Sequence[str]] | None = None) -> str:
    """The first text that mentions feature (as the FMR metric detects it), or the first text when none does."""
    if not feature or not texts:
        return texts[0] if texts else ""
    forms = {feature: list((vocabulary or {}).get(feature) or [feature])}
    mentions = feature_sets(texts, forms)
    return next((text for text, found in zip(texts, mentions, strict=True) if feature in found), texts[0])


def load_explainer(model: str) -> ExplainGenerator:
    """An ExplainGenerator from `models:/reasongen-explain/...`, `runs:/...`, or a model folder."""
    from reasongen import tracking

    if tracking.is_model_uri(model):
        return tracking.load_registered_generator(model)
    return ExplainGenerator.from_dir(model)


def check_rows(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Request rows need non-empty user_id and item_id; the error names the bad rows."""
    bad = [i for i, r in enumerate(records) if not text_field(str(r.get("user_id") or "")) or
           not text_field(str(r.get("item_id") or ""))]
    if bad:
        raise ValueError(f"rows {bad} need non-empty 'user_id' and 'item_id' (feature is optional)")
    return records
