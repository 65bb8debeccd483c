"""Strict overrides, for conf/ and for params.yaml alike: Hydra parses each one; a sweep, an unknown key or group
option, or a value of another type than the one it replaces is a UserError naming the closest valid key or option."""

from __future__ import annotations

import difflib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from reasongen.errors import UserError
from reasongen.paths import repo_root

SWEEP_HINT = ("a command runs one configuration; to try several, search with `make sweep` / `reasongen sweep` "
              "(Optuna over conf/hparams_search/), or queue variants with `dvc exp run --queue -S finetune.lr=1e-3 "
              "-S finetune.lr=1e-4` and then `dvc queue start`")


def conf_dir(config_dir: str | Path | None = None) -> Path:
    return Path(config_dir) if config_dir else repo_root() / "conf"


def parse_overrides(overrides: Sequence[str]) -> list:
    """Hydra's parse of each override; a malformed one or a sweep (`a=1,2`, `range(...)`) is a UserError."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    parser = OverridesParser.create()
    parsed = []
    for text in overrides:
        try:
            override = parser.parse_override(text)
        except HydraException as error:
            raise UserError(f"{text}: not an override of the form key=value ({first_line(error)})") from None
        if override.is_sweep_override():
            raise UserError(f"{text}: a sweep; {SWEEP_HINT}")
        parsed.append(override)
    return parsed


def is_group(override, folder: Path) -> bool:
    """Whether the override picks a config group option (`peft=lora`, `peft@explain.peft=lora`, `+hparams_search=x`)."""
    return not getattr(override, "is_value_path", False) and (folder / override.key_or_group).is_dir()


def group_names(folder: Path) -> list[str]:
    """The config groups of conf/ (none outside a checkout)."""
    return [path.name for path in folder.iterdir() if path.is_dir()] if folder.is_dir() else []


def check_option(override, folder: Path) -> None:
    """A group option that conf/ has, else a UserError naming the closest one."""
    if override.is_delete():
        return
    group, option = override.key_or_group, override.value()
    options = sorted(path.stem for path in (folder / group).glob("*.yaml"))
    if not isinstance(option, str) or option not in options:
        close = difflib.get_close_matches(str(option), options, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise UserError(f"{override.input_line}: conf/{group} has no option {option!r}{hint} "
                        f"(options: {', '.join(options)})")


def keys_of(container: Any, prefix: str = "") -> list[str]:
    """Every dotted key of a plain config (sections included): the candidates for `did you mean`."""
    found = []
    if isinstance(container, dict):
        for key, value in container.items():
            name = f"{prefix}{key}"
            found += [name, *keys_of(value, f"{name}.")]
    return found


def lookup(container: Any, key: str) -> tuple[bool, Any]:
    """(whether the dotted key exists, its value) in a plain config."""
    node = container
    for part in key.split("."):
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return False, None
    return True, node


# What a value may be replaced with, by the type of the value it replaces (bool before int: True is an int).
_TYPES = ((bool, (bool,), "true or false"), (int, (int,), "an integer"), (float, (int, float), "a number"),
          (str, (str, int, float, bool), "a string"), (list, (list,), "a list"), (dict, (dict,), "a mapping"))


def check_value(override, container: dict[str, Any], groups: Sequence[str] = ()) -> None:
    """A value override of a key the config has (or an explicit `+key` / `~key`), of the type of the value it
    replaces (null and interpolations take anything, and anything may be set to null); else a UserError."""
    key = override.key_or_group
    exists, old = lookup(container, key)
    if override.is_add() or override.is_force_add():
        return
    if not exists:
        close = difflib.get_close_matches(key, [*keys_of(container), *groups], n=1, cutoff=0.6)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise UserError(f"{override.input_line}: the config has no key {key!r}{hint} (to add a key on purpose, "
                        f"write +{key}=...)")
    new = override.value()
    if override.is_delete() or old is None or new is None or (isinstance(old, str) and ("${" in old or old == "???")):
        return
    for kind, accepted, words in _TYPES:
        if isinstance(old, kind):
            if not isinstance(new, accepted) or (kind is not bool and kind is not str and isinstance(new, bool)):
                shown = json.dumps(old, ensure_ascii=False, default=str)
                raise UserError(f"{override.input_line}: {key} takes {words} (it is {shown}), not {new!r}")
            return


def first_line(error: BaseException) -> str:
    lines = [line.strip() for line in str(error).strip().splitlines() if line.strip()]
    return lines[0] if lines else type(error).__name__

