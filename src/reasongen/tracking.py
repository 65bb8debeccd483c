"""MLflow in one place: tracking URI, experiment, lineage tags, the recording of a pipeline run and its registered
model, and loading a registered model back; the embedded default needs no server."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import yaml
from omegaconf import DictConfig

from reasongen.config import config_hash, flatten, to_container
from reasongen.io import read_curves, read_json, read_jsonl, write_json
from reasongen.paths import repo_root


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
    """The experiment's id, created on first use; with the embedded store, artifacts go to ./mlartifacts."""
    import mlflow

    configure()
    found = mlflow.get_experiment_by_name(name)
    if found is not None:
        return found.experiment_id
    location = None if os.environ.get("MLFLOW_TRACKING_URI") else (repo_root() / "mlartifacts").as_uri()
    return mlflow.create_experiment(name, artifact_location=location)


def git_commit() -> str:
    """HEAD's commit (with -dirty when the tree has changes), or `unknown` outside git."""
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], capture_output=True, text=True, check=True, cwd=repo_root()).stdout

    try:
        commit = git("rev-parse", "HEAD").strip()
        return commit + ("-dirty" if git("status", "--porcelain", "--untracked-files=no").strip() else "")
    except (subprocess.CalledProcessError, FileNotFoundError):
        return "unknown"


def data_hash(dvc_file: Path | None = None) -> str:
    """The hash data.dvc pins for the raw data."""
    path = dvc_file or repo_root() / "data.dvc"
    if not path.exists():
        return "unknown"
    outs = yaml.safe_load(path.read_text(encoding="utf-8")).get("outs", [{}])
    return str(outs[0].get("md5") or outs[0].get("hash") or "unknown")


def lineage_tags(config_hash: str, run_id: str | None = None) -> dict[str, str]:
    """Tags every run and model version carries: where the code, data and config came from."""
    tags = {"git_commit": git_commit(), "data_hash": data_hash(), "config_hash": config_hash}
    if run_id:
        tags["source_run_id"] = run_id
    return tags


# MLflow rejects longer parameter values; the full config goes in as an artifact anyway.
MAX_PARAM_CHARS = 500


def log_curves(curve_dir: Path, prefix: str) -> None:
    """Log a stage's loss curves as step-indexed metrics `<prefix>/train_loss`, `<prefix>/val_loss`."""
    import mlflow

    for name, points in read_curves(curve_dir).items():
        for step, value in points:
            mlflow.log_metric(f"{prefix}/{name}", value, step=step)


def log_evaluation(metrics_path: Path, headline: str = "model") -> None:
    """Every system's test metrics as `<system>/<metric>`; the headline system's also without prefix."""
    import mlflow

    table = read_json(metrics_path)
    for system, scores in table.items():
        values = {f"{system}/{name}": float(v) for name, v in scores.items() if isinstance(v, int | float)}
        mlflow.log_metrics(values)
    mlflow.log_metrics({name: float(v) for name, v in table.get(headline, {}).items() if isinstance(v, int | float)})


def log_samples(predictions_path: Path, n_rows: int) -> None:
    import mlflow
    import pandas as pd

    rows = read_jsonl(predictions_path)[:n_rows]
    if rows:
        mlflow.log_table(pd.DataFrame(rows), artifact_file="samples/generations.json")


def pip_requirements() -> list[str]:
    """The serving environment: the pinned versions of what the pyfunc model imports."""
    wanted = {"torch", "transformers", "peft", "tokenizers", "safetensors", "mlflow", "pandas", "lightning",
              "omegaconf", "jieba", "pyyaml", "tqdm"}
    lock = repo_root() / "requirements.lock"
    if not lock.exists():
        return sorted(wanted)
    pins = [line.strip() for line in lock.read_text().splitlines() if line.split("==")[0].lower() in wanted]
    return [pin.split("+")[0] for pin in pins]  # local labels such as +cpu are not on PyPI


