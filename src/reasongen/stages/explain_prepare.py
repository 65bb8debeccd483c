"""DVC stage `explain_prepare` (Task B): validate and quarantine review rows, mine the feature vocabulary (or read
the lexicon `explain.extraction.lexicon` names), extract (user, item, rating, feature, explanation) tuples, split
8:1:1 on the raw ids, pseudonymise users and build profiles from train."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from reasongen.explain import extraction, privacy
from reasongen.explain.profiles import build_profiles
from reasongen.explain.reviews import extract_tuples, review_row, sample_table
from reasongen.explain.split import split_rows
from reasongen.io import sha256_file, write_json, write_jsonl
from reasongen.paths import shared_root
from reasongen.rows import check_kept, quarantine_stats, validate_lines

OUT_DIR = Path("outputs/explain/prepare")
SPLITS = ("train", "val", "test")


def raw_path(data_cfg: Any) -> Path:
    """The gzipped reviews under the shared root (an absolute shared_file is taken as is)."""
    return shared_root() / data_cfg.shared_file


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
    rows_in, reviews, quarantined = validate_lines(path, task.data.max_rows, review_row, desc="explain_prepare")
    # no raw reviewer id or name leaves this stage: reviews keep raw ids in memory only, until after the split
    quarantined = [privacy.redact_quarantined(record, salt) for record in quarantined]
    write_jsonl(out_dir / "quarantine.jsonl", quarantined)  # first: a stop below leaves the reasons behind
    accounting = quarantine_stats(rows_in, reviews, quarantined)
    check_kept(accounting, task.data.max_quarantined_share, path, out_dir / "quarantine.jsonl",
               "explain.data.max_quarantined_share")

    lexicon = extraction.candidate_lexicon([r["text"] for r in reviews], task.extraction)
    vocabulary = extraction.mine_vocabulary((r["text"] for r in reviews), lexicon,
                                            task.extraction.min_feature_count)
    tuples = extract_tuples(reviews, lexicon.restricted(vocabulary), task.extraction)
    indices = split_rows(tuples, task.split.val, task.split.test, task.split.seed)  # on raw ids: salt-free
    tuples = privacy.pseudonymise(tuples, salt)
    splits = {name: [tuples[i] for i in indices[name]] for name in SPLITS}
    profiles = build_profiles(splits["train"], task.profiles.top_features)

    for name, rows in splits.items():
        write_jsonl(out_dir / f"{name}.jsonl", rows)
    write_json(out_dir / "features.json", {
        "reviews": vocabulary,  # how many reviews mention each feature
        "forms": {name: [" ".join(form) for form in lexicon.features[name]] for name in vocabulary},
    })
    write_json(out_dir / "profiles.json", profiles)
    stats = {
        **accounting,
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
