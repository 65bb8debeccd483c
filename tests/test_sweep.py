"""`reasongen sweep` on the tiny pipeline: a failed and a pruned trial do not stop it, a second call resumes the
same study, and MLflow holds one parent run with one finished/killed/failed child per trial (none RUNNING).
Two workers on one study share n_trials without failing each other's trials; a killed worker's trial is failed
once its heartbeat is stale, and a new worker finishes the study."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import optuna
import pytest
from conftest import record_figure, run
from optuna.trial import TrialState

from reasongen.sweep import condition_holds, suggest, with_search_choice

# Trial 0 trains normally, trial 1 barely moves (lr 1e-7) and is pruned against trial 0's val_loss,
# trial 2 has a negative learning rate, which the optimiser refuses: a failed trial.
TEST_SEARCH = """study_name: test-sweep
storage: sqlite:///optuna.db
n_trials: 3
seed: 0
worker: null
heartbeat_interval: 60
grace_period: 180
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
# Workers: no pruning, no enqueued trials (every worker draws with its own sampler seed), short heartbeats.
WORKERS_SEARCH = """study_name: workers
storage: sqlite:///optuna.db
n_trials: 4
seed: 0
worker: null
heartbeat_interval: 1
grace_period: 3
timeout_s: null
max_val_examples: 2
direction: maximize
enqueue: []
pruner: {n_startup_trials: 100, n_warmup_steps: 0}
space:
  finetune.lr: {type: float, low: 1.0e-3, high: 1.0e-2, log: true}
"""
WORKER_OVERRIDES = ["hparams_search=workers", "finetune.epochs=2", "generation.max_new_tokens=4"]


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


