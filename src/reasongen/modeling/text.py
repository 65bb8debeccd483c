"""Turning token ids back into clean Chinese text, whatever the tokenizer."""

from __future__ import annotations

import re

# WordPiece decoders put a space between every token; in Chinese text a space next to a non-ASCII
# character is an artefact, while spaces between ASCII words are real.
_SPACE_NEAR_WIDE = re.compile(r"(?<=[^\x00-\x7f]) +| +(?=[^\x00-\x7f])")


def clean_decoded(text: str) -> str:
    """Drop tokenizer-made spaces around CJK characters and strip the ends."""
    return _SPACE_NEAR_WIDE.sub("", text.replace("##", "")).strip()


def decode(tokenizer, ids) -> str:
    """Decode generated ids to text without special tokens."""
    return clean_decoded(tokenizer.decode(ids, skip_special_tokens=True, clean_up_tokenization_spaces=False))
