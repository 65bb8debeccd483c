"""System (d): retrieval. The training explanation of the most similar user-item pair: among training rows of the
same user or the same item, the one maximising cos(user profiles) + cos(item profiles) (feature-count vectors)."""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from typing import Any

Row = dict[str, Any]


def cosine(a: Counter, b: Counter) -> float:
    dot = sum(count * b[key] for key, count in a.items())
    norm = math.sqrt(sum(v * v for v in a.values())) * math.sqrt(sum(v * v for v in b.values()))
    return dot / norm if norm else 0.0


class ProfileRetrieval:
    def __init__(self, train_rows: list[Row], profiles: dict[str, dict[str, dict[str, Any]]]) -> None:
        if not train_rows:
            raise ValueError("ProfileRetrieval needs at least one training row")
        self.rows = train_rows
        self.users = {user: Counter(p["feature_counts"]) for user, p in profiles["users"].items()}
        self.items = {item: Counter(p["feature_counts"]) for item, p in profiles["items"].items()}
        self.by_user: dict[str, list[int]] = defaultdict(list)
        self.by_item: dict[str, list[int]] = defaultdict(list)
        for position, row in enumerate(train_rows):
            self.by_user[row["user"]].append(position)
            self.by_item[row["item"]].append(position)

    def similarity(self, row: Row, position: int) -> float:
        other = self.rows[position]
        empty = Counter()
        return (cosine(self.users.get(row["user"], empty), self.users.get(other["user"], empty))
                + cosine(self.items.get(row["item"], empty), self.items.get(other["item"], empty)))

    def nearest(self, row: Row) -> int:
        """Position of the most similar training pair (ties: the earliest); no shared user or item: row 0."""
        candidates = sorted(set(self.by_user.get(row["user"], ())) | set(self.by_item.get(row["item"], ())))
        if not candidates:
            return 0
        return max(candidates, key=lambda position: self.similarity(row, position))

    def predict(self, row: Row) -> str:
        return self.rows[self.nearest(row)]["explanation"]
