"""`reasongen sweep`: a resumable, failure-tolerant Optuna search over Hydra overrides, tracked in MLflow
(one parent run per study, one nested run per trial). Trials fine-tune the pipeline's base model and are
scored on the validation split. Several workers (processes, machines) may run the same study at once: each
has its own sampler seed, they stop together at n_trials, and a trial whose worker died is failed once its
heartbeat is older than the grace period."""

from __future__ import annotations

import fcntl
import hashlib
import os
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import optuna
from optuna.study import MaxTrialsCallback
from optuna.trial import FrozenTrial, TrialState

from reasongen import metrics, runs, tracking
from reasongen.config import apply_overrides, compose, config_hash, load_params, to_container
from reasongen.io import read_jsonl, write_json
from reasongen.stages import finetune
from reasongen.text.attributes import value_lexicon

FINISHED_STATES = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
# what n_trials counts: finished trials and those other workers are running (a dead worker's trial stays RUNNING
# until its heartbeat is stale, then it is failed and still counts)
BUDGET_STATES = (*FINISHED_STATES, TrialState.RUNNING)
PARENT_RUN_ATTR = "mlflow_parent_run_id"
DISTRIBUTED = ("ddp", "fsdp", "deepspeed")


def suggest(trial: optuna.Trial, space: dict[str, Any]) -> dict[str, Any]:
    """Draw every parameter whose `when` condition holds, in the order the space lists them."""
    chosen: dict[str, Any] = {}
    for name, spec in space.items():
        if not condition_holds(spec.get("when"), chosen):
            continue
        kind = spec["type"]
        if kind == "categorical":
            chosen[name] = trial.suggest_categorical(name, list(spec["choices"]))
        elif kind == "int":
            chosen[name] = trial.suggest_int(name, spec["low"], spec["high"], step=spec.get("step", 1),
                                             log=spec.get("log", False))
        elif kind == "float":
            chosen[name] = trial.suggest_float(name, spec["low"], spec["high"], log=spec.get("log", False))
        else:
            raise ValueError(f"hparams_search.space.{name}: type {kind!r} is not categorical, int or float")
    return chosen


def condition_holds(when: dict[str, Any] | None, chosen: dict[str, Any]) -> bool:
    if not when:
        return True
    return all(chosen.get(key) in (wanted if isinstance(wanted, list) else [wanted]) for key, wanted in when.items())


def worker_seed(seed: int, worker: int) -> int:
    """The sampler seed of one worker: another for each worker id, the same for the same (study seed, worker)."""
    digest = hashlib.sha256(f"{seed}/{worker}".encode()).digest()
    return int.from_bytes(digest[:4], "big")


def rdb_storage(search, on_stale) -> optuna.storages.BaseStorage | str | None:
    """A database storage with heartbeats (a RUNNING trial without one for grace_period seconds is failed and
    `on_stale` called with it; heartbeat_interval null: none); other storages as Optuna opens them."""
    url = search.storage
    if not url or not str(url).startswith(("sqlite", "postgresql", "mysql")):
        return url
    from sqlalchemy.exc import SQLAlchemyError

    for attempt in range(3):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                return optuna.storages.RDBStorage(str(url), heartbeat_interval=search.get("heartbeat_interval"),
                                                  grace_period=search.get("grace_period"),
                                                  heartbeat_stale_trial_callback=on_stale)
        except SQLAlchemyError:  # two workers creating the tables of a new database at once: one of them loses
            if attempt == 2:
                raise
            time.sleep(1 + attempt)


def fail_stale_trials(study: optuna.Study) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)


class StudyLock:
    """Held by one worker at a time while it counts the study's trials and asks for the next one, so that two
    workers never both take the last of n_trials: a PostgreSQL advisory lock (the server drops it when the worker
    dies), a file lock beside a SQLite file; other storages get no lock (they may overshoot n_trials)."""

    def __init__(self, storage: Any, name: str):
        self.engine = getattr(storage, "engine", None)
        self.key = int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)
        self.held: Any = None

    def acquire(self) -> None:
        if self.held is not None or self.engine is None:
            return
        from sqlalchemy import text

        backend = self.engine.url.get_backend_name()
        if backend == "postgresql":
            connection = self.engine.connect()
            connection.execute(text("select pg_advisory_lock(:key)"), {"key": self.key})
            connection.commit()
            self.held = connection
        elif backend == "sqlite" and self.engine.url.database not in (None, "", ":memory:"):
            handle = open(f"{self.engine.url.database}.lock", "a")  # held until release
            fcntl.flock(handle, fcntl.LOCK_EX)
            self.held = handle

    def release(self) -> None:
        held, self.held = self.held, None
        if held is None:
            return
        if hasattr(held, "execute"):
            from sqlalchemy import text

            held.execute(text("select pg_advisory_unlock(:key)"), {"key": self.key})
            held.commit()
        else:
            fcntl.flock(held, fcntl.LOCK_UN)
        held.close()

    def __enter__(self) -> StudyLock:
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def with_search_choice(overrides: Sequence[str]) -> list[str]:
    """Search overrides with the hparams_search group added (`+hparams_search=default` unless one is chosen)."""
    rest = [o for o in overrides if not o.lstrip("+").startswith("hparams_search=")]
    chosen = [o.lstrip("+") for o in overrides if o.lstrip("+").startswith("hparams_search=")]
    return [f"+{chosen[-1]}" if chosen else "+hparams_search=default", *rest]


