"""After sampling: repair every candidate, then choose one per product (consensus + faithfulness + controls).

Repair only removes: clauses that break the wording rules, name a value the input contradicts (any key it lists),
name another garment or a part this garment has not, repeat an earlier clause, or form a glued-on list of bare
attribute values; then, over its length bucket, trailing clauses that name no input value. It never adds text:
coverage has to come from generation (the decoding constraints steer towards unnamed values).

Selection is minimum-Bayes-risk decoding with a reranker on top: each candidate earns its mean character
BLEU-4 against the other candidates (the text most others agree with), plus bonuses for attribute coverage and
met controls, minus penalties for each fault a reader would reject, counted by the metrics' own definitions; then
plus its mean BLEU-4 against the human texts of the most similar training products (`evidence`: MBR whose
evidence is what copywriters wrote, not only what the model sampled), plus the model's own likelihood of the
candidate (`likelihood`, from the caller: the generator) and minus the share
of its clauses that the texts chosen before it in the same call said (`reuse`: a catalogue does not repeat itself).
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from reasongen.metrics.garments import incompatible_parts, product_type_mismatches
from reasongen.metrics.text_checks import (
    hallucinated_values,
    load_words,
    sentence_bleu4,
    sentence_bleu4_both_ways,
    sentence_rouge_l,
    value_coverage,
)
from reasongen.metrics.text_quality import (
    attribute_hallucinations,
    bare_attribute_clause,
    cut_off_clauses,
    cut_off_ends,
    known_values,
    list_endings,
    normalise,
    repeated_phrases,
    unlisted_details,
    value_forms,
)
from reasongen.processes import fork_map
from reasongen.text.attributes import Attributes, parse_content, values
from reasongen.text.controls import detect_aspects, find_violations, length_bucket

# A clause: text up to and including its closing punctuation (the last clause may have none).
_CLAUSE = re.compile(r"[^，。！？；,!?;~～]+[，。！？；,!?;~～]*")
_CLAUSE_ENDS = "，。！？；,!?;~～"
# A clause that describes a design detail (小星星装饰, 虎头图案的设计, 编织肩带) but names no input value (its 类型
# aside) states a fact the shop never gave, in words no lexicon knows; one about a child (宝宝, 儿童) or shoes
# (鞋跟, 细跟) sells another product, whatever else it names.
_DETAIL_WORDS = re.compile(r"设计|装饰|图案|元素|工艺|面料|材质|造型|点缀|印花|刺绣|纽扣|扣子|口袋|拉链|领口|袖口|"
                           r"裙摆|下摆|肩带|腰带|花纹|纹路|logo")
_OTHER_PRODUCT_WORDS = re.compile(r"宝宝|儿童|宝贝|孩子|小朋友|童装|鞋|细跟|跟高")


@dataclass(frozen=True, eq=False)  # hashed by identity: the clause cache keys on it
class Checks:
    """What the rules need beyond a candidate and its row: the training split's known values of each key,
    the keys whose other values count as hallucinations, and the length buckets' bounds."""

    value_lexicon: Mapping[str, Sequence[str]]
    checked_keys: Sequence[str]
    length_bounds: Sequence[int]


def consensus(candidates: Sequence[str], rouge_l: float = 0.0) -> list[float]:
    """Each candidate's mean agreement with the others (MBR): BLEU-4 + rouge_l × ROUGE-L, the headline metrics;
    0 for a lone candidate."""
    return list(_consensus(tuple(candidates), rouge_l))


@lru_cache(maxsize=8192)  # the evaluate stage's decoding ablation scores the same candidates several times
def _consensus(candidates: tuple[str, ...], rouge_l: float) -> tuple[float, ...]:
    n = len(candidates)
    if n < 2:
        return (0.0,) * n
    totals = [0.0] * n  # each pair's matches once; each row still sums its scores in the others' order
    for i in range(n):
        for j in range(i + 1, n):
            forward, backward = sentence_bleu4_both_ways(candidates[i], candidates[j])
            shared = rouge_l * sentence_rouge_l(candidates[i], candidates[j]) if rouge_l else 0.0  # F: symmetric
            totals[i] += forward + shared
            totals[j] += backward + shared
    return tuple(total / (n - 1) for total in totals)


def evidence_scores(candidates: Sequence[str], evidence: Sequence[str], rouge_l: float = 0.0) -> list[float]:
    """Each candidate's mean agreement (BLEU-4 + rouge_l × ROUGE-L) with the evidence texts (human texts of the
    training products most like the input: how a copywriter tends to write about such a product), leaving out its
    best match, which for a retrieve-and-edit candidate is the text it was edited from; 0 for all with fewer than
    two evidence texts."""
    return list(_evidence_scores(tuple(candidates), tuple(evidence), rouge_l))


