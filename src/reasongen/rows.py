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

from reasongen.errors import UserError, at_line

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


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """json's object hook: a key given twice is an error (json.loads would silently keep the last value)."""
    found: dict[str, Any] = {}
    for key, value in pairs:
        if key in found:
            raise RowError("duplicate key", repr(key))
        found[key] = value
    return found


def decode_object(line: bytes) -> dict[str, Any]:
    """One raw line as a JSON object; RowError says why it is not one (shared by every task's prepare stage and the
    command line's input files)."""
    if not line.strip():
        raise RowError("blank line")
    try:
        text = line.decode("utf-8-sig")  # -sig: a byte-order mark at the start of the file is not an error
    except UnicodeDecodeError as error:
        raise RowError("invalid utf-8", str(error)) from error
    try:
        row = json.loads(text, object_pairs_hook=_unique_keys)
    except RowError:
        raise
    except json.JSONDecodeError as error:
        raise RowError("invalid json", f"{error.msg} at column {error.colno}") from error
    except RecursionError as error:  # the C decoder stops at Python's recursion limit (~1,000 levels)
        raise RowError("nested too deep", "JSON nested deeper than the decoder's recursion limit") from error
    except ValueError as error:  # an integer of more digits than Python converts (4,300 by default)
        raise RowError("number too long", str(error).split(";")[0]) from error
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
    the reason it failed, in file order; raises if rows in != kept + quarantined (nothing may be lost)."""
    rows_in = count_lines(raw_path, max_rows)
    kept: list[dict[str, Any]] = []
    quarantined: list[dict[str, Any]] = []
    lines = read_lines(raw_path, max_rows)
    for number, line in enumerate(tqdm(lines, total=rows_in, desc=desc, unit="row", mininterval=0.5), start=1):
        try:
            kept.append(prepare(line, number))
        except RowError as error:
            quarantined.append(quarantine_record(line, number, error))
        except Exception as error:  # noqa: BLE001 - whatever one row does, it must not stop the others
            detail = f"{type(error).__name__}: {error}"[:RAW_PREVIEW_CHARS]
            quarantined.append(quarantine_record(line, number, RowError("unexpected error", detail)))
    if rows_in != len(kept) + len(quarantined):
        raise RuntimeError(f"{raw_path}: {rows_in} rows in but {len(kept)} kept + {len(quarantined)} quarantined")
    return rows_in, kept, quarantined


def check_kept(stats: dict[str, Any], max_share: float | None, raw_path: Path, quarantine_path: Path,
               setting: str) -> None:
    """Stop a prepare stage, with the reasons, when it kept no row or quarantined more than max_share of them
    (setting: the config key of max_share, for the message). The quarantine file is written before."""
    rows_in, quarantined = stats["rows_in"], stats["quarantined"]
    reasons = ", ".join(f"{reason} {count}" for reason, count in stats["quarantine_reasons"].items())
    where = f" ({reasons}; lines and reasons in {quarantine_path})" if quarantined else ""
    if stats["kept"] == 0:
        raise UserError(f"{raw_path}: no usable row among {rows_in} line(s){where}")
    if max_share is not None and quarantined > max_share * rows_in:
        raise UserError(f"{raw_path}: {quarantined} of {rows_in} rows quarantined ({quarantined / rows_in:.0%}, "
                        f"more than {setting}={max_share}){where}")


def read_objects(path: str | Path) -> list[tuple[int, dict[str, Any]]]:
    """(line number, object) for each non-blank line of a JSON Lines input file given on the command line. A missing
    or empty file, or the first bad line, is a UserError (`path:line: reason`, the reasons prepare quarantines for)."""
    found = []
    try:
        with open(path, "rb") as handle:
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                try:
                    found.append((number, decode_object(line)))
                except RowError as error:
                    raise at_line(path, number, str(error)) from None
    except OSError as error:  # missing, a folder, not readable
        raise UserError(f"{path}: {error.strerror or error}") from None
    if not found:
        raise UserError(f"{path}: no rows (the file is empty)")
    return found


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


def is_missing(value: Any) -> bool:
    """An optional request field left out: absent or null, NaN (how pandas fills a field other rows give), or blank."""
    return value is None or (isinstance(value, float) and value != value) or (isinstance(value, str) and not
                                                                               value.strip())
