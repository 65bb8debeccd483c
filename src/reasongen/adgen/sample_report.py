"""A Markdown report of random test products: attributes, controls, reference and each system's text, with the
rule breaks marked (advertising-law words in bold brackets, contradicting values struck through)."""

from __future__ import annotations

import html
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from reasongen.adgen.selection import Checks
from reasongen.metrics.garments import incompatible_parts, product_type_mismatches
from reasongen.metrics.text_checks import hallucinated_values
from reasongen.metrics.text_quality import (
    attribute_hallucinations,
    cut_off_ends,
    headless_sentences,
    known_values,
    list_endings,
    repeated_phrases,
    unlisted_details,
    unpaired_correlatives,
)
from reasongen.text.attributes import parse_content, values
from reasongen.text.controls import banned_patterns, detect_aspects, length_bucket


@dataclass(frozen=True)
class Marks:
    """How a text shows its rule breaks: a format for an advertising-law word and for a hallucinated value, and the
    escaping of the text itself."""

    violation: str
    hallucination: str
    escape: Callable[[str], str]


MARKDOWN = Marks("**[{}]**", "~~{}~~", lambda text: text.replace("|", "\\|"))
HTML = Marks('<mark class="violation">{}</mark>', '<del class="hallucination">{}</del>', html.escape)
SYSTEMS = ("model", "decoding_sampling", "retrieval", "template")  # the systems a report shows, when present


def mark(text: str, pairs, checks: Checks, marks: Marks = MARKDOWN) -> str:
    """text with violations as **[word]** and hallucinated values as ~~value~~ (Markdown), or as `marks` says."""
    invented = hallucinated_values(text, pairs, checks.value_lexicon, checks.checked_keys)
    text = marks.escape(text)
    for _, pattern in banned_patterns():
        text = pattern.sub(lambda m: marks.violation.format(m.group(0)), text)
    for value in invented:
        text = text.replace(value, marks.hallucination.format(value))
    return text


def notes(text: str, row: Mapping[str, Any], pairs, checks: Checks) -> str:
    """What a reader would reject, by the metrics' own definitions (invented values of any listed key, another
    garment, a part the garment has not, repeated phrases, a glued-on list ending, a detail the input does not give,
    and, together the cut_off metric, a clause cut off, a sentence with no subject, half a pair such as 既 with no
    又), then what to check (values left out, controls missed). `ok` only when none applies."""
    found = []
    invented = attribute_hallucinations(text, pairs, checks.value_lexicon)
    if invented:
        found.append("invented: " + "、".join(f"{key} {value}" for key, value in invented))
    if other := product_type_mismatches(text, pairs):
        found.append("another garment: " + "、".join(other))
    if parts := incompatible_parts(text, pairs, checks.value_lexicon):
        found.append("part it has not: " + "、".join(value for _, value in parts))
    if repeats := repeated_phrases(text, given=values(pairs)):
        found.append("repeats: " + "、".join(repeats))
    if runs := list_endings(text, known_values(checks.value_lexicon, pairs)):
        found.append("attribute list: " + " / ".join("，".join(run) for run in runs))
    if details := unlisted_details(text, pairs, checks.value_lexicon):
        found.append("detail not given: " + "、".join(value for _, value in details))
    if cut := cut_off_ends(text):
        found.append("cut off after: " + "、".join(cut))
    if headless := headless_sentences(text):
        found.append("no subject: " + "、".join(headless))
    if halves := unpaired_correlatives(text):
        found.append("half a pair: " + "、".join(halves))
    missing = [value for _, value in pairs if value not in text]
    if missing:
        found.append("missing: " + "、".join(dict.fromkeys(missing)))
    if row.get("aspect") and row["aspect"] not in detect_aspects(text):
        found.append(f"aspect {row['aspect']} not met")
    if row.get("length_bucket") and length_bucket(len(text), checks.length_bounds) != row["length_bucket"]:
        found.append(f"length {len(text)} not {row['length_bucket']}")
    return "; ".join(found) or "ok"


def sample_indices(n_rows: int, n: int, seed: int) -> list[int]:
    """The n rows (of n_rows) a report shows, drawn at random with the seed, in order."""
    return sorted(random.Random(seed).sample(range(n_rows), min(n, n_rows)))


def render(rows: Sequence[Mapping[str, Any]], systems: Sequence[str], checks: Checks, n: int = 20,
           seed: int = 0) -> str:
    """The report for n rows drawn at random (seeded) from rows, each holding `reference` and a text per system."""
    chosen = sample_indices(len(rows), n, seed)
    lines = [f"# Sample report: {len(chosen)} random test products\n",
             "Violations of the advertising-law list are **[bold in brackets]**, values that contradict the input "
             "are ~~struck through~~; the notes flag what a reader would reject (invented values of any listed key, "
             "another garment, a part the garment has not, repeated phrases, a glued-on attribute list, a detail "
             "the input does not give, a clause cut off, a sentence with no subject, half of 既…又), then input "
             "values a text leaves out and controls it misses. `ok` means none of these.\n"]
    for number, index in enumerate(chosen, start=1):
        row = rows[index]
        pairs = parse_content(row["content"])
        controls = ", ".join(f"{name}: {row[name]}" for name in ("aspect", "length_bucket") if row.get(name))
        keywords = "、".join(row.get("keywords") or [])
        lines += [f"## {number}. `{row['content']}`\n",
                  f"controls: {controls or 'none'}{'; keywords: ' + keywords if keywords else ''}\n",
                  "| system | text | notes |", "|---|---|---|"]
        for system in ("reference", *systems):
            text = row[system]
            lines.append(f"| {system} | {mark(text, pairs, checks)} | {notes(text, row, pairs, checks)} |")
        lines.append("")
    return "\n".join(lines)
