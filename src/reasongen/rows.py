"""Raw rows in, nothing lost: line-by-line validation with a quarantine record (line number and reason) for every
rejected line, and group-wise splits. Shared by every task's prepare stage."""

from __future__ import annotations

import gzip
import json
import random
import re
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from itertools import islice
from pathlib import Path
from typing import Any

from tqdm import tqdm

RAW_PREVIEW_CHARS = 500
_WHITESPACE = re.compile(r"\s+")


class RowError(ValueError):
    """A raw row that cannot be used: `reason` is a short category (counted in stats), `detail` the specifics."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


def normalize_text(text: str) -> str:
    """Unicode NFC, strip, and collapse every internal whitespace run to one space."""
    return _WHITESPACE.sub(" ", unicodedata.normalize("NFC", text)).strip()


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
    n_test, n_val = cut_size(len(ordered), test), cut_size(len(ordered), val)
    return {
        "train": sorted(ordered[n_test + n_val :]),
        "val": sorted(ordered[n_test : n_test + n_val]),
        "test": sorted(ordered[:n_test]),
    }


def cut_size(n_groups: int, fraction: float) -> int:
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


def mean(numbers: Iterable[int]) -> float:
    numbers = list(numbers)
    return round(sum(numbers) / len(numbers), 2) if numbers else 0.0


def text_field(value: Any) -> str | None:
    """A request field as text; pandas fills fields a row leaves out with NaN / None."""
    return value.strip() or None if isinstance(value, str) else None
