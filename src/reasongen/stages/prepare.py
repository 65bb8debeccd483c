"""DVC stage `prepare`: validate and normalise raw rows, quarantine bad ones, split by attribute set, add controls."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from reasongen.adgen import dataset
from reasongen.io import write_json, write_jsonl
from reasongen.rows import check_kept, mean, quarantine_stats, split_groups, validate_lines

RAW_PATH = Path("data/advertisegen.jsonl")
OUT_DIR = Path("outputs/prepare")


def run(cfg: DictConfig, raw_path: Path = RAW_PATH, out_dir: Path = OUT_DIR) -> dict[str, Any]:
    """Prepare raw_path into out_dir/{train,val,test}.jsonl, quarantine.jsonl, stats.json and split_manifest.json."""
    data_cfg, raw_path, out_dir = cfg.data, Path(raw_path), Path(out_dir)
    if not raw_path.is_file():
        raise FileNotFoundError(f"raw data {raw_path} not found: run `make data` (or `reasongen data`) first")
    started = time.perf_counter()
    rows_in, kept, quarantined = validate_lines(
        raw_path, data_cfg.max_rows, lambda line, number: dataset.prepare_row(line, number, data_cfg))
    write_jsonl(out_dir / "quarantine.jsonl", quarantined)  # first: a stop below leaves the reasons behind
    accounting = quarantine_stats(rows_in, kept, quarantined)
    check_kept(accounting, data_cfg.max_quarantined_share, raw_path, out_dir / "quarantine.jsonl",
               "data.max_quarantined_share")

    split_cfg = data_cfg.split
    assignment = split_groups((row["group"] for row in kept), split_cfg.val, split_cfg.test, split_cfg.seed)
    split_of = {key: name for name, keys in assignment.items() for key in keys}
    splits = {name: [row for row in kept if split_of[row["group"]] == name] for name in dataset.SPLITS}

    for name, rows in splits.items():
        write_jsonl(out_dir / f"{name}.jsonl", rows)
    stats = {
        **accounting,
        "groups": len(split_of),
        "mean_summary_chars": mean(len(row["summary"]) for row in kept),
        "splits": {name: dataset.split_stats(rows) for name, rows in splits.items()},
    }
    write_json(out_dir / "stats.json", stats)
    write_json(out_dir / "split_manifest.json", dataset.manifest(raw_path, out_dir, split_cfg, assignment))
    print(dataset.summary_line(stats, out_dir, time.perf_counter() - started))
    return stats
