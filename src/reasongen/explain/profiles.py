"""Task B profiles, from training rows only: a user's most-mentioned features and rating habit, an item's
most-mentioned features and mean rating."""

from __future__ import annotations

import shutil
from collections import Counter, defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import Any

PROFILES_FILE = "profiles.json"  # the training profiles, shipped inside the model folder

Row = dict[str, Any]


def _profile(rows: list[Row], top_k: int) -> dict[str, Any]:
    counts = Counter(row["feature"] for row in rows)
    ratings = [float(row["rating"]) for row in rows]
    return {
        "features": [name for name, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:top_k]],
        "feature_counts": dict(sorted(counts.items())),
        "mean_rating": round(sum(ratings) / len(ratings), 2),
        "reviews": len(rows),
    }


def build_profiles(train_rows: Iterable[Row], top_k: int) -> dict[str, dict[str, dict[str, Any]]]:
    """{"users": {user: profile}, "items": {item: profile}} from the training rows given (and nothing else)."""
    by_user: dict[str, list[Row]] = defaultdict(list)
    by_item: dict[str, list[Row]] = defaultdict(list)
    for row in train_rows:
        by_user[row["user"]].append(row)
        by_item[row["item"]].append(row)
    return {
        "users": {user: _profile(rows, top_k) for user, rows in sorted(by_user.items())},
        "items": {item: _profile(rows, top_k) for item, rows in sorted(by_item.items())},
    }


def add_profiles(model_dir: Path, profiles_path: Path) -> None:
    """Ship the training profiles (pseudonymous) inside the model folder: the model needs them to write."""
    shutil.copy(profiles_path, model_dir / PROFILES_FILE)
