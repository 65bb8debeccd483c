"""Decoding constraints as transformers logits processors: keep banned strings out of the text, stop character
n-gram loops, nudge the model towards input values it has not named yet. Task-free: they take strings.

Every processor works on the text the generated tokens spell (the prompt is left out), as bytes with spaces
removed (the decoded text drops tokenizer spaces next to Chinese characters), so a banned string is caught
whatever tokens spell it: one character token at a time, a BPE merge, or a byte-level token that ends halfway
through a character. Rows of a batch may have their own strings (`per_prompt`): the rows of prompt i are
i * k .. i * k + k - 1 with k = rows / prompts, which is how `generate` lays out num_return_sequences and beams.

How to use, one fresh list per `generate` call (each processor notes where the prompt ends on its first call)::

    from transformers import LogitsProcessorList
    from reasongen.metrics.text_quality import hallucination_candidates

    index = TokenIndex.of(tokenizer)  # once per tokenizer
    rows_pairs = [parse_content(row["content"]) for row in batch]
    processors = LogitsProcessorList([
        MentionBias(index, per_prompt=[values(pairs) for pairs in rows_pairs], bonus=1.0),
        CharNgramBlock(index, n=4),
        StringBan(index, banned=controls.decoder_bans(),
                  per_prompt=[[v for _, v in hallucination_candidates(pairs, lexicon)] for pairs in rows_pairs]),
    ])
    model.generate(input_ids, ..., logits_processor=processors)

Put the bans last, so that no bonus can lift a banned token back. `generate` runs its own processors
(repetition_penalty, no_repeat_ngram_size, ...) before these and its sampling warpers (temperature, top_p) after.
"""

from __future__ import annotations

import re
from bisect import bisect_left
from collections import Counter
from collections.abc import Collection, Sequence

import torch
from transformers import LogitsProcessor

_BYTE_TOKEN = re.compile(r"<0x([0-9A-Fa-f]{2})>")  # sentencepiece byte fallback
_PUNCTUATION = re.compile(r"[^\w]|_")


def _byte_level_decoder() -> dict[str, int]:
    """GPT-2's byte-level alphabet, character -> byte (the inverse of its bytes_to_unicode)."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    codes, extra = list(printable), 0
    for byte in range(256):
        if byte not in printable:
            printable.append(byte)
            codes.append(256 + extra)
            extra += 1
    return {chr(code): byte for byte, code in zip(printable, codes, strict=True)}


def token_bytes(tokenizer) -> list[bytes]:
    """What each token id adds to the decoded text, as UTF-8 bytes without spaces; special tokens add nothing.
    Byte-level BPE tokens map through GPT-2's byte alphabet (a token may hold part of a character), WordPiece
    continuations lose their ##, sentencepiece ▁ is a space and <0xNN> a byte; other tokenizers decode each id."""
    size = len(tokenizer)
    tokens = tokenizer.convert_ids_to_tokens(list(range(size)))
    special = set(tokenizer.all_special_ids)
    backend = getattr(tokenizer, "backend_tokenizer", None)
    decoder = type(backend.decoder).__name__ if backend is not None and backend.decoder is not None else ""
    byte_level = _byte_level_decoder() if decoder == "ByteLevel" else None
    units = []
    for token_id, token in enumerate(tokens):
        if token_id in special or token is None:
            units.append(b"")
        elif byte_level is not None:
            units.append(bytes(byte_level[ch] for ch in token if ch in byte_level).replace(b" ", b""))
        elif _BYTE_TOKEN.fullmatch(token):
            units.append(bytes([int(_BYTE_TOKEN.fullmatch(token).group(1), 16)]))
        elif decoder in ("WordPiece", "Metaspace", "Sequence"):
            text = token.removeprefix("##") if decoder == "WordPiece" else token.replace("▁", " ")
            units.append(text.replace(" ", "").encode("utf-8"))
        else:
            units.append(tokenizer.decode([token_id]).replace(" ", "").encode("utf-8"))
    return units


def _next_prefix(prefix: bytes) -> bytes | None:
    """The smallest byte string greater than every string starting with prefix (None: there is none)."""
    stripped = prefix.rstrip(b"\xff")
    return stripped[:-1] + bytes([stripped[-1] + 1]) if stripped else None


