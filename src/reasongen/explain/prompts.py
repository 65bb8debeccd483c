"""Task B prompt: user profile + item profile (+ feature) -> `... | explanation:`, followed by the explanation."""

from __future__ import annotations

import random
from typing import Any

PROMPT_END = " | explanation:"
UNKNOWN = "unknown"


def describe(profile: dict[str, Any] | None) -> str:
    """`tone, strings, price (4.6)`: most-mentioned features and mean rating (an unseen user or item: `unknown`)."""
    if not profile:
        return UNKNOWN
    return f"{', '.join(profile['features']) or 'none'} ({profile['mean_rating']:.1f})"


def build_prompt(user_profile: dict[str, Any] | None, item_profile: dict[str, Any] | None,
                 feature: str | None = None) -> str:
    """`user: ... | item: ... [| feature: tone] | explanation:`; without a feature, the (b) setting."""
    parts = [f"user: {describe(user_profile)}", f"item: {describe(item_profile)}"]
    if feature:
        parts.append(f"feature: {feature}")
    return " | ".join(parts) + PROMPT_END


class ProfilePrompter:
    """Builds prompts for rows with `user`, `item` and optional `feature` from the training profiles."""

    def __init__(self, profiles: dict[str, dict[str, dict[str, Any]]]):
        self.users = profiles["users"]
        self.items = profiles["items"]

    def prompt(self, row: dict[str, Any], use_feature: bool = True) -> str:
        feature = row.get("feature") if use_feature else None
        return build_prompt(self.users.get(row["user"]), self.items.get(row["item"]), feature)

    def with_dropout(self, row: dict[str, Any], rng: random.Random, feature_dropout: float) -> str:
        """The training prompt: the feature is left out with probability feature_dropout, so that one model
        serves both (a) feature given and (b) no feature."""
        return self.prompt(row, use_feature=rng.random() >= feature_dropout)