def log_model(model_dir: Path, registered_model: str, generation: dict, limits: dict, tags: dict[str, str],
              serving_module: Any, input_example: Any = None):
    """Log the fine-tuned model as a pyfunc (code included) and register it; returns the model version.
    serving_module: the task's pyfunc module (PYFUNC_CLASS, ARTIFACT_KEY, signature(generation), input_example()):
    reasongen.adgen.pyfunc or reasongen.explain.pyfunc. The model config carries the decoding (which the
    signature's param defaults repeat), the serving limits, and trust_remote_code false: only whoever loads the
    model may turn it on (load_pyfunc)."""
    import mlflow

    python_model = serving_module.PYFUNC_CLASS
    info = mlflow.pyfunc.log_model(
        name="model",
        python_model=getattr(serving_module, python_model)(),
        artifacts={serving_module.ARTIFACT_KEY: str(model_dir)},
        code_paths=[str(Path(__file__).resolve().parent)],
        pip_requirements=pip_requirements(),
        signature=serving_module.signature(generation),
        input_example=serving_module.input_example() if input_example is None else input_example,
        model_config={"generation": generation, "limits": limits, "trust_remote_code": False},
        registered_model_name=registered_model,
    )
    client = mlflow.MlflowClient()
    version = str(info.registered_model_version)
    for key, value in tags.items():
        client.set_model_version_tag(registered_model, version, key, value)
    return info, version


def record_run(
    cfg: DictConfig,
    tracking_cfg: DictConfig,
    *,
    run_name: Callable[[str], str],
    curves: dict[str, Path],
    evaluate_dir: Path,
    sample_rows: int,
    artifacts: Sequence[Path],
    model_dir: Path,
    generation: dict,
    limits: dict,
    out_dir: Path,
    serving_module: Any,
    input_example: Any = None,
    headline: str = "model",
) -> dict:
    """One MLflow run in tracking_cfg.experiment: all params and the config, the loss curves (`<prefix>/...`),
    the evaluation metrics and sample table, the listed artifacts, and (tracking_cfg.log_model) the model
    registered as tracking_cfg.registered_model; writes out_dir/registered.json. Shared by every task."""
    import mlflow

    configure()
    experiment = experiment_id(tracking_cfg.experiment)
    cfg_hash = config_hash(cfg)
    tags = lineage_tags(cfg_hash)
    with mlflow.start_run(experiment_id=experiment, run_name=run_name(cfg_hash), tags=tags) as active:
        params = {k: str(v)[:MAX_PARAM_CHARS] for k, v in flatten(cfg).items()}
        mlflow.log_params(params)
        mlflow.log_dict(to_container(cfg), "config/params.yaml")
        for prefix, curve_dir in curves.items():
            log_curves(curve_dir, prefix)
        log_evaluation(evaluate_dir / "metrics.json", headline)
        log_samples(evaluate_dir / "predictions.jsonl", sample_rows)
        for path in artifacts:
            if path.exists():
                mlflow.log_artifact(str(path), artifact_path="pipeline")
        result = {"run_id": active.info.run_id, "experiment_id": experiment, "config_hash": cfg_hash}
        if tracking_cfg.log_model:
            info, version = log_model(model_dir, tracking_cfg.registered_model, generation, limits,
                                      lineage_tags(cfg_hash, active.info.run_id),
                                      serving_module=serving_module, input_example=input_example)
            result.update(model_uri=info.model_uri, registered_model=tracking_cfg.registered_model, version=version)
    write_json(out_dir / "registered.json", result)
    print(f"MLflow run {result['run_id']} in {tracking_uri()}"
          + (f"; registered {tracking_cfg.registered_model} v{result['version']}" if "version" in result else ""))
    return result


def load_pyfunc(model_uri: str, trust_remote_code: bool = False, limits: dict | None = None) -> Any:
    """A registered pyfunc model of this project (`models:/name@alias`, `models:/name/3`, `runs:/id/model`), with
    the caller's trust_remote_code and changes to the registered serving limits; an unknown model is a UserError."""
    import mlflow.pyfunc
    from mlflow.exceptions import MlflowException

    from reasongen.errors import UserError

    configure()
    try:
        overrides: dict[str, Any] = {"trust_remote_code": True} if trust_remote_code else {}
        if limits:
            info = mlflow.models.get_model_info(model_uri)
            registered = (info.flavors.get("python_function", {}).get("config") or {}).get("limits") or {}
            overrides["limits"] = {**registered, **limits}
        return mlflow.pyfunc.load_model(model_uri, model_config=overrides or None)
    except (MlflowException, OSError) as error:
        message = getattr(error, "message", None) or str(error)
        raise UserError(f"{model_uri}: {message.strip().splitlines()[0]}") from error


def load_registered_generator(model_uri: str, trust_remote_code: bool = False) -> Any:
    """The generator inside a registered pyfunc model of this project."""
    return load_pyfunc(model_uri, trust_remote_code).unwrap_python_model().generator


def is_model_uri(model: str) -> bool:
    """`models:/…` or `runs:/…` (or any scheme), as opposed to a model folder."""
    return "://" in model or ":/" in model
