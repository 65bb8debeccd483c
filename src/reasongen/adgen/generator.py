"""The fine-tuned Task A model as a text generator: rows -> candidates -> one chosen, repaired text each; from a
model folder or a registered model."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from transformers import LogitsProcessor

from reasongen.adgen.prompts import PROMPT_END, prompt_for_row
from reasongen.adgen.retrieve_edit import ClauseBank
from reasongen.adgen.selection import Checks, choose
from reasongen.errors import UserError
from reasongen.io import read_jsonl
from reasongen.metrics.text_quality import hallucination_candidates, unlisted_candidates
from reasongen.modeling import model_io
from reasongen.modeling.constraints import CharNgramBlock, MentionBias, StringBan, TokenIndex
from reasongen.modeling.generation import ProcessorsFor, generate_candidates, mean_log_likelihoods
from reasongen.processes import fork_map
from reasongen.rows import is_missing
from reasongen.text.attributes import parse_content, values
from reasongen.text.controls import LENGTH_BUCKETS, aspect_lexicon, decoder_bans

_KEYWORD_SEPARATORS = re.compile("[,，、]")


class Generator:
    """Rows in the AdvertiseGen format (+ optional controls) -> texts, with the decoding saved beside the model:
    `num_candidates` samples (+ the greedy text) per row and `retrieve_edit.neighbours` edited human texts
    (adgen/retrieve_edit.py), one chosen by `selection` after `repair`."""

    def __init__(self, model, tokenizer, generation: dict[str, Any], checks: Checks,
                 train_texts: list[dict[str, Any]] | None = None):
        self.model = model
        self.tokenizer = tokenizer
        self.generation = dict(generation)
        self.checks = checks
        self.train_texts = train_texts or []  # the fine-tuning split's content + summary: retrieve-and-edit's source
        self._index: TokenIndex | None = None  # the tokenizer's byte index, built on first use
        self._bank: ClauseBank | None = None  # built on first use
        self._likelihoods: dict[tuple[str, str], float] = {}  # (prompt, text) -> mean token log-probability

    @classmethod
    def from_dir(cls, model_dir: str | Path, generation: dict[str, Any] | None = None,
                 trust_remote_code: bool = False) -> Generator:
        model, tokenizer, meta = model_io.load_model(model_dir, model_io.default_device(), trust_remote_code)
        generation = {"max_source_length": meta.get("max_source_length"), **(generation or {})}
        model = model.to(model_io.inference_dtype(generation.get("dtype")))
        if "length_bounds" not in meta or "checked_keys" not in generation:
            raise UserError(f"{model_dir}: needs a fine-tuned reasongen model folder (with length_bounds) and "
                             "decoding settings with checked_keys (a registered model or params.yaml carries them)")
        texts_file = Path(model_dir) / model_io.TRAIN_TEXTS_FILE
        train_texts = read_jsonl(texts_file) if texts_file.exists() else None
        return cls(model, tokenizer, generation, rule_checks(meta, generation), train_texts)

    def candidates(self, rows: list[dict[str, Any]], use_controls: bool = True, progress: bool = True,
                   **overrides: Any) -> list[list[str]]:
        """Every candidate text of every row (num_candidates samples, then the greedy text if include_greedy),
        decoded under the configured `constraints`."""
        cfg = {**self.generation, **overrides}
        prompts = [prompt_for_row(row, use_controls) for row in rows]
        return generate_candidates(self.model, self.tokenizer, prompts, cfg, prompt_end=PROMPT_END,
                                   progress=progress, processors=self.constraints(rows, cfg.get("constraints")))

    def retrieved(self, rows: list[dict[str, Any]], use_controls: bool = True, **overrides: Any) -> list[list[str]]:
        """Each row's retrieve-and-edit candidates (`retrieve_edit.neighbours` of them at most; none when 0), for
        the controls when use_controls."""
        cfg = {**self.generation, **overrides}
        neighbours = int((cfg.get("retrieve_edit") or {}).get("neighbours") or 0)
        if not neighbours:
            return [[] for _ in rows]
        if not self.train_texts:
            raise UserError(f"generation.retrieve_edit.neighbours={neighbours} needs the training texts beside the "
                            f"model ({model_io.TRAIN_TEXTS_FILE}, written by the finetune stage); this model has "
                            "none: set generation.retrieve_edit.neighbours=0")
        bank, seed, checks = self._clause_bank(), int(cfg.get("seed", 0)), self.checks
        return fork_map(lambda row: bank.candidates(row, checks, neighbours, seed), _targets(rows, use_controls))

    def constraints(self, rows: list[dict[str, Any]], spec: dict[str, Any] | None) -> ProcessorsFor | None:
        """The decoding constraints for rows (None: none configured). spec: mention_bonus (a logit bonus for
        starting an input value the text has not named), ngram_block (n: no character n-gram twice, 0 off),
        ban_contradictions (never spell a known value of a key the input lists that the input does not give),
        ban_unlisted (never spell a known value of a key the input does not list: no detail the shop never gave),
        ban_wording (never spell an advertising-law word)."""
        if not spec or not any(spec.values()):
            return None
        if self._index is None:
            self._index = TokenIndex.of(self.tokenizer)
        index, lexicon = self._index, self.checks.value_lexicon
        pairs = [parse_content(row["content"]) for row in rows]
        wording = decoder_bans() if spec.get("ban_wording") else []

        def row_bans(found_pairs) -> list[str]:
            """The values this row's text must not spell: contradictions of listed keys, details of unlisted ones."""
            banned = []
            if spec.get("ban_contradictions"):
                banned += [value for _, value in hallucination_candidates(found_pairs, lexicon)]
            if spec.get("ban_unlisted"):
                banned += [value for _, value in unlisted_candidates(found_pairs, lexicon)]
            return banned

        def build(batch: Sequence[int]) -> list[LogitsProcessor]:
            chosen = [pairs[i] for i in batch]
            found: list[LogitsProcessor] = []
            if spec.get("mention_bonus"):
                found.append(MentionBias(index, per_prompt=[values(p) for p in chosen], bonus=spec["mention_bonus"]))
            if spec.get("ngram_block"):
                found.append(CharNgramBlock(index, n=int(spec["ngram_block"])))
            per_row = [row_bans(p) for p in chosen]
            if wording or any(per_row):  # last, so that no bonus lifts a banned token back
                found.append(StringBan(index, banned=wording, per_prompt=per_row))
            return found

        return build

    def choose(self, rows: list[dict[str, Any]], candidates: list[list[str]], use_controls: bool = True,
               voters: Sequence[int] | None = None, **overrides: Any) -> list[str]:
        """One text per row from its candidates, by the configured selection and repair. Without controls the
        rows' aspect / length requests are not the model's to meet, so selection ignores them. voters: how many of
        each row's first candidates are the model's own (selection.publish_samples decides whether they may win)."""
        cfg = {**self.generation, **overrides}
        count = int((cfg.get("selection") or {}).get("evidence_texts") or 0)
        return choose(candidates, _targets(rows, use_controls), self.checks, cfg.get("selection"), cfg.get("repair"),
                      likelihoods=lambda _, found: self.likelihoods(rows, found, use_controls),
                      evidence=lambda: self.neighbour_texts(rows, count), voters=voters)

    def choose_pooled(self, rows: list[dict[str, Any]], found: list[list[str]], edited: list[list[str]],
                      use_controls: bool = True, **overrides: Any) -> list[str]:
        """choose among each row's whole pool: the model's candidates (found, its voters) and the edited ones."""
        return self.choose(rows, joined(found, edited), use_controls, [len(texts) for texts in found], **overrides)

    def neighbour_texts(self, rows: list[dict[str, Any]], count: int) -> list[list[str]]:
        """The human texts of the `count` training products whose attributes overlap each row's most (selection's
        evidence); none without training texts or with count 0."""
        if not count or not self.train_texts:
            return [[] for _ in rows]
        bank = self._clause_bank()
        return [[bank.rows[position]["summary"] for position in bank.retrieval.ranked({"content": row["content"]},
                                                                                      count)] for row in rows]

    def _clause_bank(self) -> ClauseBank:
        if self._bank is None:
            self._bank = ClauseBank(self.train_texts, self.checks.value_lexicon)
        return self._bank

    def likelihoods(self, rows: list[dict[str, Any]], candidates: Sequence[Sequence[str]],
                    use_controls: bool = True) -> list[list[float]]:
        """The model's mean token log-probability of each row's candidates after the row's prompt: how readily the
        model itself would write a text (a borrowed clause that does not join on reads as unlikely). Cached: the
        decoding ablation asks again for the same texts. A text is scored as far as the model may write
        (max_new_tokens): a longer human text would run past the model's positions."""
        prompts = [prompt_for_row(row, use_controls) for row in rows]
        wanted = list(dict.fromkeys((prompt, text) for prompt, found in zip(prompts, candidates, strict=True)
                                    for text in found if (prompt, text) not in self._likelihoods))
        if len(self._likelihoods) > 100_000:  # a long-running server: keep the cache bounded
            self._likelihoods.clear()
        if wanted:
            limit = int(self.generation.get("max_new_tokens") or 256)
            values = mean_log_likelihoods(self.model, self.tokenizer, wanted, self.generation.get("max_source_length"),
                                          limit, prompt_end=PROMPT_END)
            self._likelihoods.update(zip(wanted, values, strict=True))
        return [[self._likelihoods[prompt, text] for text in found]
                for prompt, found in zip(prompts, candidates, strict=True)]

    def generate(self, rows: list[dict[str, Any]], use_controls: bool = True, progress: bool = True,
                 **overrides: Any) -> list[str]:
        found = self.candidates(rows, use_controls, progress, **overrides)
        edited = self.retrieved(rows, use_controls, **overrides)
        return self.choose_pooled(rows, found, edited, use_controls, **overrides)