class Sweep:
    """One study: its storage, its parent MLflow run, and how a trial is run and scored. Any number of workers may
    run the same study at once (`hparams_search.worker` tells them apart)."""

    def __init__(self, overrides: Sequence[str], workdir: Path, prepared_dir: Path, base_dir: Path,
                 params: Path = Path("params.yaml")):
        search_overrides = [o for o in overrides if o.lstrip("+").startswith("hparams_search")]
        self.overrides = [o for o in overrides if o not in search_overrides]
        self.search = compose(with_search_choice(search_overrides)).hparams_search
        # trials start from the pipeline's own config (the one its base model was built with)
        self.cfg = apply_overrides(load_params(params), self.overrides)
        if str(self.cfg.trainer.strategy).startswith(DISTRIBUTED):
            # Lightning would start the whole sweep command again for each rank, each drawing its own trial
            raise ValueError(f"trainer.strategy={self.cfg.trainer.strategy}: a sweep trial trains in one process; "
                             "scale a sweep out with more workers (README: Scaling out)")
        self.worker = int(self.search.worker) if self.search.get("worker") is not None else os.getpid()
        self.seed = worker_seed(self.search.seed, self.worker)
        self.workdir = workdir
        self.prepared_dir = prepared_dir
        self.base_dir = base_dir
        self.val_rows = read_jsonl(prepared_dir / "val.jsonl")[: self.search.max_val_examples]
        self.lexicon = value_lexicon(read_jsonl(prepared_dir / "train.jsonl"))

    def study(self) -> optuna.Study:
        sampler = optuna.samplers.TPESampler(seed=self.seed)
        pruner = optuna.pruners.MedianPruner(n_startup_trials=self.search.pruner.n_startup_trials,
                                             n_warmup_steps=self.search.pruner.n_warmup_steps)
        self.storage = rdb_storage(self.search, self.end_orphan)
        return optuna.create_study(study_name=self.search.study_name, storage=self.storage, sampler=sampler,
                                   pruner=pruner, direction=self.search.direction, load_if_exists=True)

    def end_orphan(self, study: optuna.Study, trial: FrozenTrial) -> None:
        """A trial failed for a stale heartbeat (its worker died): end the MLflow run it left RUNNING."""
        import mlflow

        client = mlflow.MlflowClient()
        parent = study.user_attrs.get(PARENT_RUN_ATTR)
        runs = client.search_runs([self.experiment], f"tags.mlflow.parentRunId = '{parent}' and "
                                  f"tags.optuna_trial = '{trial.number}' and attributes.status = 'RUNNING'")
        for run in runs:
            client.set_tag(run.info.run_id, "optuna_state", "failed")
            client.set_tag(run.info.run_id, "error", "worker died: no heartbeat within hparams_search.grace_period")
            client.set_terminated(run.info.run_id, status="FAILED")
        print(f"trial {trial.number} failed: its worker stopped beating ({len(runs)} MLflow run ended)")

    def objective(self, trial: optuna.Trial) -> float:
        import mlflow
        from optuna_integration import PyTorchLightningPruningCallback

        from reasongen.adgen.generator import Generator

        chosen = suggest(trial, to_container(self.search.space))
        tags = {"optuna_trial": str(trial.number), "optuna_study": self.search.study_name, "worker": str(self.worker)}
        # the trial's run is live: finetune.run logs its step curves and datasets into it (runs.stage_run)
        with mlflow.start_run(run_name=f"trial-{trial.number}", nested=True, experiment_id=self.experiment,
                              tags=tags, log_system_metrics=runs.system_metrics(self.cfg.logger)) as child:
            trial.set_user_attr("mlflow_run_id", child.info.run_id)
            trial.set_user_attr("worker", self.worker)
            mlflow.log_params({key: str(value) for key, value in chosen.items()})
            try:
                cfg = apply_overrides(self.cfg, [f"{key}={value}" for key, value in chosen.items()])
                mlflow.set_tags(tracking.lineage_tags(config_hash(cfg)))
                runs.log_config(cfg)
                out_dir = self.workdir / f"trial_{trial.number:03d}"
                monitor = "neg_val_loss" if self.search.direction == "maximize" else "val_loss"
                pruning = PyTorchLightningPruningCallback(trial, monitor=monitor)
                # checkpoints per trial: two workers may train the same configuration at once
                finetune.run(cfg, self.prepared_dir, self.base_dir, out_dir, out_dir / "checkpoints",
                             callbacks=[pruning])
                generator = Generator.from_dir(out_dir / "model", dict(cfg.generation),
                                               trust_remote_code=cfg.model.trust_remote_code)
                texts = generator.generate(self.val_rows, use_controls=cfg.evaluate.use_controls, progress=False)
                scores = metrics.score(texts, self.val_rows, use_controls=cfg.evaluate.use_controls,
                                       **metrics.options(cfg, self.lexicon))
                value = metrics.objective(scores, cfg.evaluate.objective)
            except optuna.TrialPruned:
                mlflow.set_tag("optuna_state", "pruned")
                mlflow.end_run(status="KILLED")
                raise
            except Exception as error:
                mlflow.set_tags({"optuna_state": "failed", "error": f"{type(error).__name__}: {error}"[:500]})
                mlflow.end_run(status="FAILED")
                raise
            mlflow.log_metrics({f"val/{k}": float(v) for k, v in scores.items() if isinstance(v, int | float)})
            mlflow.log_metric("objective", value)
            mlflow.set_tag("optuna_state", "finished")
            return value

    def run(self) -> optuna.Study:
        import mlflow

        runs.configure()
        study = self.study()
        lock = StudyLock(self.storage, self.search.study_name)
        with lock:  # one worker at a time sets the study up
            self.experiment = runs.experiment_id(self.cfg.tracking.experiment)
            fail_stale_trials(study)  # trials of workers that died (no heartbeat for grace_period)
            if not study.trials:
                for params in self.search.get("enqueue") or []:  # configurations to try first, e.g. the default
                    study.enqueue_trial(to_container(params))
            parent_id = study.user_attrs.get(PARENT_RUN_ATTR)
            if parent_id is None:
                parent_id = mlflow.MlflowClient().create_run(
                    self.experiment, run_name=f"sweep-{self.search.study_name}").info.run_id
                study.set_user_attr(PARENT_RUN_ATTR, parent_id)
        counts = {state.name.lower(): len(study.get_trials(deepcopy=False, states=(state,))) for state in BUDGET_STATES}
        print(f"study {self.search.study_name}, worker {self.worker} (sampler seed {self.seed}): {counts}, "
              f"n_trials {self.search.n_trials}")
        budget = MaxTrialsCallback(self.search.n_trials, states=BUDGET_STATES)

        def next_trial(study: optuna.Study, trial: FrozenTrial) -> None:
            lock.acquire()  # held until the next trial is asked for (its objective releases it), or the end
            budget(study, trial)

        def objective(trial: optuna.Trial) -> float:
            lock.release()
            return self.objective(trial)

        with mlflow.start_run(run_id=parent_id):
            mlflow.set_tags({"sweep": self.search.study_name, "overrides": " ".join(self.overrides)[:5000]})
            mlflow.log_dict(to_container(self.search), "sweep/hparams_search.yaml")
            lock.acquire()
            try:
                if len(study.get_trials(deepcopy=False, states=BUDGET_STATES)) < self.search.n_trials:
                    study.optimize(objective, timeout=self.search.timeout_s, catch=(Exception,), gc_after_trial=True,
                                   callbacks=[next_trial])
            finally:
                lock.release()
            fail_stale_trials(study)
            log_study(study, self.workdir)
        return study


