"""AdvertiseGen rows: a raw line -> a checked, normalised row with its attribute set and control signals."""

from __future__ import annotations

import unicodedata
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from reasongen.io import sha256_file
from reasongen.rows import RowError, decode_object, mean, normalize_text
from reasongen.text import controls
from reasongen.text.attributes import Attributes, attribute_set_key, format_content, parse_content, values

SPLITS = ("train", "val", "test")
FIELDS = ("content", "summary")
UNK = "<UNK>"
NO_ASPECT = "none"
# Cc: C0/C1 controls left after whitespace collapsing; Cs: lone surrogates (JSON "\ud800"), which cannot be written.
_BAD_CATEGORIES = ("Cc", "Cs")


def normalize_summary(text: str) -> tuple[str, list[int]]:
    """normalize_text after dropping the literal `<UNK>` placeholder, and where in the result each one was.

    `<UNK>` marks characters lost in the dataset's original processing; kept, it would teach the model to write it.
    Where it was is kept: a clause that lost characters reads garbled (整款不是的那种), and retrieve-and-edit must
    not borrow it.
    """
    pieces = text.split(UNK)
    summary = normalize_text("".join(pieces))
    # the normalised length of what came before each placeholder ("x" keeps a trailing space from being stripped)
    lost = [len(normalize_text("".join(pieces[:count]) + "x")) - 1 for count in range(1, len(pieces))]
    return summary, list(dict.fromkeys(min(index, len(summary)) for index in lost))


def decode_row(line: bytes) -> dict[str, str]:
    """The content and summary strings of one raw line; RowError says why there are none."""
    row = decode_object(line)
    for field in FIELDS:
        if field not in row:
            raise RowError("missing field", field)
        if not isinstance(row[field], str):
            raise RowError("wrong type", f"{field} is a {type(row[field]).__name__}, not a string")
    return {field: row[field] for field in FIELDS}


def clean_row(row: dict[str, str], data_cfg: Any) -> tuple[str, Attributes, list[int]]:
    """The normalised summary and attribute pairs of a decoded row, checked against the configured limits, and
    where the summary lost characters (normalize_summary)."""
    content, (summary, lost) = normalize_text(row["content"]), normalize_summary(row["summary"])
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
    # a key with several values is common (图案#线条*图案#刺绣); the same pair twice is a broken row
    repeated = sorted({f"{key}#{value}" for key, value in pairs if pairs.count((key, value)) > 1})
    if repeated:
        raise RowError("duplicate attribute", ", ".join(repeated))
    if len(summary) < data_cfg.min_summary_chars:
        raise RowError("summary too short", f"{len(summary)} < {data_cfg.min_summary_chars} chars")
    if len(summary) > data_cfg.max_summary_chars:
        raise RowError("summary too long", f"{len(summary)} > {data_cfg.max_summary_chars} chars")
    return summary, pairs, lost


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
    summary, pairs, lost = clean_row(decode_row(line), data_cfg)
    return {
        "id": f"L{number}",
        "line": number,
        "content": format_content(pairs),
        "summary": summary,
        "lost": lost,  # where `<UNK>` placeholders were dropped from summary
        "attributes": [list(pair) for pair in pairs],
        "group": attribute_set_key(pairs),
        **control_signals(summary, pairs, data_cfg.controls),
    }


def split_stats(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Rows, groups, mean summary length and control distributions of one split (every key always present)."""
    aspects = Counter(row["aspect"] or NO_ASPECT for row in rows)
    buckets = Counter(row["length_bucket"] for row in rows)
    return {
        "rows": len(rows),
        "groups": len({row["group"] for row in rows}),
        "mean_summary_chars": mean(len(row["summary"]) for row in rows),
        "aspects": {name: aspects[name] for name in (*controls.aspect_lexicon(), NO_ASPECT)},
        "length_buckets": {name: buckets[name] for name in controls.LENGTH_BUCKETS},
    }


def manifest(raw_path: Path, out_dir: Path, split_cfg: Any, assignment: dict[str, list[str]]) -> dict[str, Any]:
    """The record of the split: seed, fractions, file hashes and the attribute sets in each split."""
    return {
        "seed": split_cfg.seed,
        "fractions": {"val": split_cfg.val, "test": split_cfg.test},
        "raw_sha256": sha256_file(raw_path),
        "sha256": {name: sha256_file(out_dir / f"{name}.jsonl") for name in SPLITS},
        "groups": assignment,
    }


def summary_line(stats: dict[str, Any], out_dir: Path, seconds: float) -> str:
    sizes = "/".join(str(stats["splits"][name]["rows"]) for name in SPLITS)
    groups = "/".join(str(stats["splits"][name]["groups"]) for name in SPLITS)
    return (
        f"prepare: {stats['rows_in']} rows in, {stats['kept']} kept, {stats['quarantined']} quarantined; "
        f"train/val/test {sizes} rows ({groups} attribute sets) -> {out_dir} in {seconds:.1f}s"
    )
