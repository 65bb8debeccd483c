"""MLflow in one place: tracking URI, experiment, lineage tags; the embedded default needs no server."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import yaml

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
