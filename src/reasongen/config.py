"""The composed configuration: Hydra composes conf/ into params.yaml, stages read params.yaml. Every override, on
conf/ or on params.yaml, is strict: an unknown key or group option, a value of the wrong type or a sweep is a
UserError naming the closest valid key or option."""

from __future__ import annotations

import difflib
import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf

from reasongen.errors import UserError
from reasongen.paths import repo_root

PARAMS_FILE = "params.yaml"
HEADER = "# Generated from conf/ by `reasongen params`; edit conf/ or pass overrides, then regenerate.\n"
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


def _hydra_compose(overrides: Sequence[str], folder: Path) -> DictConfig:
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    try:
        with initialize_config_dir(config_dir=str(folder.resolve())):
            return hydra_compose(config_name="config", overrides=list(overrides))
    except (HydraException, OmegaConfBaseException) as error:
        raise UserError(f"{' '.join(overrides)}: {first_line(error)}") from None


def compose(overrides: Sequence[str] = (), config_dir: str | Path | None = None) -> DictConfig:
    """Compose conf/config.yaml with Hydra overrides (`peft=ia3`, `finetune.lr=1e-3`, `experiment=tiny`), strictly:
    each group option must exist, each key must exist (or be added with `+`) and keep its type."""
    folder = conf_dir(config_dir)
    parsed = parse_overrides(overrides)
    groups = [o for o in parsed if is_group(o, folder)]
    for override in groups:
        check_option(override, folder)
    values = [o for o in parsed if not is_group(o, folder)]
    if values:
        base = OmegaConf.to_container(_hydra_compose([o.input_line for o in groups], folder), resolve=False)
        for override in values:
            check_value(override, base, group_names(folder))
    return _hydra_compose(list(overrides), folder)


def write_params(cfg: DictConfig, path: str | Path = PARAMS_FILE) -> None:
    """Write a composed config as params.yaml (resolved, so DVC sees plain values)."""
    text = OmegaConf.to_yaml(cfg, resolve=True)
    Path(path).write_text(HEADER + text, encoding="utf-8")


def load_params(path: str | Path = PARAMS_FILE, overrides: Sequence[str] = (),
                config_dir: str | Path | None = None) -> DictConfig:
    """params.yaml as a DictConfig, with overrides applied as apply_overrides does (`finetune.epochs=1`)."""
    if not Path(path).is_file():
        raise UserError(f"{path}: no such params file (write it with `reasongen params`, or pass --params)")
    try:
        cfg = OmegaConf.load(path)
    except Exception as error:  # noqa: BLE001 - YAML's and OmegaConf's errors alike: not a params file
        raise UserError(f"{path}: not a params file ({first_line(error)})") from None
    if not isinstance(cfg, DictConfig):
        raise UserError(f"{path}: not a params file (a YAML mapping of sections)")
    return apply_overrides(cfg, overrides, config_dir) if overrides else cfg


def apply_overrides(cfg: DictConfig, overrides: Sequence[str], config_dir: str | Path | None = None) -> DictConfig:
    """Hydra-style overrides on an already composed config (params.yaml), as strictly as compose: `group=option`
    (or `group@section=option`) replaces that section with conf/<group>/<option>.yaml as Hydra composes it, `a.b=value`
    sets one value the config has (parsed as Hydra does, of the same type), `+a.b=value` adds one."""
    folder = conf_dir(config_dir)
    result = OmegaConf.create(OmegaConf.to_container(cfg, resolve=True))
    for override in parse_overrides(overrides):
        if is_group(override, folder):
            check_option(override, folder)
            section = override.package or override.key_or_group
            composed = OmegaConf.select(_hydra_compose([override.input_line], folder), section)
            if composed is None:  # a preset such as experiment=tiny sets many sections, not one
                raise UserError(f"{override.input_line}: this option changes several sections; recompose params.yaml "
                                f"with `reasongen params {override.input_line.lstrip('+')}`")
            OmegaConf.update(result, section, composed, merge=False, force_add=True)
            continue
        key = override.key_or_group
        check_value(override, OmegaConf.to_container(result), group_names(folder))
        if override.is_delete():
            parent, _, leaf = key.rpartition(".")
            node = OmegaConf.select(result, parent) if parent else result
            node.pop(leaf)
        else:
            OmegaConf.update(result, key, override.value(), merge=False, force_add=True)
    return result


def check_within(overrides: Sequence[str], keys: Sequence[str] | None, stage: str) -> None:
    """Overrides for a stage must be of params it reads (keys: what dvc.yaml lists for it; None: every param): an
    override of another one would be silently ignored."""
    if keys is None:
        return
    for override in parse_overrides(overrides):
        key = override.package or override.key_or_group
        if not any(key == k or key.startswith(f"{k}.") or k.startswith(f"{key}.") for k in keys):
            raise UserError(f"{override.input_line}: stage {stage} does not read {key} (it reads {', '.join(keys)})")


def to_container(cfg: DictConfig | dict) -> dict[str, Any]:
    """A plain dict of a config section."""
    return OmegaConf.to_container(cfg, resolve=True) if isinstance(cfg, DictConfig) else dict(cfg)


def flatten(cfg: DictConfig | dict, prefix: str = "") -> dict[str, Any]:
    """`{"a": {"b": 1}}` -> `{"a.b": 1}`; the one flattening used for MLflow params and sweeps."""
    flat: dict[str, Any] = {}
    for key, value in to_container(cfg).items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            flat.update(flatten(value, prefix=f"{name}."))
        else:
            flat[name] = value
    return flat


def config_hash(*sections: DictConfig | dict | int | str | None) -> str:
    """A short stable hash of config sections (checkpoint folders, lineage tags)."""
    payload = json.dumps([to_container(s) if isinstance(s, (DictConfig, dict)) else s for s in sections],
                         sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:12]


def declared_params(stage: str, dvc_file: str | Path = "dvc.yaml") -> list[str] | None:
    """The params keys dvc.yaml lists for `stage` (None: every param, or no dvc.yaml to read)."""
    import yaml

    path = Path(dvc_file)
    if not path.exists():
        return None
    spec = yaml.safe_load(path.read_text(encoding="utf-8"))["stages"].get(stage)
    if spec is None:
        raise KeyError(f"{path} has no stage {stage!r}")
    keys: list[str] = []
    for entry in spec.get("params", []):
        if isinstance(entry, str):
            keys.append(entry)
        elif PARAMS_FILE in entry and not entry[PARAMS_FILE]:
            return None  # `- params.yaml:` declares every param
        else:
            keys += [key for keys_of_file in entry.values() for key in keys_of_file or []]
    return keys


def restrict(cfg: DictConfig, keys: Sequence[str] | None, stage: str = "") -> DictConfig:
    """Only `keys` of cfg (None: all of it), in struct mode: a stage that reads a key its dvc.yaml entry does not
    list fails at once, instead of DVC missing the change that should have re-run it."""
    if keys is None:
        result = OmegaConf.create(OmegaConf.to_container(cfg, resolve=True))
    else:
        result = OmegaConf.create()
        for key in keys:
            value = OmegaConf.select(cfg, key, default=_MISSING)
            if value is _MISSING:
                raise KeyError(f"dvc.yaml lists param {key!r} for stage {stage!r}, but params.yaml has no such key")
            if isinstance(value, DictConfig | ListConfig):
                value = OmegaConf.to_container(value, resolve=True)
            OmegaConf.update(result, key, value, force_add=True)
    OmegaConf.set_struct(result, True)
    return result


_MISSING = object()