class TokenIndex:
    """The vocabulary's byte strings (token_bytes) with the lookups the processors need, cached as id tensors."""

    def __init__(self, units: Sequence[bytes], ending: Collection[int] = ()) -> None:
        self.units = list(units)
        self.ending = frozenset(ending)  # eos and padding: a row whose last token is one has ended
        self.order = sorted(range(len(self.units)), key=self.units.__getitem__)
        self.sorted_units = [self.units[i] for i in self.order]
        self._starting: dict[bytes, torch.Tensor] = {}
        self._containing: dict[bytes, torch.Tensor] = {}
        self._spelling: dict[bytes, torch.Tensor] = {}

    @classmethod
    def of(cls, tokenizer) -> TokenIndex:
        ending = {tokenizer.eos_token_id, tokenizer.pad_token_id} - {None}
        return cls(token_bytes(tokenizer), ending)

    def starting_with(self, prefix: bytes) -> torch.Tensor:
        """Ids of the tokens whose bytes start with prefix (a binary search over the sorted vocabulary)."""
        if prefix not in self._starting:
            low = bisect_left(self.sorted_units, prefix)
            upper = _next_prefix(prefix)
            high = bisect_left(self.sorted_units, upper) if upper is not None else len(self.sorted_units)
            self._starting[prefix] = torch.tensor(self.order[low:high], dtype=torch.long)
        return self._starting[prefix]

    def containing(self, piece: bytes) -> torch.Tensor:
        """Ids of the tokens whose bytes contain piece (one scan of the vocabulary per piece, then cached)."""
        if piece not in self._containing:
            self._containing[piece] = torch.tensor([i for i, unit in enumerate(self.units) if piece in unit],
                                                   dtype=torch.long)
        return self._containing[piece]

    def spelling(self, text: bytes) -> torch.Tensor:
        """Ids of the tokens that start spelling text: their bytes are a prefix of text (for a byte-level
        vocabulary that may be part of a character), or start with all of text."""
        if text not in self._spelling:
            prefixes = {text[:end] for end in range(1, len(text))}
            found = [i for i, unit in enumerate(self.units) if unit in prefixes]
            self._spelling[text] = torch.cat([torch.tensor(found, dtype=torch.long), self.starting_with(text)])
        return self._spelling[text]


def _ends_mid_character(data: bytes) -> bool:
    """Whether data stops inside a UTF-8 character (its last lead byte still waits for continuation bytes)."""
    for back in range(1, min(4, len(data)) + 1):
        byte = data[-back]
        if byte < 0x80:
            return False
        if byte >= 0xC0:  # a lead byte: 110xxxxx starts 2 bytes, 1110xxxx 3, 11110xxx 4
            return back < (2 if byte < 0xE0 else 3 if byte < 0xF0 else 4)
    return False


