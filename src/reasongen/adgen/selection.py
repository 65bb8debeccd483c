"""After sampling: choose one candidate per product (consensus + faithfulness + controls), then repair it.

Selection is minimum-Bayes-risk decoding with a reranker on top: each candidate earns its mean character
BLEU-4 against the other candidates (the text most others agree with), plus bonuses for attribute coverage and
met controls, minus penalties for hallucinated values and advertising-law violations. Repair then removes the
clauses that still break a rule and names the attribute values the text left out, so that what is served is
faithful and compliant even when no candidate was.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from reasongen.adgen.baselines import TemplateBaseline
from reasongen.metrics.text_checks import hallucinated_values, sentence_bleu4, value_coverage
from reasongen.text.attributes import Attributes, parse_content
from reasongen.text.controls import detect_aspects, find_violations, length_bucket

# A clause: text up to and including its closing punctuation (the last clause may have none).
_CLAUSE = re.compile(r"[^，。！？；,!?;~～]+[，。！？；,!?;~～]*")
_ENDINGS = "，。！？；,!?;~～ "


@dataclass(frozen=True)
class Checks:
    """What the rules need beyond a candidate and its row: the training split's known values of each key,
    the keys whose other values count as hallucinations, and the length buckets' bounds."""

    value_lexicon: Mapping[str, Sequence[str]]
    checked_keys: Sequence[str]
    length_bounds: Sequence[int]


def consensus(candidates: Sequence[str]) -> list[float]:
    """Each candidate's mean BLEU-4 against the others (MBR with BLEU as utility); 0 for a lone candidate."""
    n = len(candidates)
    if n < 2:
        return [0.0] * n
    return [sum(sentence_bleu4(text, other) for j, other in enumerate(candidates) if j != i) / (n - 1)
            for i, text in enumerate(candidates)]


def repetition(text: str, n: int = 4) -> float:
    """Share of the text's character n-grams that repeat an earlier one (0: no phrase said twice)."""
    grams = [text[i : i + n] for i in range(len(text) - n + 1)]
    return 1.0 - len(set(grams)) / len(grams) if grams else 0.0


def rule_score(text: str, pairs: Attributes, row: Mapping[str, Any], checks: Checks,
               weights: Mapping[str, float]) -> float:
    """Coverage and met controls (aspect, share of keywords, length bucket) earn, hallucinated values,
    violations and repeated phrases cost, each by its weight."""
    score = weights.get("coverage", 0.0) * value_coverage(text, pairs)
    score -= weights.get("hallucination", 0.0) * len(
        hallucinated_values(text, pairs, checks.value_lexicon, checks.checked_keys))
    score -= weights.get("violation", 0.0) * len(find_violations(text))
    score -= weights.get("repetition", 0.0) * repetition(text)
    if row.get("aspect"):
        score += weights.get("aspect", 0.0) * (row["aspect"] in detect_aspects(text))
    if row.get("keywords"):
        score += weights.get("keywords", 0.0) * sum(word in text for word in row["keywords"]) / len(row["keywords"])
    if row.get("length_bucket"):
        score += weights.get("length", 0.0) * (length_bucket(len(text), checks.length_bounds) == row["length_bucket"])
    return score


def select(candidates: Sequence[str], row: Mapping[str, Any], checks: Checks, weights: Mapping[str, float]) -> str:
    """The best candidate for row (ties: the earliest). weights: mbr, coverage, hallucination, violation, aspect,
    keywords, length; all zero picks the first candidate, i.e. plain decoding."""
    if not candidates:
        return ""
    pairs = parse_content(row["content"])
    agreement = consensus(candidates) if weights.get("mbr", 0.0) else [0.0] * len(candidates)
    scores = [weights.get("mbr", 0.0) * agreement[i] + rule_score(text, pairs, row, checks, weights)
              for i, text in enumerate(candidates)]
    return candidates[max(range(len(candidates)), key=lambda i: (scores[i], -i))]


def clauses(text: str) -> list[str]:
    """text cut after each clause-ending punctuation run; joining them gives text back (less stray spaces)."""
    return _CLAUSE.findall(text)


def repair(text: str, row: Mapping[str, Any], checks: Checks, options: Mapping[str, bool]) -> str:
    """Drop clauses that break the wording rules or name a value the input contradicts (options
    drop_violations / drop_hallucinations), add a short phrase for each input value the text does not name
    (complete_coverage), in the template baseline's wording, then drop trailing clauses that name no input value
    while the text is longer than its requested length bucket (fit_length)."""
    pairs = parse_content(row["content"])
    kept = [clause for clause in clauses(text)
            if not (options.get("drop_violations") and find_violations(clause))
            and not (options.get("drop_hallucinations")
                     and hallucinated_values(clause, pairs, checks.value_lexicon, checks.checked_keys))]
    repaired = "".join(kept)
    if options.get("complete_coverage"):
        missing = [(key, value) for key, value in pairs if value not in repaired]
        if missing:
            phrases = TemplateBaseline().phrases(missing, keep_type=True)
            repaired = "，".join([repaired.rstrip(_ENDINGS), *phrases]).lstrip("，") + "。"
    if options.get("fit_length") and row.get("length_bucket"):
        repaired = fit_length(repaired, pairs, row, checks)
    if repaired != text and repaired and repaired[-1] in "，,;；~～":
        repaired = repaired[:-1] + "。"
    return repaired


def fit_length(text: str, pairs: Attributes, row: Mapping[str, Any], checks: Checks) -> str:
    """Drop clauses, last first, that name no input value and not the requested aspect, until the text is no
    longer than its requested bucket allows (texts that are too short are left as they are)."""
    limit = dict(zip(("short", "medium"), checks.length_bounds, strict=True)).get(row["length_bucket"])
    parts = clauses(text)
    aspect = row.get("aspect")
    for index in range(len(parts) - 1, 0, -1):  # the opening clause stays
        if limit is None or len("".join(parts)) <= limit:
            break
        clause = parts[index]
        if not any(value in clause for _, value in pairs) and not (aspect and aspect in detect_aspects(clause)):
            del parts[index]
    return "".join(parts)


def choose(
    candidates: Sequence[Sequence[str]],
    rows: Sequence[Mapping[str, Any]],
    checks: Checks,
    selection: Mapping[str, float] | None,
    repair_options: Mapping[str, bool] | None,
) -> list[str]:
    """One text per row: repair every candidate (when repair is on), then select among the repaired ones, so that
    what the rules and the length bucket judge is the text that will be served."""
    if repair_options and any(repair_options.values()):
        candidates = [[repair(text, row, checks, repair_options) for text in found]
                      for found, row in zip(candidates, rows, strict=True)]
    return [select(found, row, checks, selection or {}) for found, row in zip(candidates, rows, strict=True)]