@lru_cache(maxsize=8192)  # the decoding ablation scores the same candidates again
def _evidence_scores(candidates: tuple[str, ...], evidence: tuple[str, ...], rouge_l: float) -> tuple[float, ...]:
    if len(evidence) < 2:
        return (0.0,) * len(candidates)
    found = []
    for text in candidates:
        scores = [sentence_bleu4(text, other) + (rouge_l * sentence_rouge_l(text, other) if rouge_l else 0.0)
                  for other in evidence]
        found.append((sum(scores) - max(scores)) / (len(scores) - 1))
    return tuple(found)


def faults(text: str, pairs: Attributes, checks: Checks) -> dict[str, int]:
    """What a reader would reject in text, counted by the metrics' definitions: hallucination (the narrow keys),
    attribute_hallucination (any key the input lists), unlisted_detail (a known value of a key the input does not
    list: a detail the shop never gave), product_type (another garment, or a part it has not),
    repetition (repeated phrases), list_ending (runs of bare attribute clauses), cut_off (a clause that ends on a
    word needing a continuation), violation (wording rules)."""
    lexicon = checks.value_lexicon
    return {
        "hallucination": len(hallucinated_values(text, pairs, lexicon, checks.checked_keys)),
        "attribute_hallucination": len(attribute_hallucinations(text, pairs, lexicon)),
        "unlisted_detail": len(unlisted_details(text, pairs, lexicon)),
        "product_type": len(product_type_mismatches(text, pairs)) + len(incompatible_parts(text, pairs, lexicon)),
        "repetition": len(repeated_phrases(text, given=values(pairs))),
        "list_ending": len(list_endings(text, known_values(lexicon, pairs))),
        "cut_off": len(cut_off_clauses(text)),
        "violation": len(find_violations(text)),
    }


def rule_score(text: str, pairs: Attributes, row: Mapping[str, Any], checks: Checks,
               weights: Mapping[str, float]) -> float:
    """Coverage and met controls (aspect, share of keywords, length bucket) earn; each fault costs its weight."""
    score = weights.get("coverage", 0.0) * value_coverage(text, pairs)
    if any(weights.get(name, 0.0) for name in FAULTS):
        score -= sum(weights.get(name, 0.0) * count for name, count in faults(text, pairs, checks).items())
    if row.get("aspect"):
        score += weights.get("aspect", 0.0) * (row["aspect"] in detect_aspects(text))
    if row.get("keywords"):
        score += weights.get("keywords", 0.0) * sum(word in text for word in row["keywords"]) / len(row["keywords"])
    if row.get("length_bucket"):
        score += weights.get("length", 0.0) * (length_bucket(len(text), checks.length_bounds) == row["length_bucket"])
    return score


FAULTS = ("hallucination", "attribute_hallucination", "unlisted_detail", "product_type", "repetition", "list_ending",
          "cut_off", "violation")


def select(candidates: Sequence[str], row: Mapping[str, Any], checks: Checks, weights: Mapping[str, float],
           said: Counter[str] | None = None, likelihood: Sequence[float | None] | None = None,
           evidence: Sequence[str] = ()) -> str:
    """The best candidate for row (ties: the earliest). weights: mbr, evidence, coverage, hallucination, violation,
    aspect, keywords, length (base_scores); likelihood (times the model's mean token log-probability of each
    candidate, when given: None for one that may not be chosen); reuse (times the share of a
    candidate's clauses that texts chosen before said: `said`, clause -> times). All zero picks the first
    candidate, i.e. plain decoding."""
    return pick(candidates, base_scores(candidates, row, checks, weights, evidence), weights, said, likelihood)


def base_scores(candidates: Sequence[str], row: Mapping[str, Any], checks: Checks,
                weights: Mapping[str, float], evidence: Sequence[str] = ()) -> list[float]:
    """Each candidate's consensus (MBR: `mbr` times its agreement with the other candidates, `evidence` times its
    agreement with the evidence texts, see evidence_scores; agreement is BLEU-4 + `rouge_l` × ROUGE-L) and rule
    score: what decides the shortlist the model scores."""
    if not candidates:
        return []
    pairs = parse_content(row["content"])
    scores = [rule_score(text, pairs, row, checks, weights) for text in candidates]
    rouge_l = weights.get("rouge_l", 0.0)  # agreement is BLEU-4 + rouge_l × ROUGE-L
    if weights.get("mbr", 0.0):
        agreement = consensus(candidates, rouge_l)
        scores = [score + weights["mbr"] * value for score, value in zip(scores, agreement, strict=True)]
    if weights.get("evidence", 0.0) and evidence:
        agreement = evidence_scores(candidates, evidence, rouge_l)
        scores = [score + weights["evidence"] * value for score, value in zip(scores, agreement, strict=True)]
    return scores