class _GeneratedText(LogitsProcessor):
    """What the constraint processors share: the vocabulary index, the strings of each prompt, and the bytes
    each row has generated so far."""

    def __init__(self, index: TokenIndex, per_prompt: Sequence[Sequence[str]] | None = None,
                 prompt_length: int | None = None) -> None:
        self.index = index
        self.per_prompt = [list(strings) for strings in per_prompt] if per_prompt is not None else None
        self.prompt_length = prompt_length
        self._previous: torch.Tensor | None = None  # the last step's input_ids and generated bytes (_generated)
        self._texts: list[bytes] = []

    def _rows(self, input_ids: torch.LongTensor) -> list[tuple[int, int, bytes]]:
        """(row, prompt number, generated bytes) of each row still generating; the first call fixes where the
        prompt ends."""
        if self.prompt_length is None:
            self.prompt_length = input_ids.shape[1]
        rows = input_ids.shape[0]
        prompts = len(self.per_prompt) if self.per_prompt is not None else rows
        if rows % prompts:
            raise ValueError(f"{type(self).__name__}: {rows} rows for {prompts} prompts; rows must be a multiple")
        texts, last = self._generated(input_ids), input_ids[:, -1].tolist()
        ended = self.index.ending if input_ids.shape[1] > self.prompt_length else ()
        # a row that has ended (its last token is eos or padding) is left alone: what comes next is padding
        return [(row, row // (rows // prompts), text) for row, text in enumerate(texts) if last[row] not in ended]

    def _generated(self, input_ids: torch.LongTensor) -> list[bytes]:
        """Each row's generated bytes. Sampling and greedy decoding add one token per row and step, so the last
        step's bytes get the new token's (decoding every row's whole text again each step grows with its square);
        beam search reorders rows, and then they are rebuilt."""
        units, previous = self.index.units, self._previous
        if (previous is not None and previous.shape[0] == input_ids.shape[0]
                and previous.shape[1] == input_ids.shape[1] - 1 and torch.equal(input_ids[:, :-1], previous)):
            texts = [text + units[i] for text, i in zip(self._texts, input_ids[:, -1].tolist(), strict=True)]
        else:
            texts = [b"".join(units[i] for i in ids) for ids in input_ids[:, self.prompt_length :].tolist()]
        self._previous, self._texts = input_ids, texts
        return texts

    def _strings(self, prompt: int) -> list[str]:
        return self.per_prompt[prompt] if self.per_prompt is not None else []


class StringBan(_GeneratedText):
    """Sets to -inf every token that would complete a banned string: `banned` for every row plus the row's own
    `per_prompt` strings (say, values that contradict its input). A token completes b when b lies inside its
    bytes (found once per string, then cached), or when the text so far ends with b[:k] and the token starts
    with b[k:]: at each step only the split points the text ends with are looked up, each a binary search over
    the sorted vocabulary."""

    def __init__(self, index: TokenIndex, banned: Sequence[str] = (),
                 per_prompt: Sequence[Sequence[str]] | None = None, prompt_length: int | None = None) -> None:
        super().__init__(index, per_prompt, prompt_length)
        self.banned = list(banned)
        self._tables: dict[tuple[bytes, ...], tuple[torch.Tensor, dict[bytes, list[bytes]], int]] = {}
        self._prompt_tables: dict[int, tuple[torch.Tensor, dict[bytes, list[bytes]], int]] = {}

    def _table(self, strings: Sequence[str]) -> tuple[torch.Tensor, dict[bytes, list[bytes]], int]:
        """For a set of banned strings: the ids containing one, {text end b[:k]: [b[k:] ...]}, the longest end."""
        key = tuple(sorted({s.replace(" ", "").encode("utf-8") for s in strings} - {b""}))
        if key not in self._tables:
            inside = [self.index.containing(b) for b in key]
            ends: dict[bytes, list[bytes]] = {}
            for b in key:
                for k in range(1, len(b)):
                    ends.setdefault(b[:k], []).append(b[k:])
            ids = torch.unique(torch.cat(inside)) if inside else torch.empty(0, dtype=torch.long)
            self._tables[key] = (ids, ends, max(map(len, key), default=0))
        return self._tables[key]

    def banned_ids(self, text: bytes, strings: Sequence[str]) -> torch.Tensor:
        """The token ids that would complete one of strings right after text."""
        return self._completing(text, self._table(strings))

    def _completing(self, text: bytes, table: tuple[torch.Tensor, dict[bytes, list[bytes]], int]) -> torch.Tensor:
        inside, ends, longest = table
        found = [inside]
        for j in range(1, min(len(text), longest - 1) + 1):
            for rest in ends.get(text[-j:], ()):
                found.append(self.index.starting_with(rest))
        return torch.cat(found) if len(found) > 1 else inside

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        found = []
        for row, prompt, text in self._rows(input_ids):
            if prompt not in self._prompt_tables:  # once per prompt, not per row and step: the lists are long
                self._prompt_tables[prompt] = self._table([*self.banned, *self._strings(prompt)])
            found.append((row, self._completing(text, self._prompt_tables[prompt])))
        return _scattered(scores, found, -float("inf"), add=False)


class CharNgramBlock(_GeneratedText):
    """Sets to -inf every token that would repeat a character n-gram of the row's text (n-grams with punctuation
    or spaces do not count, so 的设计， may recur). transformers' no_repeat_ngram_size counts tokens, which are
    characters only for the character tokenizer; this counts characters whatever the tokenizer. Exact for the
    n-gram a token's first character completes (every token starting with the character that followed the
    current n-1 characters before); a multi-character token's later n-grams are checked for the check_top
    best-scored candidates, the ones sampling would pick."""

    def __init__(self, index: TokenIndex, n: int = 4, check_top: int = 16, prompt_length: int | None = None) -> None:
        super().__init__(index, None, prompt_length)
        if n < 2:
            raise ValueError(f"CharNgramBlock: n={n}; an n-gram needs two characters or more")
        self.n, self.check_top = n, check_top
        self.chars = [unit.decode("utf-8", errors="ignore") for unit in index.units]
        self._multi_character = any(len(chars) > 1 for chars in self.chars)  # else no token spells two n-grams

    def _counts(self, text: str) -> Counter[str]:
        grams = (text[i : i + self.n] for i in range(len(text) - self.n + 1))
        return Counter(gram for gram in grams if not _PUNCTUATION.search(gram))

    def _followers(self, text: str) -> set[str]:
        """The characters that followed the text's last n-1 characters before (none when they hold punctuation)."""
        context, last_start = text[-(self.n - 1) :], len(text) - self.n
        found: set[str] = set()
        if _PUNCTUATION.search(context):
            return found
        start = text.find(context)
        while -1 < start <= last_start:
            found.add(text[start + self.n - 1])
            start = text.find(context, start + 1)
        return {follower for follower in found if not _PUNCTUATION.match(follower)}

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        live, blocked = [], []
        for row, _, data in self._rows(input_ids):
            text = data.decode("utf-8", errors="ignore")
            if len(text) < self.n - 1 or _ends_mid_character(data):
                continue  # too short, or a character is half written: its next byte is no choice of words
            live.append((row, text))
            blocked += [(row, self.index.starting_with(follower.encode("utf-8")))
                        for follower in self._followers(text)]
        scores = _scattered(scores, blocked, -float("inf"), add=False)
        if not live or not self._multi_character:
            return scores
        best = torch.topk(scores, min(self.check_top, scores.shape[1]), dim=1)
        top_ids, top_scores = best.indices.tolist(), best.values.tolist()
        longer_blocked = []
        for row, text in live:
            seen = None  # counted only when a candidate spells several characters
            for token_id, score in zip(top_ids[row], top_scores[row], strict=True):
                if len(self.chars[token_id]) > 1 and score > -float("inf"):
                    seen = self._counts(text) if seen is None else seen
                    longer = text + self.chars[token_id]
                    if any(seen[gram] for gram in self._counts(longer[max(0, len(text) - self.n + 1) :])):
                        longer_blocked.append((row, torch.tensor([token_id])))
        return _scattered(scores, longer_blocked, -float("inf"), add=False, copy=False)


class MentionBias(_GeneratedText):
    """Adds `bonus` to the logits of tokens that start spelling one of the row's per_prompt strings not yet in its
    text: a soft pull towards the input values the text still leaves out. A string the text has begun (it ends
    with the string's first bytes) gets its continuation pulled instead, and only that: a character or a value
    is finished before another one starts."""

    def __init__(self, index: TokenIndex, per_prompt: Sequence[Sequence[str]], bonus: float = 1.0,
                 prompt_length: int | None = None) -> None:
        super().__init__(index, per_prompt, prompt_length)
        self.bonus = bonus
        self._pulled: dict[tuple[bytes, ...], torch.Tensor] = {}

    def pulled_ids(self, text: bytes, strings: Sequence[str]) -> torch.Tensor:
        """The token ids MentionBias favours after text."""
        wanted = [s.replace(" ", "").encode("utf-8") for s in strings]
        missing = [value for value in wanted if value and value not in text]
        # per value, the furthest it has got: after 国 of 国家级 comes 家, not a second 国
        going_on = [next((value[k:] for k in range(len(value) - 1, 0, -1) if text.endswith(value[:k])), b"")
                    for value in missing]
        going_on = tuple(rest for rest in going_on if rest)
        pieces = going_on if going_on or _ends_mid_character(text) else tuple(missing)
        if pieces not in self._pulled:  # rows and steps share a few states: the union is made once for each
            found = [self.index.spelling(piece) for piece in pieces]
            self._pulled[pieces] = torch.unique(torch.cat(found)) if found else torch.empty(0, dtype=torch.long)
        return self._pulled[pieces]

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        found = [(row, self.pulled_ids(text, self._strings(prompt))) for row, prompt, text in self._rows(input_ids)]
        return _scattered(scores, found, self.bonus, add=True)


def _scattered(scores: torch.FloatTensor, found: Sequence[tuple[int, torch.Tensor]], value: float,
               add: bool, copy: bool = True) -> torch.FloatTensor:
    """scores (a copy unless copy=False: a processor's own copy already) with value set at (add=False) or added to
    (add=True) each row's ids, in one indexed write for the whole batch (a write per row costs more than the
    lookups); each row's ids are distinct."""
    scores = scores.clone() if copy else scores
    found = [(row, ids) for row, ids in found if len(ids)]
    if found:
        rows = torch.cat([torch.full((len(ids),), row, dtype=torch.long) for row, ids in found]).to(scores.device)
        ids = torch.cat([ids for _, ids in found]).to(scores.device)
        if add:
            scores[rows, ids] += value
        else:
            scores[rows, ids] = value
    return scores
