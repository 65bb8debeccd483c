"""`reasongen sweep`: a resumable, failure-tolerant Optuna search over Hydra overrides, tracked in MLflow
(one parent run per study, one nested run per trial). Trials fine-tune the pipeline's base model and are
scored on the validation split."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import TrialState

from reasongen import metrics, tracking
from reasongen.config import apply_overrides, compose, config_hash, load_params, to_container
from reasongen.io import read_jsonl, write_json
from reasongen.stages import finetune
from reasongen.text.attributes import value_lexicon

FINISHED_STATES = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
PARENT_RUN_ATTR = "mlflow_parent_run_id"


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


def fail_interrupted_trials(study: optuna.Study) -> int:
    """A killed sweep leaves trials RUNNING forever; record them as failed so the study can go on."""
    stale = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    for trial in stale:
        study._storage.set_trial_state_values(trial._trial_id, state=TrialState.FAIL)
    return len(stale)


def with_search_choice(overrides: Sequence[str]) -> list[str]:
    """Search overrides with the hparams_search group added (`+hparams_search=default` unless one is chosen)."""
    rest = [o for o in overrides if not o.lstrip("+").startswith("hparams_search=")]
    chosen = [o.lstrip("+") for o in overrides if o.lstrip("+").startswith("hparams_search=")]
    return [f"+{chosen[-1]}" if chosen else "+hparams_search=default", *rest]


class Sweep:
    """One study: its storage, its parent MLflow run, and how a trial is run and scored."""

    def __init__(self, overrides: Sequence[str], workdir: Path, prepared_dir: Path, base_dir: Path,
                 params: Path = Path("params.yaml")):
        search_overrides = [o for o in overrides if o.lstrip("+").startswith("hparams_search")]
        self.overrides = [o for o in overrides if o not in search_overrides]
        self.search = compose(with_search_choice(search_overrides)).hparams_search
        # trials start from the pipeline's own config (the one its base model was built with)
        self.cfg = apply_overrides(load_params(params), self.overrides)
        self.workdir = workdir
        self.prepared_dir = prepared_dir
        self.base_dir = base_dir
        self.val_rows = read_jsonl(prepared_dir / "val.jsonl")[: self.search.max_val_examples]
        self.lexicon = value_lexicon(read_jsonl(prepared_dir / "train.jsonl"))

    def study(self) -> optuna.Study:
        sampler = optuna.samplers.TPESampler(seed=self.search.seed)
        pruner = optuna.pruners.MedianPruner(n_startup_trials=self.search.pruner.n_startup_trials,
                                             n_warmup_steps=self.search.pruner.n_warmup_steps)
        return optuna.create_study(study_name=self.search.study_name, storage=self.search.storage,
                                   sampler=sampler, pruner=pruner, direction=self.search.direction,
                                   load_if_exists=True)

    def objective(self, trial: optuna.Trial) -> float:
        import mlflow
        from optuna_integration import PyTorchLightningPruningCallback

        from reasongen.adgen.generator import Generator

        chosen = suggest(trial, to_container(self.search.space))
        with mlflow.start_run(run_name=f"trial-{trial.number}", nested=True, experiment_id=self.experiment,
                              tags={"optuna_trial": str(trial.number)}) as child:
            trial.set_user_attr("mlflow_run_id", child.info.run_id)
            mlflow.log_params({key: str(value) for key, value in chosen.items()})
            try:
                cfg = apply_overrides(self.cfg, [f"{key}={value}" for key, value in chosen.items()])
                mlflow.set_tags(tracking.lineage_tags(config_hash(cfg)))
                out_dir = self.workdir / f"trial_{trial.number:03d}"
                monitor = "neg_val_loss" if self.search.direction == "maximize" else "val_loss"
                pruning = PyTorchLightningPruningCallback(trial, monitor=monitor)
                finetune.run(cfg, self.prepared_dir, self.base_dir, out_dir, self.workdir / "checkpoints",
                             callbacks=[pruning])
                generator = Generator.from_dir(out_dir / "model", dict(cfg.generation))
                texts = generator.generate(self.val_rows, progress=False)
                scores = metrics.score(texts, self.val_rows, **metrics.options(cfg, self.lexicon))
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

        tracking.configure()
        study = self.study()
        if not study.trials:
            for params in self.search.get("enqueue") or []:  # configurations to try first, e.g. the default
                study.enqueue_trial(to_container(params))
        stale = fail_interrupted_trials(study)
        done = len(study.get_trials(deepcopy=False, states=FINISHED_STATES))
        remaining = max(0, self.search.n_trials - done)
        print(f"study {self.search.study_name}: {done} trials done ({stale} interrupted ones marked failed), "
              f"{remaining} to run")
        self.experiment = tracking.experiment_id(self.cfg.tracking.experiment)
        parent_id = study.user_attrs.get(PARENT_RUN_ATTR)
        with mlflow.start_run(run_id=parent_id, experiment_id=None if parent_id else self.experiment,
                              run_name=None if parent_id else f"sweep-{self.search.study_name}") as parent:
            study.set_user_attr(PARENT_RUN_ATTR, parent.info.run_id)
            mlflow.set_tags({"sweep": self.search.study_name, "overrides": " ".join(self.overrides)[:500]})
            mlflow.log_dict(to_container(self.search), "sweep/hparams_search.yaml")
            if remaining:
                study.optimize(self.objective, n_trials=remaining, timeout=self.search.timeout_s,
                               catch=(Exception,), gc_after_trial=True)
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
