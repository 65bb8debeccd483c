"""The Task B model as an explanation writer: (user id, item id, optional feature) -> explanation; from a model folder
or a registered model."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from reasongen.explain import privacy
from reasongen.explain.decoding import length_floor
from reasongen.explain.profiles import PROFILES_FILE
from reasongen.explain.prompts import PROMPT_END, ProfilePrompter
from reasongen.io import read_json
from reasongen.metrics.explanation_features.explanation_features import feature_sets
from reasongen.modeling import model_io
from reasongen.modeling.generation import generate_candidates
from reasongen.rows import is_missing, text_field


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

    def prompts(self, rows: list[dict[str, Any]], use_feature: bool) -> list[str]:
        return [self.prompter.prompt({"user": self.user_key(str(row["user_id"])), "item": str(row["item_id"]),
                                      "feature": text_field(row.get("feature"))}, use_feature) for row in rows]

    def decode(self, prompts: list[str], cfg: dict[str, Any], progress: bool) -> list[list[str]]:
        """Candidates per prompt under cfg, with `min_new_tokens` enforced."""
        return generate_candidates(self.model, self.tokenizer, prompts, cfg, prompt_end=PROMPT_END,
                                   progress=progress,
                                   processors=lambda batch: length_floor(cfg, self.tokenizer.eos_token_id))

    def candidates(self, rows: list[dict[str, Any]], progress: bool = True, **overrides: Any) -> list[list[str]]:
        """Per row (feature given): the text of the configured decoding (greedy, or beam search with num_beams)
        first, then `feature_candidates` samples."""
        cfg = {**self.generation, **overrides}
        prompts = self.prompts(rows, True)
        heads = self.decode(prompts, {**cfg, "do_sample": False, "num_candidates": 1, "include_greedy": False},
                            progress)
        samples = self.decode(prompts, {**cfg, "do_sample": True, "num_beams": 1, "include_greedy": False,
                                        "num_candidates": int(cfg["feature_candidates"])}, progress)
        return [head + sampled for head, sampled in zip(heads, samples, strict=True)]

    def explain(self, rows: list[dict[str, Any]], use_feature: bool = True, progress: bool = True,
                vocabulary: Mapping[str, Sequence[str]] | None = None, **overrides: Any) -> list[str]:
        """One explanation per row. With a feature asked for and `feature_candidates` > 0, one of the greedy text
        and that many samples, chosen by `feature_choice` among those that name the feature (vocabulary: the
        features' surface forms; without it the feature word itself)."""
        cfg = {**self.generation, **overrides}
        if not use_feature or int(cfg.get("feature_candidates") or 0) < 1:
            single = {**cfg, "num_candidates": 1, "include_greedy": False}
            return [texts[0] for texts in self.decode(self.prompts(rows, use_feature), single, progress)]
        rule = cfg.get("feature_choice", "first")
        return [choose(texts, text_field(row.get("feature")), vocabulary, rule)
                for texts, row in zip(self.candidates(rows, progress, **overrides), rows, strict=True)]


def naming_feature(texts: Sequence[str], feature: str | None,
                   vocabulary: Mapping[str, Sequence[str]] | None = None) -> list[str]:
    """The texts that mention feature (as the FMR metric detects it), in order."""
    if not feature:
        return []
    forms = {feature: list((vocabulary or {}).get(feature) or [feature])}
    return [text for text, found in zip(texts, feature_sets(texts, forms), strict=True) if feature in found]


def consensus(texts: Sequence[str], pool: Sequence[str]) -> str:
    """The text whose word bigrams agree most with the pool's (minimum Bayes risk, gain = Dice overlap of bigram
    sets, so that length alone does not win): the candidates' consensus (ties: the first)."""
    def bigrams(text: str) -> set[tuple[str, str]]:
        words = text.split()
        return set(zip(words, words[1:], strict=False))

    def dice(a: set, b: set) -> float:
        return 2 * len(a & b) / (len(a) + len(b)) if a or b else 0.0

    pool_sets = [bigrams(text) for text in pool]
    return max(texts, key=lambda text: sum(dice(bigrams(text), other) for other in pool_sets))


FEATURE_CHOICES = ("first", "longest", "consensus")


def choose(texts: Sequence[str], feature: str | None, vocabulary: Mapping[str, Sequence[str]] | None = None,
           rule: str = "first") -> str:
    """One of texts (the greedy text first): among those that name feature, the first, the longest (most words;
    ties: the first) or the consensus; the greedy text when none does."""
    if not texts:
        return ""
    naming = naming_feature(texts, feature, vocabulary)
    if not naming:
        return texts[0]
    if rule == "first":
        return naming[0]
    if rule == "longest":
        return max(naming, key=lambda text: len(text.split()))
    if rule == "consensus":
        return consensus(naming, texts)
    raise ValueError(f"explain.generation.feature_choice={rule!r}: one of {', '.join(FEATURE_CHOICES)}")


def load_explainer(model: str, trust_remote_code: bool = False) -> ExplainGenerator:
    """An ExplainGenerator from `models:/reasongen-explain/...`, `runs:/...`, or a model folder."""
    from reasongen import tracking

    if tracking.is_model_uri(model):
        return tracking.load_registered_generator(model, trust_remote_code)
    return ExplainGenerator.from_dir(model, trust_remote_code=trust_remote_code)


def request_row(record: dict[str, Any]) -> dict[str, Any]:
    """{user_id, item_id, feature} from a request or an input-file record, or ValueError saying what is wrong:
    user_id and item_id are non-empty strings (or numbers), feature a feature name or left out (shared by the CLI
    and serving)."""
    row: dict[str, Any] = {}
    for field in ("user_id", "item_id"):
        value = record.get(field)
        if isinstance(value, bool) or not isinstance(value, str | int) or not str(value).strip():
            raise ValueError(f'needs a non-empty "{field}" (user_id and item_id are required, feature is optional)')
        row[field] = str(value).strip()
    feature = record.get("feature")
    if not is_missing(feature) and not isinstance(feature, str):
        raise ValueError(f"feature {feature!r}: a feature name such as sound, or left out")
    return {**row, "feature": text_field(feature)}
