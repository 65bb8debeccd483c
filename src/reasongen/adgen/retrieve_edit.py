"""Retrieve-and-edit candidates: human phrasing from similar training products, edited to fit the input.

For each of the `neighbours` training products whose attributes overlap the input's most, its text is repaired with
every drop rule (clauses that contradict the input, name a detail it does not list, another garment or an
advertising-law word go, and so do another product's brand name, clauses cut off from what came before and clauses
that lost characters in the data's own processing, its <UNK>), then,
for each input value (and requested keyword or aspect) the text does not name yet, one clean human clause that
names it is inserted before the closing clause. A text whose opening clause was dropped gets a clean opening
clause of another training text. Nothing is a bare attribute list: every added clause is a clause a copywriter
wrote. The candidates join the model's samples, and selection picks among them all.
"""

from __future__ import annotations

import random
import re
import zlib
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

from reasongen.adgen.baselines import RetrievalBaseline
from reasongen.adgen.selection import Checks, clause_faulty, clause_spans, clauses, repair
from reasongen.metrics.text_checks import jieba_words
from reasongen.metrics.text_quality import known_values, leans_on_before
from reasongen.text.attributes import parse_content, values
from reasongen.text.controls import detect_aspects

# every drop rule of repair: what is left of a neighbour's text claims nothing the input does not give
STRICT = {"drop_violations": True, "drop_hallucinations": True, "drop_unlisted": True, "drop_other_garments": True,
          "drop_repeats": True, "drop_list_endings": True, "drop_unnamed_details": True, "drop_cut_off": True}
_ENDS = "，。！？；,!?;~～、"
# What a borrowed clause must not hold: another product's brand (a Latin word the input and the lexicon do not
# know; BRAND is the data's own placeholder for one), the data's <UNK>, or a start that leans on a cut-off clause
# before it (的西装印象, 了不少).
_LATIN_WORD = re.compile(r"[a-z]{3,}")
_FRAGMENT_START = tuple("的地得了着过呢吧啊")


def lost_clauses(text: str, lost: Sequence[int]) -> list[bool]:
    """For each of clauses(text): whether it lost characters (the data's <UNK>; `lost`: where, see
    adgen.dataset.normalize_summary), inside it or right before it (a lost word that opened it). A loss at the
    very end belongs to the last clause."""
    spans = clause_spans(text)
    return [any(start <= index < end or index == end == len(text) for index in lost) for start, end in spans]


def _bare(clause: str) -> str:
    """A clause without its closing punctuation: repair may turn a closing comma into a full stop."""
    return clause.rstrip(_ENDS)


# A word that fewer training texts than this use, outside the attribute values, is some product's own detail:
# 笑脸 (3 of 4,241 texts), 水貂 (2), 玫瑰 (4), 活页 (2); found by reading borrowed clauses (胸前笑脸上的亮片 for an
# input's 亮片). 13% of the training clauses hold one at 3 texts; praise words are among them (富有诗意, 辉映).
RARE_WORD_TEXTS = 5
_HAN_WORD = re.compile(r"[\u4e00-\u9fff]{2,}")


def peculiar_clauses(parts: Sequence[str], per_text: Sequence[int], known: Sequence[str]) -> list[bool]:
    """For each of parts (the clauses of consecutive texts, per_text of them each): whether it holds a word of two
    Chinese characters or more (jieba) that fewer than RARE_WORD_TEXTS texts use and no known value contains."""
    words = [{word for word in jieba_words(part) if _HAN_WORD.fullmatch(word)} for part in parts]
    texts: Counter[str] = Counter()
    start = 0
    for count in per_text:
        texts.update(set().union(*words[start:start + count]))
        start += count
    rare = {word for word, used in texts.items() if used < RARE_WORD_TEXTS}
    in_values = {word for word in rare if any(word in value for value in known)}
    return [bool(found & rare - in_values) for found in words]


