"""DVC experiments on the tiny pipeline, as README shows them: Hydra's grid syntax `-S 'peft=lora,prefix,ia3'` queues
one experiment per value (DVC composes params.yaml from conf/ for each); running the queue (slow) gives each one
its metrics in `dvc exp show`."""

from __future__ import annotations

import csv
import io
import json
import shutil

import pytest
import yaml
from conftest import BIN, run

GRID = ["peft=lora,prefix,ia3"]
METHODS = {"lora", "prefix", "ia3"}


@pytest.fixture(scope="module")
def experiments_repo(pipeline, tmp_path_factory):
    """A copy of the pipeline with its state committed (experiments start from a commit) and the overrides that
    params.yaml was composed with: `-S` makes DVC compose params.yaml anew from conf/, so they go along."""
    work = tmp_path_factory.mktemp("experiments") / "repo"
    shutil.copytree(pipeline[0], work, symlinks=True)
    env = pipeline[1]
    run(["git", "add", "-A"], work, env)
    run(["git", "-c", "user.email=t@t", "-c", "user.name=t", "commit", "-q", "-m", "tiny pipeline"], work, env)
    params = yaml.safe_load((work / "params.yaml").read_text())
    composed = ["experiment=tiny", "data.source=jsonl", f"data.jsonl_path={params['data']['jsonl_path']}",
                f"explain.data.shared_file={params['explain']['data']['shared_file']}", "explain.data.sha256=null"]
    return work, env, [option for value in [*GRID, *composed] for option in ("-S", value)]


def experiments(work, env) -> dict[str, dict]:
    """`dvc exp show --json`: each experiment of HEAD by name, with its params.yaml values and metrics."""
    shown = json.loads(run([str(BIN / "dvc"), "exp", "show", "--json"], work, env).stdout)
    found = {}
    for baseline in shown:
        for experiment in baseline.get("experiments") or []:
            for rev in experiment["revs"]:
                data = rev.get("data") or {}
                found[rev["name"]] = {"params": data.get("params", {}).get("params.yaml", {}).get("data", {}),
                                      "metrics": {name: item.get("data", {})
                                                  for name, item in (data.get("metrics") or {}).items()}}
    return found


def test_grid_syntax_queues_one_experiment_per_value(experiments_repo) -> None:
    work, env, options = experiments_repo
    result = run([str(BIN / "dvc"), "exp", "run", "--queue", *options], work, env)
    try:
        assert result.stdout.count("Queued experiment") == 3
        status = run([str(BIN / "dvc"), "queue", "status"], work, env).stdout
        assert status.count("Queued") == 3
        queued = experiments(work, env)
        assert {exp["params"]["peft"]["method"] for exp in queued.values()} == METHODS
        assert all(exp["params"]["data"]["max_rows"] == 120 for exp in queued.values())  # still the tiny preset
    finally:
        run([str(BIN / "dvc"), "queue", "remove", "--all"], work, env)


@pytest.mark.slow
def test_running_the_grid_gives_each_experiment_its_metrics(experiments_repo) -> None:
    work, env, options = experiments_repo
    run([str(BIN / "dvc"), "exp", "run", "--queue", *options], work, env)
    ran = run([str(BIN / "dvc"), "exp", "run", "--run-all"], work, env).stdout
    # the experiments share what did not change: the committed baseline carries its uncached outputs
    assert ran.count("Stage 'base_model' didn't change, skipping") == 3
    assert ran.count("Running stage 'finetune'") == 2  # lora is the baseline's own method: nothing to run
    by_method = {exp["params"]["peft"]["method"]: exp for exp in experiments(work, env).values()}
    assert set(by_method) == METHODS
    for method, exp in by_method.items():
        scores = exp["metrics"]["outputs/evaluate/metrics.json"]["model"]
        assert 0 <= scores["bleu4"] <= 100 and 0 <= scores["coverage"] <= 100, method
    table = run([str(BIN / "dvc"), "exp", "show", "--csv", "--drop", ".*", "--keep",
                 "Experiment|peft.method|model.(bleu4|rougeL|coverage|hallucination_rate)"], work, env).stdout
    rows = list(csv.DictReader(io.StringIO(table)))
    assert set(rows[0]) == {"Experiment", "peft.method", "model.bleu4", "model.rougeL", "model.coverage",
                            "model.hallucination_rate"}
    assert sorted(row["peft.method"] for row in rows if row["Experiment"]) == sorted(METHODS)