def test_a_trial_run_holds_its_loss_curve_config_and_datasets(sweep_repo) -> None:
    """The trial trains inside its MLflow run, so the run shows the curve as it grows: val_loss per epoch (the
    trial trains two), train_loss per logged step, the trial's whole config and the datasets it trained on."""
    work, _ = sweep_repo
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{work / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("reasongen-adgen")
    (trial,) = client.search_runs([experiment.experiment_id],
                                  "tags.optuna_study = 'test-sweep' and tags.optuna_trial = '0'")
    steps = [point.step for point in client.get_metric_history(trial.info.run_id, "val_loss")]
    assert len(steps) == 2 and 0 < steps[0] < steps[1]
    assert client.get_metric_history(trial.info.run_id, "train_loss")
    assert trial.data.params["finetune.lr"] == "0.01" and trial.data.params["finetune.epochs"] == "2"
    assert {item.dataset.name for item in trial.inputs.dataset_inputs} == {"outputs/prepare/train.jsonl",
                                                                             "outputs/prepare/val.jsonl"}


def start_worker(work, env, worker: int, *overrides: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "reasongen", "sweep", *WORKER_OVERRIDES,
                             f"hparams_search.worker={worker}", *overrides],
                            cwd=work, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def finish(worker: subprocess.Popen) -> str:
    output, _ = worker.communicate(timeout=900)
    assert worker.returncode == 0, output[-3000:]
    return output


def run_two_workers(work, env, *overrides: str) -> None:
    """`reasongen sweep` twice at once on the workers study (conf/hparams_search/workers.yaml, written here)."""
    (work / "conf/hparams_search/workers.yaml").write_text(WORKERS_SEARCH)
    workers = [start_worker(work, env, number, *overrides) for number in (1, 2)]
    for worker in workers:
        finish(worker)


def check_shared_study(study: optuna.Study, n_trials: int, children: list[tuple[str, str]]) -> None:
    """n_trials trials, all complete (none failed by the other worker), each drawn anew, from both workers;
    children = (optuna_trial tag, status) of the parent run's MLflow children: one FINISHED run per trial."""
    trials = study.get_trials(deepcopy=False)
    assert [t.state for t in trials] == [TrialState.COMPLETE] * n_trials
    assert len({t.params["finetune.lr"] for t in trials}) == n_trials  # no two workers drew the same values
    assert {t.user_attrs["worker"] for t in trials} == {1, 2}
    assert sorted(children) == sorted((str(t.number), "FINISHED") for t in trials)


def mlflow_children(work, study_name: str) -> tuple[object, list]:
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{work / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("reasongen-adgen")
    (parent,) = client.search_runs([experiment.experiment_id], f"tags.sweep = '{study_name}'")
    children = client.search_runs([experiment.experiment_id], f"tags.mlflow.parentRunId = '{parent.info.run_id}'")
    return parent, children


def test_two_workers_share_one_study(sweep_repo) -> None:
    work, env = sweep_repo
    run_two_workers(work, env)
    study = optuna.load_study(study_name="workers", storage=f"sqlite:///{work / 'optuna.db'}")
    parent, children = mlflow_children(work, "workers")
    check_shared_study(study, 4, [(c.data.tags["optuna_trial"], c.info.status) for c in children])
    assert parent.info.status == "FINISHED"
    assert (work / "optuna.db.lock").exists()  # the workers took turns on the study's file lock


def test_killed_worker_trial_fails_after_grace_and_a_new_worker_finishes(sweep_repo) -> None:
    work, env = sweep_repo
    (work / "conf/hparams_search/workers.yaml").write_text(WORKERS_SEARCH)
    search = ["hparams_search.study_name=killed", "hparams_search.n_trials=2"]
    storage = f"sqlite:///{work / 'optuna.db'}"
    first = start_worker(work, env, 1, *search)
    killed = None
    while killed is None:  # wait until a trial has started its MLflow run
        assert first.poll() is None, first.communicate()[0][-3000:]
        time.sleep(0.5)
        try:
            trials = optuna.load_study(study_name="killed", storage=storage).get_trials(deepcopy=False)
        except KeyError:  # the study does not exist yet
            continue
        killed = next((t for t in trials if t.state == TrialState.RUNNING and "mlflow_run_id" in t.user_attrs), None)
    first.send_signal(signal.SIGKILL)
    first.communicate()
    study = optuna.load_study(study_name="killed", storage=storage)
    assert study.trials[killed.number].state == TrialState.RUNNING  # nothing has failed it yet
    time.sleep(3 + 1)  # grace_period + 1 s: its heartbeat is stale now
    output = finish(start_worker(work, env, 2, *search))
    assert f"trial {killed.number} failed" in output
    states = [t.state for t in study.get_trials(deepcopy=False)]
    assert states[killed.number] == TrialState.FAIL
    assert sorted(states, key=str) == sorted([TrialState.FAIL, TrialState.COMPLETE], key=str)
    parent, children = mlflow_children(work, "killed")
    by_trial = {c.data.tags["optuna_trial"]: c for c in children}
    assert len(children) == len(by_trial) == 2 and parent.info.status == "FINISHED"
    dead = by_trial[str(killed.number)]
    assert dead.info.run_id == killed.user_attrs["mlflow_run_id"]
    assert (dead.info.status, dead.data.tags["optuna_state"]) == ("FAILED", "failed")
    assert dead.data.tags["error"].startswith("worker died")
    assert all(c.info.status == "FINISHED" for c in children if c is not dead)
    record_figure("kills", kills=[{"kill": "sweep worker, during a trial", "trial": killed.number,
                                   "resumed": "a new worker failed the dead trial and finished the study"}])


def test_study_lock_excludes_others_until_released(tmp_path) -> None:
    import fcntl

    from reasongen.sweep import StudyLock

    storage = optuna.storages.RDBStorage(f"sqlite:///{tmp_path / 'o.db'}")
    with StudyLock(storage, "s"), open(tmp_path / "o.db.lock") as other:
        with pytest.raises(BlockingIOError):  # another worker's attempt
            fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
    with open(tmp_path / "o.db.lock") as other:
        fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)


def test_worker_seeds_differ_between_workers_and_repeat_for_one() -> None:
    from reasongen.sweep import worker_seed

    assert worker_seed(0, 1) != worker_seed(0, 2) and worker_seed(0, 1) != worker_seed(1, 1)
    assert worker_seed(0, 1) == worker_seed(0, 1)


def test_suggest_draws_only_knobs_of_the_chosen_method() -> None:
    space = {"peft": {"type": "categorical", "choices": ["ia3"]},
             "peft.r": {"type": "int", "low": 4, "high": 8, "when": {"peft": "lora"}},
             "peft.num_virtual_tokens": {"type": "int", "low": 8, "high": 8, "when": {"peft": ["prefix", "ia3"]}}}
    study = optuna.create_study()
    assert suggest(study.ask(), space) == {"peft": "ia3", "peft.num_virtual_tokens": 8}
    assert condition_holds(None, {}) and not condition_holds({"peft": "lora"}, {"peft": "ia3"})
    assert with_search_choice(["x=1"]) == ["+hparams_search=default", "x=1"]
    assert with_search_choice(["hparams_search=test", "x=1"]) == ["+hparams_search=test", "x=1"]