class ClauseBank:
    """The training texts, cut into clauses and indexed by the known attribute values each clause names."""

    def __init__(self, train_rows: Sequence[Mapping[str, Any]], value_lexicon: Mapping[str, Sequence[str]]):
        self.rows = [{"content": row["content"], "summary": row["summary"]} for row in train_rows]
        self.retrieval = RetrievalBaseline(self.rows)
        known = sorted(known_values(value_lexicon), key=len, reverse=True)
        self.clauses: list[str] = []
        self.opening: list[bool] = []
        self.damaged: list[frozenset[str]] = []  # per row: its clauses that lost characters (bare, see _bare)
        self.whole: list[bool] = []  # per clause: no character of it was lost
        per_text: list[int] = []  # how many clauses each text has
        for row in train_rows:
            parts = clauses(row["summary"])
            per_text.append(len(parts))
            self.clauses += parts
            self.opening += [index == 0 for index in range(len(parts))]
            cut = lost_clauses(row["summary"], row.get("lost") or ())
            self.damaged.append(frozenset(_bare(part) for part, hit in zip(parts, cut, strict=True) if hit))
            self.whole += [not hit for hit in cut]
        self.names: list[frozenset[str]] = []
        self.by_value: dict[str, list[int]] = defaultdict(list)
        for position, clause in enumerate(self.clauses):
            named = frozenset(value for value in known if value in clause)
            self.names.append(named)
            for value in named:
                self.by_value[value].append(position)
        self.known = frozenset(known)
        self.peculiar = peculiar_clauses(self.clauses, per_text, known)
        self.latin_known = frozenset(word for value in known for word in _LATIN_WORD.findall(value))  # e.g. polo
        self._aspects: dict[int, list[str]] = {}  # filled as selection asks: most clauses are never asked about
        self._containing: dict[str, list[int]] = {}

    def aspects(self, position: int) -> list[str]:
        if position not in self._aspects:
            self._aspects[position] = detect_aspects(self.clauses[position])
        return self._aspects[position]

    def naming(self, word: str) -> list[int]:
        """Positions of the clauses that name word: the index for a known value, else one scan (kept)."""
        if word in self.by_value:
            return self.by_value[word]
        if word not in self._containing:
            self._containing[word] = [i for i, clause in enumerate(self.clauses) if word in clause]
        return self._containing[word]

    def candidates(self, row: Mapping[str, Any], checks: Checks, neighbours: int, seed: int = 0) -> list[str]:
        """Up to `neighbours` edited texts for row (content, optional aspect and keywords), best neighbour first;
        deterministic for a seed and row."""
        pairs = parse_content(row["content"])
        rng = random.Random(seed ^ zlib.crc32(row["content"].encode("utf-8")))
        editor = _Editor(self, row, pairs, checks, rng)
        found = [editor.edit(self.rows[position]["summary"], self.damaged[position])
                 for position in self.retrieval.ranked(row, neighbours)]
        return list(dict.fromkeys(text for text in found if text))


def dangling_dropped(original: Sequence[str], kept: Sequence[str]) -> list[str]:
    """The clauses of original that kept holds (bare, in order: what repair left of it), less each that leans on
    the clause before it (leans_on_before: 也带来了…, 让…, 凸显…) when that clause went: an edit that drops
    西装斑驳领，衬托着腰部曲线。 must not leave 也带来了一丝复古的气息 without its subject (read in the sample
    report)."""
    parts, matched, previous_kept = [], 0, True
    for clause in original:
        here = matched < len(kept) and _bare(clause) == kept[matched]
        matched += here
        previous_kept = here and (previous_kept or not leans_on_before(clause))
        if previous_kept:
            parts.append(clause)
    return parts


