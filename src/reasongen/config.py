"""The composed configuration: Hydra composes conf/ into params.yaml, stages read params.yaml. Every override, on
conf/ or on params.yaml, is checked strictly (overrides.py)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf

from reasongen.errors import UserError
from reasongen.overrides import (
    check_option,
    check_value,
    conf_dir,
    first_line,
    group_names,
    is_group,
    parse_overrides,
)

PARAMS_FILE = "params.yaml"
HEADER = "# Generated from conf/ by `reasongen params`; edit conf/ or pass overrides, then regenerate.\n"


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
