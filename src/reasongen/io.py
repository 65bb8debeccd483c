"""Reading and writing the files that stages exchange: JSON, JSON Lines, loss curves as CSV."""

from __future__ import annotations

import csv
import hashlib
import json
import os
import shutil
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


def read_jsonl(path: str | Path) -> list[dict[str, Any]]:
    """All rows of a JSON Lines file (blank lines skipped)."""
    return list(iter_jsonl(path))


def iter_jsonl(path: str | Path) -> Iterator[dict[str, Any]]:
    """Rows of a JSON Lines file, one at a time; a bad line raises ValueError naming file and line."""
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                yield json.loads(line)
            except json.JSONDecodeError as error:
                raise ValueError(f"{path}:{number}: not valid JSON ({error.msg})") from error


def write_jsonl(path: str | Path, rows: Iterable[dict[str, Any]]) -> int:
    """Write rows as UTF-8 JSON Lines (parents created); returns the row count."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    count = 0
    with open(path, "w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")
            count += 1
    return count


def write_json(path: str | Path, data: Any) -> None:
    """Write pretty UTF-8 JSON (parents created)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, ensure_ascii=False, indent=2, sort_keys=False) + "\n", encoding="utf-8")


@contextmanager
def atomic_folder(folder: str | Path) -> Iterator[Path]:
    """Yields a scratch folder beside `folder` to write into; on success it takes folder's place by renames, so that
    a kill at any moment leaves the old folder or the new one whole, never a half-written one under the name. A
    scratch folder left by a killed writer is removed by the next one."""
    folder = Path(folder)
    scratch, old = folder.with_name(f".{folder.name}.partial"), folder.with_name(f".{folder.name}.old")
    folder.parent.mkdir(parents=True, exist_ok=True)
    if old.exists() and not folder.exists():  # killed between the two renames: the old folder is whole
        os.replace(old, folder)
    for leftover in (scratch, old):
        shutil.rmtree(leftover, ignore_errors=True)
    scratch.mkdir()
    try:
        yield scratch
    except BaseException:
        shutil.rmtree(scratch, ignore_errors=True)
        raise
    if folder.exists():
        os.replace(folder, old)  # a folder cannot be renamed over a non-empty one: move the old one aside first
    os.replace(scratch, folder)
    shutil.rmtree(old, ignore_errors=True)


def read_json(path: str | Path) -> Any:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def sha256_file(path: str | Path) -> str:
    """Hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def sha256_tree(*paths: str | Path) -> str:
    """Hex sha256 over files and folders (every file below, in sorted order, with its relative name): a stage's
    input identity, so that a resumed checkpoint always belongs to the same inputs."""
    digest = hashlib.sha256()
    for root in map(Path, paths):
        files = sorted(f for f in root.rglob("*") if f.is_file()) if root.is_dir() else [root]
        for file in files:
            digest.update(f"{file.relative_to(root.parent)}\0{sha256_file(file)}\0".encode())
    return digest.hexdigest()


CURVES = ("train_loss", "val_loss")


def write_curves(folder: Path, points: dict[str, list[tuple[int, float]]]) -> None:
    """Loss curves as one `<name>.csv` (step, value) per curve: what dvc plots and the MLflow recorder read."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, values in points.items():
        with open(folder / f"{name}.csv", "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(["step", name])
            writer.writerows(values)


def read_curves(folder: Path) -> dict[str, list[tuple[int, float]]]:
    """The curves write_curves left in folder (missing files: no points)."""
    curves: dict[str, list[tuple[int, float]]] = {}
    for name in CURVES:
        path = folder / f"{name}.csv"
        if path.exists():
            with open(path, encoding="utf-8") as handle:
                curves[name] = [(int(row["step"]), float(row[name])) for row in csv.DictReader(handle)]
    return curves
