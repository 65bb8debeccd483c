"""Task B split: 8:1:1 by a fixed seed, every validation and test user and item also in training (as PETER)."""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any


def split_rows(rows: Sequence[dict[str, Any]], val: float, test: float, seed: int) -> dict[str, list[int]]:
    """Row indices per split. Rows are shuffled with `seed`; the first row of every user and every item (in that
    order) goes to train, then test and val are cut from the remaining rows to their share of all rows."""
    if val < 0 or test < 0 or val + test >= 1:
        raise ValueError(f"split fractions need 0 <= val, test and val + test < 1 (got val={val}, test={test})")
    order = list(range(len(rows)))
    random.Random(seed).shuffle(order)
    users: set[str] = set()
    items: set[str] = set()
    anchors: list[int] = []
    rest: list[int] = []
    for index in order:
        user, item = rows[index]["user"], rows[index]["item"]
        if user in users and item in items:
            rest.append(index)
        else:
            anchors.append(index)
            users.add(user)
            items.add(item)
    n_test, n_val = round(len(rows) * test), round(len(rows) * val)
    if n_test + n_val > len(rest):
        raise ValueError(f"{len(rows)} rows cannot give {n_test} test + {n_val} val rows whose users and items "
                         f"are all in training ({len(anchors)} rows are needed in training for that)")
    return {
        "train": sorted(anchors + rest[n_test + n_val :]),
        "val": sorted(rest[n_test : n_test + n_val]),
        "test": sorted(rest[:n_test]),
    }
