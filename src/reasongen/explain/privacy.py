"""Pseudonymous user ids: a salted hash, the salt read from the environment and never written anywhere."""

from __future__ import annotations

import hashlib
import os
import re

SALT_ENV = "REASONGEN_EXPLAIN_SALT"
# Used only when $REASONGEN_EXPLAIN_SALT is unset, so that a clean clone reproduces the same pseudonyms and split.
# Set your own secret salt for real data: the pseudonyms then cannot be recomputed from public reviewer ids.
DEFAULT_SALT = "reasongen-explain-reproducible-default"
_REVIEWER_ID = re.compile(r'"reviewerID"\s*:\s*"((?:[^"\\]|\\.)*)"')
_REVIEWER_NAME = re.compile(r'"reviewerName"\s*:\s*"(?:[^"\\]|\\.)*"\s*,?\s*')


def salt() -> str:
    return os.environ.get(SALT_ENV) or DEFAULT_SALT


def pseudonym(user_id: str, salt_value: str | None = None) -> str:
    """`u` + 12 hex digits of sha256(salt + id): stable for one salt, not reversible without it."""
    digest = hashlib.sha256(f"{salt() if salt_value is None else salt_value}\x00{user_id}".encode()).hexdigest()
    return "u" + digest[:12]


def redact(raw: str, salt_value: str | None = None) -> str:
    """A raw review line with reviewerName removed and reviewerID pseudonymised (for the quarantine file)."""
    raw = _REVIEWER_NAME.sub("", raw)
    return _REVIEWER_ID.sub(lambda m: f'"reviewerID": "{pseudonym(m.group(1), salt_value)}"', raw)