class _Editor:
    """One input's edits: the clean clauses it may borrow, found once."""

    def __init__(self, bank: ClauseBank, row: Mapping[str, Any], pairs, checks: Checks, rng: random.Random):
        self.bank, self.row, self.pairs, self.checks, self.rng = bank, row, pairs, checks, rng
        given = list(dict.fromkeys(values(pairs)))
        # a clause may name only known values that the input's own values contain
        self.allowed = frozenset(v for v in bank.known if any(v in value for value in given))
        self.wanted = given + [word for word in dict.fromkeys(row.get("keywords") or ()) if word not in given]
        self.aspect = row.get("aspect")
        self.latin_allowed = bank.latin_known | {word for value in self.wanted
                                                  for word in _LATIN_WORD.findall(value.lower())}
        self._clean: dict[int, bool] = {}
        self._holds: dict[int, int] = {}  # clause position -> bit k set when it contains wanted[k]

    def clean(self, position: int) -> bool:
        if position not in self._clean:
            self._clean[position] = (self.bank.whole[position] and self.bank.names[position] <= self.allowed
                                     and self.fits(self.bank.clauses[position]))
        return self._clean[position]

    def holds(self, position: int) -> int:
        """The wanted words a clause contains, as bits (found once: one input borrows from the same clauses often)."""
        if position not in self._holds:
            clause = self.bank.clauses[position]
            self._holds[position] = sum(1 << k for k, word in enumerate(self.wanted) if word in clause)
        return self._holds[position]

    def fits(self, clause: str) -> bool:
        """Whether a human clause may stand in this input's text: no rule broken (STRICT), no other product's
        brand, no <UNK>, no fragment start."""
        lowered = clause.lower()
        foreign = [word for word in _LATIN_WORD.findall(lowered)
                   if word != "brand" and word not in self.latin_allowed]
        return not (foreign or "<unk>" in lowered or lowered.startswith(_FRAGMENT_START)
                    or clause_faulty(clause, self.pairs, self.checks, STRICT))

    def edit(self, text: str, damaged: frozenset[str] = frozenset()) -> str | None:
        """text fitted to the input; damaged: its clauses that lost characters (bare), which go, and so does a
        clause that leaned on a clause that went (dangling)."""
        kept = repair(text, {"content": self.row["content"]}, self.checks, STRICT)
        fitting = [_bare(part) for part in clauses(kept) if self.fits(part) and _bare(part) not in damaged]
        original = clauses(text)
        parts = dangling_dropped(original, fitting)
        if not parts:
            return None
        if parts[0] != original[0]:  # its opening clause was dropped: borrow one that names the garment
            parts.insert(0, self._borrow(self._openings(), parts) or "")
        for word in self.wanted:
            if word not in "".join(parts):
                self._insert(parts, self._borrow(self.bank.naming(word), parts))
        if self.aspect and self.aspect not in detect_aspects("".join(parts)):
            self._insert(parts, self._borrow(self._about(self.aspect), parts))
        edited = "".join(part for part in parts if part)
        return edited[:-1] + "。" if edited[-1] in _ENDS else edited + "。"

    def _openings(self) -> list[int]:
        garment = [value for key, value in self.pairs if key == "类型"] + list(self.wanted)
        return [i for value in dict.fromkeys(garment) for i in self.bank.by_value.get(value, ())
                if self.bank.opening[i]]

    def _about(self, aspect: str) -> list[int]:
        return [i for value in self.wanted for i in self.bank.by_value.get(value, ())
                if aspect in self.bank.aspects(i)]

    def _borrow(self, positions: list[int], parts: list[str]) -> str | None:
        """A clean clause among positions that names the most wanted words the text lacks (ties: by chance)."""
        text = "".join(parts)
        lacking = sum(1 << k for k, word in enumerate(self.wanted) if word not in text)
        options = list(dict.fromkeys(positions))
        self.rng.shuffle(options)
        # most gain first, among equals one without another product's own details (peculiar); only then the
        # (costly) clean check, until one passes
        options.sort(key=lambda i: (-(self.holds(i) & lacking).bit_count(), self.bank.peculiar[i]))
        for i in options:
            if self.bank.clauses[i] not in parts and self.clean(i):
                return self.bank.clauses[i].rstrip(_ENDS) + "，"
        return None

    @staticmethod
    def _insert(parts: list[str], clause: str | None) -> None:
        """clause before the closing one (after it when the text has one clause)."""
        if clause:
            if parts[-1] and parts[-1][-1] not in _ENDS:
                parts[-1] += "，"
            parts.insert(max(len(parts) - 1, 1), clause)