def _targets(rows: list[dict[str, Any]], use_controls: bool) -> list[dict[str, Any]]:
    """The rows as the rules see them: without controls only their content (their aspect / length / keyword
    requests are not the model's to meet)."""
    return rows if use_controls else [{"content": row["content"]} for row in rows]


def joined(found: list[list[str]], edited: list[list[str]]) -> list[list[str]]:
    """Each row's whole candidate pool: the model's candidates, then the retrieve-and-edit ones."""
    return [a + b for a, b in zip(found, edited, strict=True)]


def rule_checks(meta: dict[str, Any], generation: dict[str, Any]) -> Checks:
    """The rules a model was fine-tuned and evaluated with (its folder's meta: the training split's values, the
    length buckets) and the keys its decoding checks."""
    return Checks(value_lexicon=meta.get("value_lexicon") or {}, checked_keys=tuple(generation["checked_keys"]),
                  length_bounds=tuple(meta["length_bounds"]))


def load_text_generator(model: str, trust_remote_code: bool = False) -> Generator:
    """A Generator from `models:/name/version`, `models:/name@alias`, `runs:/id/model`, or a model folder."""
    from reasongen import tracking

    if tracking.is_model_uri(model):
        return tracking.load_registered_generator(model, trust_remote_code)
    return Generator.from_dir(model, trust_remote_code=trust_remote_code)


