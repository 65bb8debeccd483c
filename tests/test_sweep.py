"""`reasongen sweep` on the tiny pipeline: a failed and a pruned trial do not stop it, a second call resumes the
same study, and MLflow holds one parent run with one finished/killed/failed child per trial (none RUNNING)."""

from __future__ import annotations

import sys

import optuna
import pytest
from conftest import run
from optuna.trial import TrialState

from reasongen.sweep import condition_holds, suggest, with_search_choice

# Trial 0 trains normally, trial 1 barely moves (lr 1e-7) and is pruned against trial 0's val_loss,
# trial 2 has a negative learning rate, which the optimiser refuses: a failed trial.
TEST_SEARCH = """study_name: test-sweep
storage: sqlite:///optuna.db
n_trials: 3
seed: 0
timeout_s: null
max_val_examples: 4
direction: maximize
enqueue:
  - {finetune.lr: 0.01}
  - {finetune.lr: 1.0e-7}
  - {finetune.lr: -1.0}
pruner: {n_startup_trials: 1, n_warmup_steps: 0}
space:
  finetune.lr: {type: categorical, choices: [0.01, 1.0e-7, -1.0, 0.005]}
  peft.r: {type: int, low: 2, high: 8, step: 2, when: {peft: lora}}
"""
TRIAL_OVERRIDES = ["hparams_search=test", "finetune.epochs=2", "generation.max_new_tokens=4"]


@pytest.fixture(scope="module")
def sweep_repo(pipeline):
    work, env = pipeline
    (work / "conf/hparams_search/test.yaml").write_text(TEST_SEARCH)
    run([sys.executable, "-m", "reasongen", "sweep", *TRIAL_OVERRIDES], work, env)
    return work, env


def states(work) -> list[TrialState]:
    study = optuna.load_study(study_name="test-sweep", storage=f"sqlite:///{work / 'optuna.db'}")
    return [trial.state for trial in study.get_trials(deepcopy=False)]


def test_failed_and_pruned_trials_do_not_stop_the_sweep(sweep_repo) -> None:
    work, _ = sweep_repo
    # the first three trials (the resume test, in any order, may have added a fourth)
    assert states(work)[:3] == [TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL]


def test_second_call_resumes_the_same_study(sweep_repo) -> None:
    work, env = sweep_repo
    run([sys.executable, "-m", "reasongen", "sweep", *TRIAL_OVERRIDES, "hparams_search.n_trials=4"], work, env)
    assert len(states(work)) == 4  # three from before, one new
    run([sys.executable, "-m", "reasongen", "sweep", *TRIAL_OVERRIDES, "hparams_search.n_trials=4"], work, env)
    assert len(states(work)) == 4  # nothing left to do


def test_mlflow_parent_and_children_end_in_a_final_state(sweep_repo) -> None:
    work, _ = sweep_repo
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{work / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("reasongen-adgen")
    parents = client.search_runs([experiment.experiment_id], "tags.sweep = 'test-sweep'")
    assert len(parents) == 1
    parent = parents[0]
    children = client.search_runs([experiment.experiment_id],
                                  f"tags.mlflow.parentRunId = '{parent.info.run_id}'")
    by_state = sorted((c.data.tags["optuna_state"], c.info.status) for c in children)
    assert len(children) == len(states(work))
    assert ("failed", "FAILED") in by_state and ("pruned", "KILLED") in by_state
    assert ("finished", "FINISHED") in by_state
    assert all(status != "RUNNING" for _, status in by_state) and parent.info.status == "FINISHED"
    artifacts = {a.path for a in client.list_artifacts(parent.info.run_id, "sweep")}
    assert {"sweep/best.json", "sweep/optimization_history.html"} <= artifacts


def test_interrupted_trials_are_marked_failed(tmp_path) -> None:
    from reasongen.sweep import fail_interrupted_trials

    study = optuna.create_study(storage=f"sqlite:///{tmp_path / 'o.db'}", study_name="s")
    study.ask()  # a trial a killed process left RUNNING
    assert fail_interrupted_trials(study) == 1
    assert [t.state for t in study.get_trials()] == [TrialState.FAIL]


def test_suggest_draws_only_knobs_of_the_chosen_method() -> None:
    space = {"peft": {"type": "categorical", "choices": ["ia3"]},
             "peft.r": {"type": "int", "low": 4, "high": 8, "when": {"peft": "lora"}},
             "peft.num_virtual_tokens": {"type": "int", "low": 8, "high": 8, "when": {"peft": ["prefix", "ia3"]}}}
    study = optuna.create_study()
    assert suggest(study.ask(), space) == {"peft": "ia3", "peft.num_virtual_tokens": 8}
    assert condition_holds(None, {}) and not condition_holds({"peft": "lora"}, {"peft": "ia3"})
    assert with_search_choice(["x=1"]) == ["+hparams_search=default", "x=1"]
    assert with_search_choice(["hparams_search=test", "x=1"]) == ["+hparams_search=test", "x=1"]