def pick(candidates: Sequence[str], scores: Sequence[float], weights: Mapping[str, float],
         said: Counter[str] | None, likelihood: Sequence[float | None] | None) -> str:
    """The candidate with the best base score + likelihood - reuse (see select)."""
    if not candidates:
        return ""
    total = list(scores)
    if likelihood is not None and weights.get("likelihood", 0.0):
        total = [score + weights["likelihood"] * value if value is not None else -math.inf
                 for score, value in zip(total, likelihood, strict=True)]
    if said and weights.get("reuse", 0.0):
        total = [score - weights["reuse"] * reused_share(text, said) for score, text in zip(total, candidates,
                                                                                           strict=True)]
    return candidates[max(range(len(candidates)), key=lambda i: (total[i], -i))]


def _imputed(values: Mapping[int, float], base: Sequence[float]) -> list[float | None]:
    """Each candidate's likelihood: the model's where it scored it, else the lowest it gave a shortlisted one (a
    candidate left off is taken as no likelier), so that reuse may still turn the choice to it; None for one that
    may not be chosen (base -inf) or for all when none was scored."""
    floor = min(values.values(), default=None)
    return [values.get(i, floor) if score > -math.inf else None for i, score in enumerate(base)]


def shortlist(scores: Sequence[float], size: int) -> list[int]:
    """The positions of the `size` best scores (all when size is 0), in their order."""
    if not size or size >= len(scores):
        return list(range(len(scores)))
    return sorted(sorted(range(len(scores)), key=lambda i: (-scores[i], i))[:size])


def clause_keys(text: str) -> list[str]:
    """The text's clauses as reuse counts them: normalised (no punctuation), three characters or more."""
    return [key for key in map(normalise, clauses(text)) if len(key) >= 3]


def reused_share(text: str, said: Counter[str]) -> float:
    """Share of text's clauses (clause_keys) that texts chosen before already said: 1 for a text chosen before."""
    keys = clause_keys(text)
    return sum(key in said for key in keys) / len(keys) if keys else 0.0


def clauses(text: str) -> list[str]:
    """text cut after each clause-ending punctuation run; joining them gives text back (less stray spaces)."""
    return _CLAUSE.findall(text)


def clause_spans(text: str) -> list[tuple[int, int]]:
    """Where each of clauses(text) starts and ends."""
    return [match.span() for match in _CLAUSE.finditer(text)]


def repair(text: str, row: Mapping[str, Any], checks: Checks, options: Mapping[str, bool]) -> str:
    """Drop clauses, never add any: those with an advertising-law word (drop_violations), a value the input
    contradicts under any key it lists (drop_hallucinations), a detail under a key it does not list
    (drop_unlisted), a design detail that names no input value (drop_unnamed_details: unnamed_detail), a clause
    cut off (drop_cut_off: it ends on a word needing a continuation), another garment or a part this one has not
    (drop_other_garments), the same words as an earlier clause (drop_repeats), or in a run of three or more bare
    attribute clauses (drop_list_endings); then trailing clauses that name no input value while the text is over
    its requested length bucket (fit_length). The opening clause stays unless it breaks a rule itself, and a
    text whose every clause breaks one is returned as it is (nothing better to serve; selection weighs it)."""
    pairs = parse_content(row["content"])
    parts = clauses(text)
    drop = [clause_faulty(clause, pairs, checks, options) for clause in parts]
    if options.get("drop_repeats"):
        seen: set[str] = set()
        for index, clause in enumerate(parts):
            key = normalise(clause)
            drop[index] = drop[index] or (len(key) >= 3 and key in seen)
            seen.add(key)
    if options.get("drop_list_endings"):
        known = known_values(checks.value_lexicon, pairs)
        bare = [bare_attribute_clause(clause, known) for clause in parts]
        for start, end in _runs(bare, min_run=3):
            drop[start:end] = [True] * (end - start)
    kept = [clause for clause, dropped in zip(parts, drop, strict=True) if not dropped]
    if not kept:
        return text
    repaired = "".join(kept)
    if options.get("fit_length") and row.get("length_bucket"):
        repaired = fit_length(repaired, pairs, row, checks)
    if repaired != text and repaired and repaired[-1] in "，,;；~～、":
        repaired = repaired[:-1] + "。"
    return repaired


def clause_faulty(clause: str, pairs: Attributes, checks: Checks, options: Mapping[str, bool]) -> bool:
    """Whether one clause breaks a rule that repair is asked to enforce."""
    return _clause_faulty(clause, tuple(pairs), checks, frozenset(name for name, on in options.items() if on))


