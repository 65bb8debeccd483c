"""Task B rows: a raw Amazon review line -> a review (raw user id, in memory only); reviews -> (user, item,
feature, explanation) tuples; a Markdown sample of them."""

from __future__ import annotations

import random
from typing import Any

from reasongen.explain import extraction
from reasongen.rows import RowError, decode_object, normalize_text


def review_row(line: bytes, number: int) -> dict[str, Any]:
    """One valid review: raw user id (pseudonymised by the stage after the split), item, rating, normalised text
    (reviewerName and the rest dropped)."""
    row = decode_object(line)
    for field, kinds in (("reviewerID", str), ("asin", str), ("reviewText", str), ("overall", (int, float))):
        if field not in row:
            raise RowError("missing field", field)
        if not isinstance(row[field], kinds) or isinstance(row[field], bool):
            raise RowError("wrong type", f"{field} is a {type(row[field]).__name__}")
    for field in ("reviewerID", "asin"):
        if not row[field].strip():
            raise RowError("empty id", field)
    if not 1 <= row["overall"] <= 5:
        raise RowError("rating out of range", f"overall={row['overall']} not in 1..5")
    return {"id": f"L{number}", "user": row["reviewerID"].strip(),
            "item": row["asin"].strip(), "rating": float(row["overall"]), "text": normalize_text(row["reviewText"])}


def extract_tuples(reviews: list[dict[str, Any]], lexicon: extraction.Lexicon, extraction_cfg: Any) -> list[dict]:
    """The reviews that yield an explanation, as tuples (the review text itself is not kept)."""
    tuples = []
    for review in reviews:
        found = extraction.extract(review["text"], lexicon, min_words=extraction_cfg.min_words,
                                   max_words=extraction_cfg.max_words, window=extraction_cfg.opinion_window)
        if found:
            tuples.append({key: review[key] for key in ("id", "user", "item", "rating")} | found)
    return tuples


def sample_table(tuples: list[dict[str, Any]], stats: dict[str, Any], seed: int, n: int = 20) -> str:
    """n tuples drawn with `seed`, as Markdown (pseudonymous user ids only): what docs/explain_tuples.md shows."""
    chosen = sorted(random.Random(seed).sample(range(len(tuples)), min(n, len(tuples))))
    lines = [f"{stats['tuples']} of {stats['kept']} valid reviews ({stats['tuple_rate']}%) yield a tuple; "
             f"{len(chosen)} drawn at random (seed {seed}):", "",
             "| review | user (pseudonym) | item | rating | feature | explanation |", "|---|---|---|---|---|---|"]
    lines += [f"| {t['id']} | {t['user']} | {t['item']} | {t['rating']:g} | {t['feature']} | {t['explanation']} |"
              for t in (tuples[i] for i in chosen)]
    return "\n".join(lines) + "\n"
