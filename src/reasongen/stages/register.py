"""Stage `register`: one MLflow run per pipeline execution (config, curves, metrics, lineage, samples),
with the fine-tuned model logged as a pyfunc and registered as a new version of tracking.registered_model."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from reasongen import tracking
from reasongen.config import config_hash, flatten, to_container
from reasongen.io import read_json, read_jsonl, write_json
from reasongen.modeling.training import read_curve
from reasongen.paths import repo_root

# MLflow rejects longer parameter values; the full config goes in as an artifact anyway.
MAX_PARAM_CHARS = 500


def log_curves(curve_dir: Path, prefix: str) -> None:
    """Log a stage's loss curves as step-indexed metrics `<prefix>/train_loss`, `<prefix>/val_loss`."""
    import mlflow

    for name, points in read_curve(curve_dir).items():
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


def log_model(model_dir: Path, registered_model: str, generation: dict, tags: dict[str, str],
              serving_module: Any = None, input_example: Any = None):
    """Log the fine-tuned model as a pyfunc (code included) and register it; returns the model version.
    serving_module: the module with the pyfunc class, signature() and input_example() (default: Task A's
    reasongen.serving; Task B passes reasongen.explain.serving)."""
    import mlflow

    if serving_module is None:
        from reasongen import serving as serving_module
    python_model = getattr(serving_module, "PYFUNC_CLASS", "ReasonGenModel")
    info = mlflow.pyfunc.log_model(
        name="model",
        python_model=getattr(serving_module, python_model)(),
        artifacts={serving_module.ARTIFACT_KEY: str(model_dir)},
        code_paths=[str(Path(__file__).resolve().parents[1])],
        pip_requirements=pip_requirements(),
        signature=serving_module.signature(),
        input_example=serving_module.input_example() if input_example is None else input_example,
        model_config={"generation": generation},
        registered_model_name=registered_model,
    )
    client = mlflow.MlflowClient()
    version = str(info.registered_model_version)
    for key, value in tags.items():
        client.set_model_version_tag(registered_model, version, key, value)
    return info, version


def run(
    cfg: DictConfig,
    finetune_dir: Path = Path("outputs/finetune"),
    base_dir: Path = Path("outputs/base_model"),
    evaluate_dir: Path = Path("outputs/evaluate"),
    out_dir: Path = Path("outputs/register"),
) -> dict:
    base = Path(cfg.model.name_or_path).name if cfg.model.name_or_path else cfg.model.config.model_type
    return record_run(
        cfg, cfg.tracking,
        run_name=lambda cfg_hash: f"{base}-{cfg.peft.method}-{cfg_hash[:6]}",
        curves={"pretrain": base_dir / "curves", "finetune": finetune_dir / "curves"},
        evaluate_dir=evaluate_dir,
        sample_rows=cfg.evaluate.sample_rows,
        artifacts=(Path("dvc.lock"), Path("outputs/prepare/stats.json"), evaluate_dir / "metrics.json",
                   evaluate_dir / "table.md", finetune_dir / "summary.json"),
        model_dir=finetune_dir / "model",
        generation=to_container(cfg.generation),
        out_dir=out_dir,
    )


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
    out_dir: Path,
    serving_module: Any = None,
    input_example: Any = None,
    headline: str = "model",
) -> dict:
    """One MLflow run in tracking_cfg.experiment: all params and the config, the loss curves (`<prefix>/...`),
    the evaluation metrics and sample table, the listed artifacts, and (tracking_cfg.log_model) the model
    registered as tracking_cfg.registered_model; writes out_dir/registered.json. Shared by every task."""
    import mlflow

    tracking.configure()
    experiment = tracking.experiment_id(tracking_cfg.experiment)
    cfg_hash = config_hash(cfg)
    tags = tracking.lineage_tags(cfg_hash)
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
            info, version = log_model(model_dir, tracking_cfg.registered_model, generation,
                                      tracking.lineage_tags(cfg_hash, active.info.run_id),
                                      serving_module=serving_module, input_example=input_example)
            result.update(model_uri=info.model_uri, registered_model=tracking_cfg.registered_model, version=version)
    write_json(out_dir / "registered.json", result)
    print(f"MLflow run {result['run_id']} in {tracking.tracking_uri()}"
          + (f"; registered {tracking_cfg.registered_model} v{result['version']}" if "version" in result else ""))
    return result
