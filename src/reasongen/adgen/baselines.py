"""Model-free baselines: nearest training row by attribute overlap, and a fill-in template."""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any, Protocol

from reasongen.text.attributes import Attributes, parse_content

Row = dict[str, Any]


class Baseline(Protocol):
    def predict(self, row: Row) -> str: ...


def predict_all(baseline: Baseline, rows: list[Row]) -> list[str]:
    """baseline's text for each row, in order."""
    return [baseline.predict(row) for row in rows]


class RetrievalBaseline:
    """The summary of the training row whose (key, value) pairs overlap most (Jaccard); ties: the earliest row."""

    def __init__(self, train_rows: list[Row]) -> None:
        if not train_rows:
            raise ValueError("RetrievalBaseline needs at least one training row")
        self.rows = train_rows
        self.pair_sets = [frozenset(parse_content(row["content"])) for row in train_rows]
        # inverted index: only rows sharing a pair can beat Jaccard 0
        self.index: dict[tuple[str, str], list[int]] = defaultdict(list)
        for position, pairs in enumerate(self.pair_sets):
            for pair in pairs:
                self.index[pair].append(position)

    def nearest(self, row: Row) -> int:
        """Position of the best-matching training row, never the row itself (same `id`)."""
        return self.ranked(row, 1)[0]

    def ranked(self, row: Row, k: int) -> list[int]:
        """Positions of the k best-matching training rows, best first (ties: the earliest), never the row itself;
        rows sharing no pair only when none does."""
        query = frozenset(parse_content(row["content"]))
        own_id = row.get("id")
        shared = Counter(position for pair in query for position in self.index.get(pair, ()))
        scores = {
            position: overlap / (len(query) + len(self.pair_sets[position]) - overlap)
            for position, overlap in shared.items()
            if not self._is_own(position, own_id)
        }
        if scores:
            return sorted(scores, key=lambda position: (-scores[position], position))[:k]
        # nothing shared: every row scores 0, so the earliest one that is not the row itself
        fallback = next((p for p in range(len(self.rows)) if not self._is_own(p, own_id)), None)
        if fallback is None:
            raise ValueError(f"RetrievalBaseline: no training row other than {own_id!r} itself")
        return [fallback]

    def _is_own(self, position: int, own_id: Any) -> bool:
        return own_id is not None and self.rows[position].get("id") == own_id

    def predict(self, row: Row) -> str:
        return self.rows[self.nearest(row)]["summary"]


class TemplateBaseline:
    """A fixed fill-in sentence that names every attribute value verbatim once (coverage 100%, no claims)."""

    TYPE_KEY = "类型"
    PHRASES = {"类型": "这款{}", "风格": "{}风格", "材质": "采用{}面料", "颜色": "{}配色", "图案": "{}元素",
               "版型": "{}版型"}
    OTHER = "{}设计"  # 裙款式 / 衣领型 / 裤长 / ...: "拼接设计", "v领设计", "九分裤设计"
    CLOSING = "细节处理用心，上身自然大方，日常穿着轻松有型。"

    def predict(self, row: Row) -> str:
        pairs = parse_content(row["content"])
        kinds = [value for key, value in pairs if key == self.TYPE_KEY]
        opening = "这款" + ("、".join(dict.fromkeys(kinds)) or "单品")
        return "，".join([opening, *self.phrases(pairs), self.CLOSING])

    def phrases(self, pairs: Attributes, keep_type: bool = False) -> list[str]:
        """One phrase per distinct value, in input order (a value under two keys is named once); type values
        are left to the opening unless keep_type."""
        first_key: dict[str, str] = {}
        for key, value in pairs:
            if key != self.TYPE_KEY or keep_type:
                first_key.setdefault(value, key)
        return [self.PHRASES.get(key, self.OTHER).format(value) for value, key in first_key.items()]