def check_control(field: str, value: Any) -> str | None:
    """A control as asked (None: not asked), or ValueError: aspect must be one of the aspect lexicon's, length_bucket
    one of short / medium / long (the values the model was trained with)."""
    if is_missing(value):
        return None
    allowed = tuple(aspect_lexicon()) if field == "aspect" else LENGTH_BUCKETS
    if not isinstance(value, str) or value.strip() not in allowed:
        raise ValueError(f"{field} {value!r} is not one of {', '.join(allowed)}")
    return value.strip()


def keyword_list(value: Any) -> list[str]:
    """Keywords as a list of words or one string of words separated by commas or 、; ValueError otherwise."""
    if is_missing(value):
        return []
    words = _KEYWORD_SEPARATORS.split(value) if isinstance(value, str) else value
    if not isinstance(words, list) or not all(isinstance(word, str) for word in words):
        raise ValueError(f"keywords {value!r}: a list of words, or one string of words separated by commas")
    return [word.strip() for word in words if word.strip()]


def request_row(record: dict[str, Any]) -> dict[str, Any]:
    """A generation row from a request or an input-file record, or ValueError saying what is wrong with it: content
    must be key#value pairs; controls as check_control and keyword_list take them (shared by the CLI and serving)."""
    content = record.get("content")
    if not isinstance(content, str) or not content.strip():
        raise ValueError('needs a non-empty string field "content" such as 类型#裙*颜色#蓝色')
    try:
        parse_content(content)
    except ValueError as error:
        raise ValueError(f"content: {error} (key#value pairs joined by *, e.g. 类型#裙*颜色#蓝色)") from None
    return {"content": content, "aspect": check_control("aspect", record.get("aspect")),
            "length_bucket": check_control("length_bucket", record.get("length_bucket")),
            "keywords": keyword_list(record.get("keywords"))}
