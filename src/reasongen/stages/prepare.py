"""DVC stage `prepare`: validate and normalise raw rows, quarantine bad ones, split by attribute set, add controls."""

from __future__ import annotations

import gzip
import json
import random
import re
import time
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from itertools import islice
from pathlib import Path
from typing import Any

from omegaconf import DictConfig
from tqdm import tqdm

from reasongen import controls
from reasongen.attributes import Attributes, attribute_set_key, format_content, parse_content, values
from reasongen.io import sha256_file, write_json, write_jsonl

RAW_PATH = Path("data/advertisegen.jsonl")
OUT_DIR = Path("outputs/prepare")
SPLITS = ("train", "val", "test")
FIELDS = ("content", "summary")
UNK = "<UNK>"
RAW_PREVIEW_CHARS = 500
NO_ASPECT = "none"
_WHITESPACE = re.compile(r"\s+")
# Cc: C0/C1 controls left after whitespace collapsing; Cs: lone surrogates (JSON "\ud800"), which cannot be written.
_BAD_CATEGORIES = ("Cc", "Cs")


class RowError(ValueError):
    """A raw row that cannot be used: `reason` is a short category (counted in stats), `detail` the specifics."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


def normalize_text(text: str) -> str:
    """Unicode NFC, strip, and collapse every internal whitespace run to one space."""
    return _WHITESPACE.sub(" ", unicodedata.normalize("NFC", text)).strip()


def normalize_summary(text: str) -> str:
    """normalize_text after dropping the literal `<UNK>` placeholder.

    `<UNK>` marks characters lost in the dataset's original processing; kept, it would teach the model to write it.
    """
    return normalize_text(text.replace(UNK, ""))


def decode_object(line: bytes) -> dict[str, Any]:
    """One raw line as a JSON object; RowError says why it is not one (shared by every task's prepare stage)."""
    if not line.strip():
        raise RowError("blank line")
    try:
        text = line.decode("utf-8-sig")  # -sig: a byte-order mark at the start of the file is not an error
    except UnicodeDecodeError as error:
        raise RowError("invalid utf-8", str(error)) from error
    try:
        row = json.loads(text)
    except json.JSONDecodeError as error:
        raise RowError("invalid json", f"{error.msg} at column {error.colno}") from error
    if not isinstance(row, dict):
        raise RowError("not an object", f"a JSON {type(row).__name__}")
    return row


def decode_row(line: bytes) -> dict[str, str]:
    """The content and summary strings of one raw line; RowError says why there are none."""
    row = decode_object(line)
    for field in FIELDS:
        if field not in row:
            raise RowError("missing field", field)
        if not isinstance(row[field], str):
            raise RowError("wrong type", f"{field} is a {type(row[field]).__name__}, not a string")
    return {field: row[field] for field in FIELDS}


def clean_row(row: dict[str, str], data_cfg: Any) -> tuple[str, Attributes]:
    """The normalised summary and attribute pairs of a decoded row, checked against the configured limits."""
    content, summary = normalize_text(row["content"]), normalize_summary(row["summary"])
    for field, text in (("content", content), ("summary", summary)):
        bad = sorted({f"U+{ord(char):04X}" for char in text if unicodedata.category(char) in _BAD_CATEGORIES})
        if bad:
            raise RowError("control characters", f"{field} has {', '.join(bad)}")
    if len(content) > data_cfg.max_content_chars:
        raise RowError("content too long", f"{len(content)} > {data_cfg.max_content_chars} chars")
    try:
        pairs = parse_content(content)
    except ValueError as error:
        raise RowError("bad attributes", str(error)) from error
    if len(summary) < data_cfg.min_summary_chars:
        raise RowError("summary too short", f"{len(summary)} < {data_cfg.min_summary_chars} chars")
    if len(summary) > data_cfg.max_summary_chars:
        raise RowError("summary too long", f"{len(summary)} > {data_cfg.max_summary_chars} chars")
    return summary, pairs


def control_signals(summary: str, pairs: Attributes, controls_cfg: Any) -> dict[str, Any]:
    """The aspect, length bucket and must-mention keywords a training row is conditioned on."""
    return {
        "aspect": controls.primary_aspect(summary),
        "length_bucket": controls.length_bucket(len(summary), controls_cfg.length_bounds),
        # Attribute values are already in the input, so they make no informative keyword.
        "keywords": controls.extract_keywords(summary, exclude=values(pairs), k=controls_cfg.n_keywords),
    }


def prepare_row(line: bytes, number: int, data_cfg: Any) -> dict[str, Any]:
    """One prepared row from raw line `number` (1-based), or RowError."""
    summary, pairs = clean_row(decode_row(line), data_cfg)
    return {
        "id": f"L{number}",
        "line": number,
        "content": format_content(pairs),
        "summary": summary,
        "attributes": [list(pair) for pair in pairs],
        "group": attribute_set_key(pairs),
        **control_signals(summary, pairs, data_cfg.controls),
    }


def quarantine_record(line: bytes, number: int, error: RowError) -> dict[str, Any]:
    """What the quarantine file keeps of a rejected line."""
    raw = line.rstrip(b"\r\n").decode("utf-8", errors="replace")[:RAW_PREVIEW_CHARS]
    return {"line": number, "reason": error.reason, "detail": error.detail, "raw": raw}


def split_groups(keys: Iterable[str], val: float, test: float, seed: int) -> dict[str, list[str]]:
    """Assign attribute-set keys to splits: sort, shuffle with `seed`, cut test then val off the front.

    With at least 3 groups every split with a positive fraction gets at least one group, and train keeps one.
    """
    if val < 0 or test < 0 or val + test >= 1:
        raise ValueError(f"split fractions need 0 <= val, test and val + test < 1 (got val={val}, test={test})")
    ordered = sorted(set(keys))
    random.Random(seed).shuffle(ordered)
    n_test, n_val = _cut_size(len(ordered), test), _cut_size(len(ordered), val)
    return {
        "train": sorted(ordered[n_test + n_val :]),
        "val": sorted(ordered[n_test : n_test + n_val]),
        "test": sorted(ordered[:n_test]),
    }


def _cut_size(n_groups: int, fraction: float) -> int:
    """How many of n_groups a held-out fraction gets (at least one when there are three or more groups)."""
    size = round(n_groups * fraction)
    return max(size, 1) if fraction > 0 and n_groups >= 3 else size


def read_lines(raw_path: Path, max_rows: int | None) -> Iterator[bytes]:
    """The raw file's physical lines as bytes (newline kept), only the first max_rows when set; `.gz` is
    decompressed on the fly."""
    opener = gzip.open if Path(raw_path).suffix == ".gz" else open
    with opener(raw_path, "rb") as handle:
        yield from islice(handle, max_rows)


def count_lines(raw_path: Path, max_rows: int | None) -> int:
    """Physical lines in (the first max_rows of) the raw file: the rows-in figure, counted independently."""
    return sum(1 for _ in read_lines(raw_path, max_rows))


def validate_lines(
    raw_path: Path,
    max_rows: int | None,
    prepare: Callable[[bytes, int], dict[str, Any]],
    desc: str = "prepare",
) -> tuple[int, list[dict[str, Any]], list[dict[str, Any]]]:
    """(rows in, kept, quarantined): every raw line either prepared by `prepare(line, number)` or recorded with
    its RowError reason, in file order; raises if rows in != kept + quarantined (nothing may be lost)."""
    rows_in = count_lines(raw_path, max_rows)
    kept: list[dict[str, Any]] = []
    quarantined: list[dict[str, Any]] = []
    lines = read_lines(raw_path, max_rows)
    for number, line in enumerate(tqdm(lines, total=rows_in, desc=desc, unit="row", mininterval=0.5), start=1):
        try:
            kept.append(prepare(line, number))
        except RowError as error:
            quarantined.append(quarantine_record(line, number, error))
    if rows_in != len(kept) + len(quarantined):
        raise RuntimeError(f"{raw_path}: {rows_in} rows in but {len(kept)} kept + {len(quarantined)} quarantined")
    return rows_in, kept, quarantined


def quarantine_stats(rows_in: int, kept: Sequence[Any], quarantined: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The accounting every prepare stage reports first: rows in = kept + quarantined, and why rows were refused."""
    return {
        "rows_in": rows_in,
        "kept": len(kept),
        "quarantined": len(quarantined),
        "quarantine_reasons": dict(sorted(Counter(record["reason"] for record in quarantined).items())),
    }


def split_stats(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Rows, groups, mean summary length and control distributions of one split (every key always present)."""
    aspects = Counter(row["aspect"] or NO_ASPECT for row in rows)
    buckets = Counter(row["length_bucket"] for row in rows)
    return {
        "rows": len(rows),
        "groups": len({row["group"] for row in rows}),
        "mean_summary_chars": _mean(len(row["summary"]) for row in rows),
        "aspects": {name: aspects[name] for name in (*controls.aspect_lexicon(), NO_ASPECT)},
        "length_buckets": {name: buckets[name] for name in controls.LENGTH_BUCKETS},
    }


def _mean(numbers: Iterable[int]) -> float:
    numbers = list(numbers)
    return round(sum(numbers) / len(numbers), 2) if numbers else 0.0


def run(cfg: DictConfig, raw_path: Path = RAW_PATH, out_dir: Path = OUT_DIR) -> dict[str, Any]:
    """Prepare raw_path into out_dir/{train,val,test}.jsonl, quarantine.jsonl, stats.json and split_manifest.json."""
    data_cfg, raw_path, out_dir = cfg.data, Path(raw_path), Path(out_dir)
    if not raw_path.is_file():
        raise FileNotFoundError(f"raw data {raw_path} not found: run `make data` (or `reasongen data`) first")
    started = time.perf_counter()
    rows_in, kept, quarantined = validate_lines(
        raw_path, data_cfg.max_rows, lambda line, number: prepare_row(line, number, data_cfg))

    split_cfg = data_cfg.split
    assignment = split_groups((row["group"] for row in kept), split_cfg.val, split_cfg.test, split_cfg.seed)
    split_of = {key: name for name, keys in assignment.items() for key in keys}
    splits = {name: [row for row in kept if split_of[row["group"]] == name] for name in SPLITS}

    out_dir.mkdir(parents=True, exist_ok=True)
    for name, rows in splits.items():
        write_jsonl(out_dir / f"{name}.jsonl", rows)
    write_jsonl(out_dir / "quarantine.jsonl", quarantined)
    stats = {
        **quarantine_stats(rows_in, kept, quarantined),
        "groups": len(split_of),
        "mean_summary_chars": _mean(len(row["summary"]) for row in kept),
        "splits": {name: split_stats(rows) for name, rows in splits.items()},
    }
    write_json(out_dir / "stats.json", stats)
    write_json(out_dir / "split_manifest.json", _manifest(raw_path, out_dir, split_cfg, assignment))
    print(_summary_line(stats, out_dir, time.perf_counter() - started))
    return stats


def _manifest(raw_path: Path, out_dir: Path, split_cfg: Any, assignment: dict[str, list[str]]) -> dict[str, Any]:
    """The record of the split: seed, fractions, file hashes and the attribute sets in each split."""
    return {
        "seed": split_cfg.seed,
        "fractions": {"val": split_cfg.val, "test": split_cfg.test},
        "raw_sha256": sha256_file(raw_path),
        "sha256": {name: sha256_file(out_dir / f"{name}.jsonl") for name in SPLITS},
        "groups": assignment,
    }


def _summary_line(stats: dict[str, Any], out_dir: Path, seconds: float) -> str:
    sizes = "/".join(str(stats["splits"][name]["rows"]) for name in SPLITS)
    groups = "/".join(str(stats["splits"][name]["groups"]) for name in SPLITS)
    return (
        f"prepare: {stats['rows_in']} rows in, {stats['kept']} kept, {stats['quarantined']} quarantined; "
        f"train/val/test {sizes} rows ({groups} attribute sets) -> {out_dir} in {seconds:.1f}s"
    )
