"""MLflow records and the registry: lineage tags, the recording of a pipeline run's results and its registered model,
and loading a registered model back; the embedded default needs no server. The store, experiments and the live runs
of training stages are in runs.py."""

from __future__ import annotations

import subprocess
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml
from omegaconf import DictConfig

from reasongen.config import config_hash
from reasongen.io import read_curves, read_json, read_jsonl, write_json
from reasongen.paths import repo_root
from reasongen.runs import configure, experiment_id, log_config, log_datasets, pipeline_run, tracking_uri


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


# fonts with Chinese glyphs, in order of preference (Debian: fonts-noto-cjk, fonts-wqy-zenhei)
CJK_FONTS = ("Noto Sans CJK SC", "Noto Sans CJK JP", "WenQuanYi Zen Hei", "AR PL UMing CN")


def label_fonts() -> list[str]:
    """The installed fonts of CJK_FONTS, then matplotlib's default (labels in Chinese need one of the former)."""
    from matplotlib import font_manager

    installed = {font.name for font in font_manager.fontManager.ttflist}
    return [name for name in CJK_FONTS if name in installed] + ["DejaVu Sans"]


def lineage_tags(config_hash: str, run_id: str | None = None) -> dict[str, str]:
    """Tags every run and model version carries: where the code, data and config came from."""
    tags = {"git_commit": git_commit(), "data_hash": data_hash(), "config_hash": config_hash}
    if run_id:
        tags["source_run_id"] = run_id
    return tags


def log_curves(curve_dir: Path, prefix: str) -> None:
    """A stage's loss curves as step-indexed metrics `<prefix>/train_loss`, `<prefix>/val_loss`, and as a chart
    plots/<prefix>_loss.png."""
    import mlflow
    from matplotlib.figure import Figure

    curves = read_curves(curve_dir)
    for name, points in curves.items():
        for step, value in points:
            mlflow.log_metric(f"{prefix}/{name}", value, step=step)
    if any(curves.values()):
        figure = Figure(figsize=(6, 3.5))
        axes = figure.subplots()
        for name, points in curves.items():
            axes.plot([step for step, _ in points], [value for _, value in points], label=name,
                      marker="o" if len(points) < 30 else None)
        axes.set(title=f"{prefix} loss", xlabel="step", ylabel="loss")
        axes.legend()
        figure.tight_layout()
        mlflow.log_figure(figure, f"plots/{prefix}_loss.png")


def accuracy_figure(table: Path) -> Any:
    """A grouped bar chart of a plot table with columns (category, system, ..., accuracy), e.g. aspect-control
    accuracy per aspect and system; None for another table."""
    import csv

    from matplotlib.figure import Figure

    with open(table, encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    if not rows or not {"system", "accuracy"} <= set(rows[0]):
        return None
    category = next(iter(rows[0]))
    categories = list(dict.fromkeys(row[category] for row in rows))
    systems = list(dict.fromkeys(row["system"] for row in rows))
    figure = Figure(figsize=(7, 0.45 * len(categories) * len(systems) + 1.2))
    axes = figure.subplots()
    height = 0.8 / len(systems)
    for number, system in enumerate(systems):
        scores = {row[category]: float(row["accuracy"]) for row in rows if row["system"] == system}
        axes.barh([i + number * height for i in range(len(categories))],
                  [scores.get(name, 0.0) for name in categories], height=height, label=system)
    axes.set_yticks([i + 0.4 - height / 2 for i in range(len(categories))], categories, fontfamily=label_fonts())
    axes.set(xlabel="accuracy (%)", title=f"{table.stem.replace('_', ' ')} by {category}")
    axes.legend()
    figure.tight_layout()
    return figure


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
    artifacts: Mapping[str, Sequence[Path]],
    datasets: Mapping[str, Path],
    model_dir: Path,
    generation: dict,
    limits: dict,
    out_dir: Path,
    serving_module: Any,
    input_example: Any = None,
    headline: str = "model",
) -> dict:
    """The results of a pipeline execution, in its pipeline run (runs.pipeline_run: the parent of the training
    stages' live runs, or a new run when no training ran) in tracking_cfg.experiment, which it names and ends: all
    params and the config, the datasets, the loss curves (`<prefix>/...` and plots/<prefix>_loss.png), the
    evaluation metrics and sample table, the listed artifacts (artifact folder -> files or folders), and
    (tracking_cfg.log_model) the model registered as tracking_cfg.registered_model; writes out_dir/registered.json.
    Shared by every task."""
    import mlflow

    configure()
    experiment = experiment_id(tracking_cfg.experiment)
    cfg_hash = config_hash(cfg)
    run_id = pipeline_run(experiment)
    mlflow.MlflowClient().update_run(run_id, name=run_name(cfg_hash))
    with mlflow.start_run(run_id=run_id, tags=lineage_tags(cfg_hash)) as active:
        log_config(cfg)
        log_datasets({context: path for context, path in datasets.items() if path.exists()})
        for prefix, curve_dir in curves.items():
            log_curves(curve_dir, prefix)
        log_evaluation(evaluate_dir / "metrics.json", headline)
        log_samples(evaluate_dir / "predictions.jsonl", sample_rows)
        for folder, paths in artifacts.items():
            log_files(paths, folder)
        result = {"run_id": active.info.run_id, "experiment_id": experiment, "config_hash": cfg_hash}
        if tracking_cfg.log_model:
            info, version = log_model(model_dir, tracking_cfg.registered_model, generation, limits,
                                      lineage_tags(cfg_hash, active.info.run_id),
                                      serving_module=serving_module, input_example=input_example)
            result.update(model_uri=info.model_uri, registered_model=tracking_cfg.registered_model, version=version)
    write_json(out_dir / "registered.json", result)
    print(f"MLflow run {result['run_id']} in {tracking_uri()}"
          + (f"; registered {tracking_cfg.registered_model} v{result['version']}" if "version" in result else ""),
          flush=True)
    return result


def log_files(paths: Sequence[Path], folder: str) -> None:
    """Files and folders as artifacts under `folder` (those that exist); a plot table (CSV of category, system,
    accuracy) also as a bar chart `<name>.png`."""
    import mlflow

    for path in paths:
        if path.is_dir():
            mlflow.log_artifacts(str(path), artifact_path=folder)
        elif path.exists():
            mlflow.log_artifact(str(path), artifact_path=folder)
        tables = sorted(path.glob("*.csv")) if path.is_dir() else [path] if path.suffix == ".csv" else []
        for table in tables:
            if figure := accuracy_figure(table):
                with warnings.catch_warnings():  # without a CJK font, Chinese labels are boxes
                    warnings.filterwarnings("ignore", message="Glyph .* missing from font")
                    mlflow.log_figure(figure, f"{folder}/{table.stem}.png")


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
