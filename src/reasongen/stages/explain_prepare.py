"""DVC stage `explain_prepare` (Task B): validate and quarantine review rows, pseudonymise users, mine the feature
vocabulary, extract (user, item, rating, feature, explanation) tuples, split 8:1:1 and build profiles from train."""

from __future__ import annotations

import random
import time
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from reasongen.explain import extraction, privacy
from reasongen.explain.profiles import build_profiles
from reasongen.explain.split import split_rows
from reasongen.io import sha256_file, write_json, write_jsonl
from reasongen.paths import shared_root
from reasongen.stages.prepare import RowError, decode_object, normalize_text, quarantine_stats, validate_lines

OUT_DIR = Path("outputs/explain/prepare")
SPLITS = ("train", "val", "test")
TUPLE_FIELDS = ("id", "user", "item", "rating", "feature", "explanation")


def raw_path(data_cfg: Any) -> Path:
    """The gzipped reviews under the shared root (an absolute shared_file is taken as is)."""
    return shared_root() / data_cfg.shared_file


def review_row(line: bytes, number: int, salt: str) -> dict[str, Any]:
    """One valid review: pseudonymous user, item, rating, normalised text (reviewerName and the rest dropped)."""
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
    return {"id": f"L{number}", "user": privacy.pseudonym(row["reviewerID"].strip(), salt),
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


def run(cfg: DictConfig, out_dir: Path = OUT_DIR) -> dict[str, Any]:
    """Write out_dir/{train,val,test}.jsonl, quarantine.jsonl, features.json, profiles.json, split_manifest.json
    and stats.json."""
    started = time.perf_counter()
    task = cfg.explain
    path = raw_path(task.data)
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: set REASONGEN_SHARED or explain.data.shared_file")
    digest = sha256_file(path)
    if task.data.sha256 and digest != task.data.sha256:
        raise ValueError(f"{path}: sha256 {digest} is not the pinned explain.data.sha256 {task.data.sha256}")
    salt = privacy.salt()
    rows_in, reviews, quarantined = validate_lines(
        path, task.data.max_rows, lambda line, number: review_row(line, number, salt), desc="explain_prepare")
    for record in quarantined:  # no raw reviewer id or name leaves this stage
        record["raw"] = privacy.redact(record["raw"], salt)

    lexicon = extraction.default_lexicon()
    vocabulary = extraction.mine_vocabulary((r["text"] for r in reviews), lexicon,
                                            task.extraction.min_feature_count)
    tuples = extract_tuples(reviews, lexicon.restricted(vocabulary), task.extraction)
    indices = split_rows(tuples, task.split.val, task.split.test, task.split.seed)
    splits = {name: [tuples[i] for i in indices[name]] for name in SPLITS}
    profiles = build_profiles(splits["train"], task.profiles.top_features)

    out_dir.mkdir(parents=True, exist_ok=True)
    for name, rows in splits.items():
        write_jsonl(out_dir / f"{name}.jsonl", rows)
    write_jsonl(out_dir / "quarantine.jsonl", quarantined)
    write_json(out_dir / "features.json", {
        "reviews": vocabulary,  # how many reviews mention each feature
        "forms": {name: [" ".join(form) for form in lexicon.features[name]] for name in vocabulary},
    })
    write_json(out_dir / "profiles.json", profiles)
    stats = {
        **quarantine_stats(rows_in, reviews, quarantined),
        "tuples": len(tuples),
        "tuple_rate": round(100 * len(tuples) / len(reviews), 2) if reviews else 0.0,
        "features": len(vocabulary),
        "users": len({t["user"] for t in tuples}),
        "items": len({t["item"] for t in tuples}),
        "splits": {name: {"rows": len(rows), "users": len({r["user"] for r in rows}),
                          "items": len({r["item"] for r in rows})} for name, rows in splits.items()},
    }
    write_json(out_dir / "stats.json", stats)
    write_json(out_dir / "split_manifest.json", {
        "seed": task.split.seed, "fractions": {"val": task.split.val, "test": task.split.test},
        "raw_sha256": digest, "sha256": {name: sha256_file(out_dir / f"{name}.jsonl") for name in SPLITS},
        "ids": {name: [row["id"] for row in rows] for name, rows in splits.items()},
    })
    (out_dir / "tuples_sample.md").write_text(sample_table(tuples, stats, task.split.seed), encoding="utf-8")
    sizes = "/".join(str(len(splits[name])) for name in SPLITS)
    print(f"explain_prepare: {rows_in} rows in, {len(reviews)} kept, {len(quarantined)} quarantined; "
          f"{len(tuples)} tuples ({stats['tuple_rate']}%), {len(vocabulary)} features; train/val/test {sizes} "
          f"-> {out_dir} in {time.perf_counter() - started:.1f}s")
    return stats