@lru_cache(maxsize=262144)  # candidates of one row share clauses, and the ablation repairs the same texts again
def _clause_faulty(clause: str, pairs: Attributes, checks: Checks, enabled: frozenset[str]) -> bool:
    lexicon = checks.value_lexicon
    if "drop_violations" in enabled and find_violations(clause):
        return True
    if "drop_unnamed_details" in enabled and unnamed_detail(clause, pairs):
        return True
    if "drop_cut_off" in enabled and cut_off_ends(clause if clause[-1:] in _CLAUSE_ENDS else clause + "。"):
        return True
    if "drop_hallucinations" in enabled and (hallucinated_values(clause, pairs, lexicon, checks.checked_keys)
                                             or attribute_hallucinations(clause, pairs, lexicon)):
        return True
    if "drop_unlisted" in enabled and unlisted_details(clause, pairs, lexicon):
        return True
    return bool("drop_other_garments" in enabled and (product_type_mismatches(clause, pairs)
                                                      or incompatible_parts(clause, pairs, lexicon)))


def unnamed_detail(clause: str, pairs: Attributes) -> bool:
    """Whether clause speaks of a design detail (_DETAIL_WORDS) without naming any input value other than its 类型
    (a value's own words such as 印花 or 口袋 are that value, not an invented detail), or of a child or shoes."""
    lowered = clause.lower()
    if _OTHER_PRODUCT_WORDS.search(lowered):
        return True
    return bool(_DETAIL_WORDS.search(lowered)) and not any(form in lowered for key, value in pairs if key != "类型"
                                                            for form in value_forms(value))


def _runs(flags: Sequence[bool], min_run: int) -> list[tuple[int, int]]:
    """(start, end) of every run of min_run or more consecutive True flags."""
    found, start = [], None
    for index, flag in enumerate([*flags, False]):
        if flag and start is None:
            start = index
        elif not flag and start is not None:
            if index - start >= min_run:
                found.append((start, index))
            start = None
    return found


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


# (rows, each row's candidates) -> each candidate's mean token log-probability under the model
Likelihoods = Callable[[Sequence[Mapping[str, Any]], Sequence[Sequence[str]]], list[list[float]]]


def choose(
    candidates: Sequence[Sequence[str]],
    rows: Sequence[Mapping[str, Any]],
    checks: Checks,
    selection: Mapping[str, float] | None,
    repair_options: Mapping[str, bool] | None,
    likelihoods: Likelihoods | None = None,
    evidence: Callable[[], Sequence[Sequence[str]]] | None = None,
    voters: Sequence[int] | None = None,
) -> list[str]:
    """One text per row: repair every candidate (when repair is on), then select among the repaired ones, so that
    what the rules, the length bucket and the model's likelihood judge is the text that will be served. Rows are
    chosen in order, each knowing the clauses of the texts chosen before it (the `reuse` weight). evidence: each
    row's evidence texts (evidence_scores), asked for only when the `evidence` weight is on. voters: how many of
    each row's first candidates (the model's own) only vote, when `publish_samples` is false: they count in the
    consensus, but another candidate is chosen (and only those are scored by the model) unless there is none."""
    selection, repair_options = dict(selection or {}), dict(repair_options or {})  # a plain dict: read per candidate
    texts = evidence() if evidence and selection.get("evidence") else [()] * len(rows)

    def repaired_and_scored(index: int) -> tuple[list[str], list[float]]:
        found, row = candidates[index], rows[index]
        if any(repair_options.values()):
            found = [repair(text, row, checks, repair_options) for text in found]
        return found, base_scores(found, row, checks, selection, texts[index])

    if selection.get("rouge_l"):
        load_words()  # once, before the workers fork
    # each row's repair and rule scores are its own: over the cores (the likelihoods below are torch's)
    done = fork_map(repaired_and_scored, range(len(rows)))
    repaired, bases = [found for found, _ in done], [base for _, base in done]
    if voters is not None and not selection.get("publish_samples", True):
        bases = [[-math.inf] * count + base[count:] if count < len(base) else base
                 for base, count in zip(bases, voters, strict=True)]
    scored: list[list[float | None] | None] = [None] * len(rows)
    if likelihoods and selection.get("likelihood"):  # the model scores each row's shortlist, in one batch
        listed = [[i for i in shortlist(base, int(selection.get("shortlist") or 0)) if base[i] > -math.inf]
                  for base in bases]
        values = likelihoods(rows, [[found[i] for i in positions]
                                    for found, positions in zip(repaired, listed, strict=True)])
        scored = [_imputed(dict(zip(positions, found_values, strict=True)), base)
                  for base, positions, found_values in zip(bases, listed, values, strict=True)]
    chosen: list[str] = []
    said: Counter[str] = Counter()  # the clauses of the texts chosen so far: a catalogue does not repeat itself
    for found, base, likelihood in zip(repaired, bases, scored, strict=True):
        chosen.append(pick(found, base, selection, said, likelihood))
        said.update(clause_keys(chosen[-1]))
    return chosen
