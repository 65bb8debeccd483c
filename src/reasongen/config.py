"""The composed configuration: Hydra composes conf/ into params.yaml, stages read params.yaml."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf

from reasongen.paths import repo_root

PARAMS_FILE = "params.yaml"
HEADER = "# Generated from conf/ by `reasongen params`; edit conf/ or pass overrides, then regenerate.\n"


def compose(overrides: Sequence[str] = (), config_dir: str | Path | None = None) -> DictConfig:
    """Compose conf/config.yaml with Hydra overrides (`peft=ia3`, `finetune.lr=1e-3`, `experiment=tiny`)."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    folder = Path(config_dir) if config_dir else repo_root() / "conf"
    with initialize_config_dir(config_dir=str(folder.resolve())):
        cfg = hydra_compose(config_name="config", overrides=list(overrides))
    return cfg


def write_params(cfg: DictConfig, path: str | Path = PARAMS_FILE) -> None:
    """Write a composed config as params.yaml (resolved, so DVC sees plain values)."""
    text = OmegaConf.to_yaml(cfg, resolve=True)
    Path(path).write_text(HEADER + text, encoding="utf-8")


def load_params(path: str | Path = PARAMS_FILE, overrides: Sequence[str] = ()) -> DictConfig:
    """params.yaml as a DictConfig, with optional dotlist overrides (`finetune.epochs=1`)."""
    cfg = OmegaConf.load(path)
    if overrides:
        cfg = OmegaConf.merge(cfg, OmegaConf.from_dotlist(list(overrides)))
    return cfg


def apply_overrides(cfg: DictConfig, overrides: Sequence[str], config_dir: str | Path | None = None) -> DictConfig:
    """Hydra-style overrides on an already composed config (params.yaml): `group=option` replaces that section
    with conf/<group>/<option>.yaml as Hydra composes it, `a.b=value` sets one value (parsed as Hydra does)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parser = OverridesParser.create()
    folder = Path(config_dir) if config_dir else repo_root() / "conf"
    result = OmegaConf.create(OmegaConf.to_container(cfg, resolve=True))
    for override in overrides:
        key, _, value = override.lstrip("+").partition("=")
        if "." not in key and (folder / key).is_dir():
            result[key] = compose([f"{key}={value}"], config_dir=folder)[key]
        else:
            OmegaConf.update(result, key, parser.parse_override(f"{key}={value}").value(), force_add=True)
    return result


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
