"""Pseudonymous user ids: a salted hash whose salt is a per-user secret, never in git, DVC outputs or MLflow.

The salt is `$REASONGEN_EXPLAIN_SALT` when set, else the content of `explain_salt` in the user's secrets folder
(`$REASONGEN_SECRETS_DIR`, default `~/.config/reasongen`), created on first use from `secrets.token_hex` with
permissions 0600. Without the salt a pseudonym cannot be recomputed from a public reviewer id."""

from __future__ import annotations

import hashlib
import json
import os
import secrets
from pathlib import Path
from typing import Any

SALT_ENV = "REASONGEN_EXPLAIN_SALT"
SECRETS_DIR_ENV = "REASONGEN_SECRETS_DIR"
SALT_FILE = "explain_salt"
ID_FIELD, NAME_FIELD = "reviewerID", "reviewerName"


def secrets_dir() -> Path:
    configured = os.environ.get(SECRETS_DIR_ENV)
    return Path(configured).expanduser() if configured else Path.home() / ".config" / "reasongen"


def salt_file() -> Path:
    return secrets_dir() / SALT_FILE


def salt() -> str:
    """$REASONGEN_EXPLAIN_SALT, else the user's salt file, created with a fresh random salt on first use."""
    if os.environ.get(SALT_ENV):
        return os.environ[SALT_ENV]
    path = salt_file()
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        try:  # O_EXCL: two processes starting at once keep one salt; 0600 from creation on, no window
            handle = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass
        else:
            with os.fdopen(handle, "w", encoding="utf-8") as out:
                out.write(secrets.token_hex(32) + "\n")
    value = path.read_text(encoding="utf-8").strip()
    if not value:
        raise ValueError(f"{path} is empty: delete it to generate a new salt, or set {SALT_ENV}")
    return value


def pseudonym(user_id: str, salt_value: str | None = None) -> str:
    """`u` + 12 hex digits of sha256(salt + id): stable for one salt, not reversible without it."""
    digest = hashlib.sha256(f"{salt() if salt_value is None else salt_value}\x00{user_id}".encode()).hexdigest()
    return "u" + digest[:12]


def pseudonymise(rows: list[dict[str, Any]], salt_value: str) -> list[dict[str, Any]]:
    """The rows with their raw `user` replaced by its pseudonym (after the split, which sees raw ids only)."""
    return [{**row, "user": pseudonym(row["user"], salt_value)} for row in rows]


def redact(raw: str, salt_value: str) -> str | None:
    """A rejected review line with reviewerName removed and reviewerID pseudonymised, or None when that cannot be
    done safely: the line is no complete JSON object (not JSON, cut short, an array...), its id is not a string, or
    an id or name field is left anywhere after redaction (nested or repeated fields)."""
    try:
        row: Any = json.loads(raw)
    except (ValueError, RecursionError):
        return None
    if not isinstance(row, dict) or not isinstance(row.get(ID_FIELD, ""), str):
        return None
    removed = [value for value in (row.pop(NAME_FIELD, None), row.get(ID_FIELD)) if isinstance(value, str) and value]
    if ID_FIELD in row:
        row[ID_FIELD] = pseudonym(row[ID_FIELD].strip(), salt_value)
    text = json.dumps(row, ensure_ascii=False)
    leaks = [NAME_FIELD, *(value.strip() for value in removed)]
    if text.count(f'"{ID_FIELD}"') > 1 or any(value and value in text for value in leaks):
        return None
    return text


def redact_quarantined(record: dict[str, Any], salt_value: str) -> dict[str, Any]:
    """A quarantine record that keeps no name and no raw id: the redacted line, or only line number and reason
    when the line cannot be redacted safely. The detail is kept where the validation wrote it from field names,
    types and decoder positions; an unexpected error's message may quote the line, so it goes."""
    record = {**record, "detail": None if record["reason"] == "unexpected error" else record["detail"]}
    raw = redact(record["raw"], salt_value)
    if raw is not None:
        return {**record, "raw": raw}
    return {"line": record["line"], "reason": record["reason"], "detail": record["detail"], "raw": None,
            "raw_dropped": "cannot be redacted safely"}
