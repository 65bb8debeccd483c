"""conf/ composes for every option of every group, and the committed params.yaml is what conf/ composes."""

from __future__ import annotations

from pathlib import Path

import pytest
from omegaconf import OmegaConf

from reasongen.cli import main
from reasongen.config import compose, config_hash, flatten, load_params, to_container, write_params

CONF = Path(__file__).resolve().parents[1] / "conf"
REPO = CONF.parent
GROUPS = ("data", "tokenizer", "model", "pretrain", "peft", "finetune", "trainer", "generation", "evaluate",
          "tracking", "serving")


def options(group: str) -> list[str]:
    return sorted(path.stem for path in (CONF / group).glob("*.yaml"))


def test_committed_params_match_conf() -> None:
    assert main(["params", "--check", "--output", str(CONF.parent / "params.yaml")]) == 0


def test_check_notices_a_drift(tmp_path: Path) -> None:
    drifted = tmp_path / "params.yaml"
    write_params(compose(["finetune.lr=0.5"], config_dir=CONF), drifted)
    assert main(["params", "--check", "--output", str(drifted)]) == 1


@pytest.mark.parametrize("group", GROUPS)
def test_every_option_of_every_group_composes(group: str) -> None:
    for option in options(group):
        overrides = [f"{group}={option}"] + (["model.name_or_path=some/model"] if option == "hub" else [])
        cfg = compose(overrides, config_dir=CONF)
        assert set(GROUPS) <= set(cfg), f"{group}={option} lost a section"


def test_peft_group_covers_every_method() -> None:
    assert {compose([f"peft={o}"], config_dir=CONF).peft.method for o in options("peft")} == {
        "none", "lora", "adalora", "prefix", "prompt", "ia3"}


def test_tiny_experiment_overrides_and_params_round_trip(tmp_path: Path) -> None:
    cfg = compose(["experiment=tiny"], config_dir=CONF)
    default = compose([], config_dir=CONF)
    assert cfg.model.config.n_embd < default.model.config.n_embd and cfg.data.max_rows
    write_params(cfg, tmp_path / "params.yaml")
    assert to_container(load_params(tmp_path / "params.yaml")) == to_container(cfg)
    assert load_params(tmp_path / "params.yaml", ["finetune.epochs=7"]).finetune.epochs == 7


def test_flatten_and_hash() -> None:
    cfg = OmegaConf.create({"a": {"b": 1, "c": {"d": [1, 2]}}, "e": "x"})
    assert flatten(cfg) == {"a.b": 1, "a.c.d": [1, 2], "e": "x"}
    assert config_hash(cfg) == config_hash(OmegaConf.create({"e": "x", "a": {"c": {"d": [1, 2]}, "b": 1}}))
    assert config_hash(cfg) != config_hash(OmegaConf.create({"a": {"b": 2}}))


def test_apply_overrides_on_composed_params_matches_hydra() -> None:
    from reasongen.config import apply_overrides

    base = compose(["experiment=tiny"], config_dir=CONF)
    overrides = ["peft=prefix", "peft.num_virtual_tokens=4", f"finetune.lr={1e-07}", "data.controls.n_keywords=null"]
    applied = apply_overrides(base, overrides, CONF)
    composed = compose(["experiment=tiny", *overrides], config_dir=CONF)
    assert applied.finetune.lr == 1e-07
    assert to_container(applied) == to_container(composed)
    assert base.peft.method == "lora"  # the input is left alone


@pytest.mark.parametrize("option", options("hparams_search"))
def test_every_search_space_composes_and_is_well_formed(option: str) -> None:
    search = compose([f"+hparams_search={option}"], config_dir=CONF).hparams_search
    assert search.n_trials > 0 and search.study_name and search.direction in ("maximize", "minimize")
    for name, spec in search.space.items():
        assert spec.type in ("categorical", "int", "float"), name
        assert ("choices" in spec) == (spec.type == "categorical"), name


def test_a_stage_sees_only_the_params_dvc_yaml_lists_for_it() -> None:
    from omegaconf.errors import ConfigAttributeError

    from reasongen.config import declared_params, restrict

    cfg = compose()
    assert declared_params("register", REPO / "dvc.yaml") is None  # `- params.yaml:`: every param
    finetune_keys = declared_params("finetune", REPO / "dvc.yaml")
    assert "finetune" in finetune_keys and "evaluate" not in finetune_keys
    seen = restrict(cfg, finetune_keys, "finetune")
    assert seen.finetune.lr == cfg.finetune.lr
    assert list(seen.data.controls) == ["length_bounds"]  # one leaf of a section, not the section
    with pytest.raises(ConfigAttributeError):
        seen.evaluate  # noqa: B018 - reading an undeclared section fails
    with pytest.raises(ConfigAttributeError):
        seen.data.max_rows  # noqa: B018
    with pytest.raises(KeyError, match="no such key"):
        restrict(cfg, ["finetune.no_such_key"], "finetune")
