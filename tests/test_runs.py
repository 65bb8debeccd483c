"""MLflow runs on a store of the test's own: experiments open on their training runs (the experiment kind tag, also
on an experiment made before), a checkout's pipeline run is reused while open and made anew once ended, params keep
up to MLflow's 6,000 characters, datasets carry their DVC hash, and `logger: none` opens no run."""

from __future__ import annotations

import hashlib

import mlflow
import pytest
from omegaconf import OmegaConf

from reasongen import runs
from reasongen.io import write_jsonl


@pytest.fixture
def own_store(tmp_path, monkeypatch):
    """An embedded store in tmp_path, as MLflow's current one; the previous one is current again afterwards."""
    previous = mlflow.get_tracking_uri(), mlflow.get_registry_uri()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    monkeypatch.chdir(tmp_path)
    yield mlflow.MlflowClient(tracking_uri=runs.configure())
    mlflow.set_tracking_uri(previous[0])
    mlflow.set_registry_uri(previous[1])


def test_experiments_pipeline_run_config_and_datasets(own_store, tmp_path) -> None:
    client = own_store
    older = client.create_experiment("made-before")
    assert runs.experiment_id("made-before") == older
    key, value = runs.EXPERIMENT_KIND
    assert client.get_experiment(older).tags[key] == value
    experiment = runs.experiment_id("new")
    assert client.get_experiment(experiment).tags[key] == value and runs.experiment_id("new") == experiment

    first = runs.pipeline_run(experiment)
    assert runs.pipeline_run(experiment) == first  # still open: the next stage logs under it
    client.set_terminated(first)
    second = runs.pipeline_run(experiment)
    assert second != first and client.get_run(second).data.tags[runs.PIPELINE_TAG] == runs.checkout_key()

    rows = tmp_path / "train.jsonl"
    write_jsonl(rows, [{"id": "L1", "content": "类型#裙", "keywords": ["显瘦"]}, {"id": "L2", "content": "类型#裤"}])
    with mlflow.start_run(run_id=second):
        runs.log_config(OmegaConf.create({"long": "x" * 5000, "a": {"b": 1}}))
        runs.log_datasets({"training": rows})
    run = client.get_run(second)
    assert len(run.data.params["long"]) == 5000 and run.data.params["a.b"] == "1"
    assert "config/params.yaml" in {a.path for a in client.list_artifacts(second, "config")}
    (logged,) = run.inputs.dataset_inputs
    assert logged.dataset.digest == hashlib.md5(rows.read_bytes()).hexdigest()  # what dvc.lock records
    assert logged.dataset.name == str(rows) and {t.value for t in logged.tags} == {"training"}


def test_no_logger_opens_no_run(tiny_cfg) -> None:
    cfg = tiny_cfg()
    assert cfg.logger.kind == "none"
    with runs.stage_run(cfg.logger, cfg.tracking.experiment, "finetune", cfg, {}) as logger:
        assert logger is None and mlflow.active_run() is None
