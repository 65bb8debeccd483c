"""MLflow runs while the work happens: the store, experiments (opened on their training runs), the pipeline run of a
checkout with a live child run per training stage, the config and datasets each run records, and Lightning's logger
bound to a run. The run recorder and the model registry are in tracking.py."""

from __future__ import annotations

import hashlib
import os
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from reasongen.config import config_hash, flatten, to_container
from reasongen.io import read_jsonl
from reasongen.paths import repo_root

# MLflow 3 opens an experiment in its GenAI view (traces, judges) unless it is marked as model development.
EXPERIMENT_KIND = ("mlflow.experimentKind", "custom_model_development")
MAX_PARAM_CHARS = 6000  # MLflow's limit on a parameter value; the whole config goes in as an artifact too
PIPELINE_TAG = "pipeline"  # on a pipeline run: the checkout it belongs to (a hash of its path)
STAGE_TAG = "stage"  # on a stage's run: the DVC stage


def tracking_uri() -> str:
    """$MLFLOW_TRACKING_URI (a server or database for a team), else sqlite:///mlflow.db at the repo root."""
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{repo_root() / 'mlflow.db'}"


def configure() -> str:
    import mlflow

    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    uri = tracking_uri()
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    return uri


def experiment_id(name: str) -> str:
    """The experiment's id, created on first use (with the embedded store, artifacts go to ./mlartifacts) and
    marked as model development, so that the UI opens on its runs."""
    import mlflow
    from mlflow.exceptions import MlflowException

    configure()
    client = mlflow.MlflowClient()
    found = client.get_experiment_by_name(name)
    if found is None:
        location = None if os.environ.get("MLFLOW_TRACKING_URI") else (repo_root() / "mlartifacts").as_uri()
        try:
            return client.create_experiment(name, artifact_location=location, tags=dict([EXPERIMENT_KIND]))
        except MlflowException:  # another process (a sweep worker, a stage) created it first
            found = client.get_experiment_by_name(name)
    key, value = EXPERIMENT_KIND
    if found.tags.get(key) != value:
        client.set_experiment_tag(found.experiment_id, key, value)
    return found.experiment_id


def checkout_key() -> str:
    return hashlib.sha256(str(repo_root()).encode()).hexdigest()[:16]


def pipeline_run(experiment: str) -> str:
    """The id of this checkout's open pipeline run in the experiment, created when there is none. It stays RUNNING
    while the training stages of a `dvc repro` log their child runs under it, until the register stage records the
    results in it and ends it."""
    import mlflow

    client = mlflow.MlflowClient()
    key = checkout_key()
    found = client.search_runs([experiment], f"tags.{PIPELINE_TAG} = '{key}' and attributes.status = 'RUNNING'",
                               max_results=1, order_by=["attributes.start_time DESC"])
    if found:
        return found[0].info.run_id
    return client.create_run(experiment, run_name="pipeline (running)", tags={PIPELINE_TAG: key}).info.run_id


def log_config(cfg: DictConfig | dict) -> None:
    """Every value of cfg as a param (`a.b`, up to MLflow's limit) and the whole of it as config/params.yaml."""
    import mlflow

    mlflow.log_params({key: str(value)[:MAX_PARAM_CHARS] for key, value in flatten(cfg).items()})
    mlflow.log_dict(to_container(cfg), "config/params.yaml")


def md5_file(path: Path) -> str:
    """The md5 of a file's bytes: the hash DVC 3 records for it in dvc.lock."""
    digest = hashlib.md5()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


SPLIT_FILES = {"training": "train.jsonl", "validation": "val.jsonl", "testing": "test.jsonl"}


def split_files(prepared_dir: Path, *contexts: str) -> dict[str, Path]:
    """A prepare stage's split files by their MLflow dataset context (`training`, `validation`, `testing`)."""
    return {context: prepared_dir / SPLIT_FILES[context] for context in contexts}


def log_datasets(datasets: Mapping[str, Path]) -> None:
    """Each JSON Lines file as a dataset input of the active run, with its role as context (`training`,
    `validation`, `testing`), its path as source and its DVC hash as digest."""
    import mlflow
    import pandas as pd

    for context, path in datasets.items():
        rows = [{key: value if isinstance(value, str | int | float) or value is None else str(value)
                 for key, value in row.items()} for row in read_jsonl(path)]
        with warnings.catch_warnings():  # hints on how a path source and integer columns could be read
            warnings.simplefilter("ignore", UserWarning)
            dataset = mlflow.data.from_pandas(pd.DataFrame(rows), source=str(path), name=Path(path).as_posix(),
                                              digest=md5_file(path))
        mlflow.log_input(dataset, context=context)


def lightning_logger(run_id: str | None) -> Any:
    """Lightning's MLFlowLogger writing step metrics to a run that its opener ends: Lightning would end the run when
    fit ends and log the module's hyperparameters (cut to 250 characters) beside the config the opener logs."""
    from lightning.pytorch.loggers import MLFlowLogger

    class RunLogger(MLFlowLogger):
        def log_hyperparams(self, params: Any, *args: Any, **kwargs: Any) -> None:
            pass

        def finalize(self, status: str = "success") -> None:
            pass

    return RunLogger(tracking_uri=tracking_uri(), run_id=run_id)


def system_metrics(logger_cfg: Mapping[str, Any]) -> bool:
    """Whether a live run samples system metrics (`logger.system_metrics`), at the configured interval."""
    import mlflow

    mlflow.set_system_metrics_sampling_interval(logger_cfg["system_metrics_interval_s"])
    return logger_cfg["kind"] != "none" and bool(logger_cfg["system_metrics"])


@contextmanager
def stage_run(logger_cfg: Mapping[str, Any], experiment: str, stage: str, cfg: DictConfig,
              datasets: Mapping[str, Path]) -> Iterator[Any]:
    """Live MLflow tracking of a training stage: yields Lightning's logger bound to a run (None with
    `logger.kind: none`). The run is the active one when there is one (a sweep trial, whose opener logs its
    config), else a new child `<stage>` of this checkout's pipeline run with the stage's config and system metrics.
    Either way the run records the datasets. Only rank 0 of a multi-process run opens or writes runs."""
    if logger_cfg["kind"] == "none":
        yield None
        return
    import mlflow
    from lightning.pytorch.utilities import rank_zero_only

    if rank_zero_only.rank != 0:
        yield lightning_logger(None)  # Lightning logs from rank 0 only
        return
    configure()
    active = mlflow.active_run()
    if active is not None:
        log_datasets(datasets)
        yield lightning_logger(active.info.run_id)
        return
    experiment = experiment_id(experiment)
    tags = {"mlflow.parentRunId": pipeline_run(experiment), STAGE_TAG: stage, "config_hash": config_hash(cfg)}
    with mlflow.start_run(experiment_id=experiment, run_name=stage, tags=tags,
                          log_system_metrics=system_metrics(logger_cfg)) as run:
        log_config(cfg)
        log_datasets(datasets)
        yield lightning_logger(run.info.run_id)