def log_study(study: optuna.Study, workdir: Path) -> None:
    """On the parent run: trial counts, the best trial, and Optuna's plots as HTML artifacts."""
    import mlflow

    counts = {state.name.lower(): len(study.get_trials(deepcopy=False, states=(state,))) for state in FINISHED_STATES}
    mlflow.log_metrics({f"trials_{name}": count for name, count in counts.items()})
    completed = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if not completed:
        print(f"no trial completed: {counts}")
        return
    best = study.best_trial
    mlflow.log_metric("best_objective", best.value)
    summary = {"number": best.number, "value": best.value, "params": best.params}
    mlflow.log_dict(summary, "sweep/best.json")
    mlflow.set_tag("best_mlflow_run_id", best.user_attrs.get("mlflow_run_id", ""))
    plots = {"optimization_history": optuna.visualization.plot_optimization_history,
             "parallel_coordinate": optuna.visualization.plot_parallel_coordinate}
    if len(completed) > 1:
        plots["param_importances"] = optuna.visualization.plot_param_importances
    for name, plot in plots.items():
        try:
            # plotly.js inlined: the page renders offline
            mlflow.log_text(plot(study).to_html(include_plotlyjs=True), f"sweep/{name}.html")
        except (ValueError, RuntimeError) as error:  # e.g. importances need two distinct parameter values
            print(f"skipped {name}: {error}")
    print(f"best trial {best.number}: {best.value:.3f} with {best.params}; counts {counts}")
    write_json(workdir / "best.json", summary)
