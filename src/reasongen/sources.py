"""Materialising the raw AdvertiseGen rows (shared copy, a user's JSON Lines file, or a hub dataset) as one file."""

from __future__ import annotations

import filecmp
import json
import os
import shutil
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from reasongen.paths import SHARED_ENV, shared_root

SOURCES = ("shared", "jsonl", "hub")
FIELDS = ("content", "summary")


def materialize(data_cfg: Any, out_path: Path) -> Path:
    """Write the raw rows the `data` config points at to out_path (untouched when its content is unchanged)."""
    out_path = Path(out_path)
    _publish(_writer(data_cfg), out_path)
    return out_path


def _writer(data_cfg: Any) -> Callable[[Path], object]:
    """A function that writes the configured source's rows to a given path."""
    source = data_cfg.source
    if source == "shared":
        return partial(shutil.copyfile, shared_file(data_cfg))
    if source == "jsonl":
        return partial(shutil.copyfile, user_jsonl(data_cfg))
    if source == "hub":
        return partial(write_records, load_hub(data_cfg.hub_id, data_cfg.hub_split))
    raise ValueError(f"data.source must be one of {', '.join(SOURCES)}, not {source!r}")


def shared_file(data_cfg: Any) -> Path:
    """The configured file under the shared root; a missing one says how to point the root elsewhere."""
    path = shared_root() / data_cfg.shared_file
    if not path.is_file():
        setting = os.environ.get(SHARED_ENV)
        where = f"{SHARED_ENV}={setting}" if setting else f"{SHARED_ENV} is unset, so the default ../shared is used"
        raise FileNotFoundError(
            f"shared input {path} not found ({where}); set {SHARED_ENV} to the folder holding "
            f"{data_cfg.shared_file}, or use data.source=jsonl / data.source=hub"
        )
    return path


def user_jsonl(data_cfg: Any) -> Path:
    """The user's own JSON Lines file named by data.jsonl_path."""
    if not data_cfg.jsonl_path:
        raise ValueError("data.source=jsonl needs data.jsonl_path=<your AdvertiseGen-format .jsonl file>")
    path = Path(data_cfg.jsonl_path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"data.jsonl_path {path} not found")
    return path


def load_hub(hub_id: str, split: str) -> Any:
    """A datasets.Dataset from a hub id, a `save_to_disk` folder, or a local JSON / JSON Lines file."""
    import datasets

    local = Path(hub_id).expanduser()
    if local.is_dir():
        loaded = datasets.load_from_disk(str(local))
        return loaded[split] if isinstance(loaded, datasets.DatasetDict) else loaded
    if local.is_file():
        # The file's rows become the configured split, so hub_split keeps one meaning for every kind of id.
        return datasets.load_dataset("json", data_files={split: str(local)}, split=split)
    return datasets.load_dataset(hub_id, split=split)


def write_records(dataset: Any, path: Path) -> None:
    """One JSON line per record with the keys content and summary; values pass through so prepare can judge them."""
    missing = [field for field in FIELDS if field not in dataset.column_names]
    if missing:
        raise ValueError(f"dataset has no column(s) {missing}; its columns are {dataset.column_names}")
    with open(path, "w", encoding="utf-8") as handle:
        for record in dataset.select_columns(list(FIELDS)):
            handle.write(json.dumps({field: record[field] for field in FIELDS}, ensure_ascii=False) + "\n")


def _publish(write: Callable[[Path], object], out_path: Path) -> bool:
    """Write via a temporary sibling and replace out_path only if the bytes differ; True when it changed."""
    out_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_path.with_name(out_path.name + ".tmp")
    try:
        write(tmp)
        if out_path.is_file() and filecmp.cmp(tmp, out_path, shallow=False):
            return False  # same bytes: keep the old file so its mtime and DVC's cached hash stay valid
        os.replace(tmp, out_path)
        return True
    finally:
        tmp.unlink(missing_ok=True)
