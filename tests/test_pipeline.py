"""The whole DAG end to end on the tiny preset: `dvc repro` in a temporary copy of the repository, then the
MLflow run, the registered model, the CLI on it, and DVC's view of what changed."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
TINY_ROWS = 120  # the tiny preset's data.max_rows


def run(cmd: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    result = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, f"{' '.join(cmd)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result


def tiny_raw_file(folder: Path) -> Path:
    """A 120-row AdvertiseGen file with two malformed lines, built from the shared rows when present."""
    shared = Path(os.environ.get("REASONGEN_SHARED", REPO.parent / "shared")) / "data/advertisegen/train_head5000.json"
    if shared.exists():
        lines = shared.read_text(encoding="utf-8").splitlines()[:TINY_ROWS]
    else:  # a self-made stand-in keeps the test meaningful without ../shared
        colours, styles = ("白色", "黑色", "蓝色", "红色", "粉色"), ("简约", "复古", "清新", "性感", "休闲", "文艺")
        lines = [json.dumps({"content": f"类型#裙*颜色#{c}*风格#{s}*图案#{i}",
                             "summary": f"这款{c}裙子{s}又显瘦，上身舒适百搭，很有气质。"}, ensure_ascii=False)
                 for c in colours for s in styles for i in range(5)][:TINY_ROWS]
    lines[3] = "{not json"
    lines[7] = json.dumps({"content": "类型裙", "summary": "没有井号的属性"}, ensure_ascii=False)
    path = folder / "my_rows.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """A git + DVC copy of the repo with the tiny preset on the user's-own-JSONL data path, after `dvc repro`."""
    work = tmp_path_factory.mktemp("repo")
    for name in ("conf", "src", "dvc.yaml", "pyproject.toml", "requirements.lock", ".dvcignore"):
        source = REPO / name
        if source.is_dir():
            shutil.copytree(source, work / name, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        elif source.exists():
            shutil.copy(source, work / name)
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", "HF_HUB_OFFLINE": "1",
           "TRANSFORMERS_OFFLINE": "1", "MLFLOW_DISABLE_TELEMETRY": "true", "PYTHONPATH": str(work / "src")}
    env.pop("MLFLOW_TRACKING_URI", None)
    raw = tiny_raw_file(tmp_path_factory.mktemp("user"))
    run(["git", "init", "-q"], work, env)
    run(["git", "-c", "user.email=t@t", "-c", "user.name=t", "commit", "-q", "--allow-empty", "-m", "init"], work, env)
    run([str(BIN / "dvc"), "init", "-q"], work, env)
    run([sys.executable, "-m", "reasongen", "params", "experiment=tiny", "data.source=jsonl",
         f"data.jsonl_path={raw}"], work, env)
    run([sys.executable, "-m", "reasongen", "data"], work, env)
    run([str(BIN / "dvc"), "add", "-q", "data"], work, env)
    run([str(BIN / "dvc"), "repro"], work, env)
    return work, env


def test_repro_writes_metrics_for_model_and_baselines(pipeline) -> None:
    work, _ = pipeline
    table = json.loads((work / "outputs/evaluate/metrics.json").read_text())
    assert set(table) == {"model", "retrieval", "template", "references"}
    for system in ("model", "retrieval", "template"):
        for metric in ("bleu4", "rougeL", "coverage", "hallucination_rate", "violation_rate", "distinct2"):
            assert table[system][metric] is not None and 0 <= table[system][metric] <= 100
    assert table["template"]["coverage"] == 100.0
    stats = json.loads((work / "outputs/prepare/stats.json").read_text())
    assert stats["rows_in"] == TINY_ROWS and stats["quarantined"] == 2
    assert stats["kept"] + stats["quarantined"] == stats["rows_in"]
    predictions = (work / "outputs/evaluate/predictions.jsonl").read_text().splitlines()
    assert len(predictions) == table["model"]["n"]


def test_mlflow_run_and_registered_model(pipeline) -> None:
    work, _ = pipeline
    import mlflow

    registered = json.loads((work / "outputs/register/registered.json").read_text())
    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{work / 'mlflow.db'}",
                                 registry_uri=f"sqlite:///{work / 'mlflow.db'}")
    run_data = client.get_run(registered["run_id"]).data
    assert run_data.params["peft.method"] == "lora"
    assert "model/bleu4" in run_data.metrics and "retrieval/rougeL" in run_data.metrics
    assert len(client.get_metric_history(registered["run_id"], "finetune/train_loss")) >= 1
    assert {"git_commit", "data_hash", "config_hash"} <= set(run_data.tags)
    artifacts = {a.path for a in client.list_artifacts(registered["run_id"], "pipeline")}
    assert "pipeline/dvc.lock" in artifacts
    version = client.get_model_version("reasongen-adgen", registered["version"])
    assert version.run_id == registered["run_id"] and version.tags["source_run_id"] == registered["run_id"]


def test_generate_and_evaluate_cli_on_the_registered_model(pipeline, tmp_path: Path) -> None:
    work, env = pipeline
    test_rows = (work / "outputs/prepare/test.jsonl").read_text(encoding="utf-8").splitlines()[:3]
    inputs = tmp_path / "in.jsonl"
    inputs.write_text("\n".join(test_rows) + "\n", encoding="utf-8")
    output = tmp_path / "out.jsonl"
    run([sys.executable, "-m", "reasongen", "generate", "--model", "models:/reasongen-adgen/latest",
         "--input", str(inputs), "--output", str(output), "--greedy"], work, env)
    predictions = [json.loads(line) for line in output.read_text(encoding="utf-8").splitlines()]
    assert len(predictions) == 3 and all(set(p) == {"prediction"} for p in predictions)
    result = run([sys.executable, "-m", "reasongen", "evaluate", "--predictions", str(output),
                  "--references", str(inputs)], work, env)
    scores = json.loads((tmp_path / "out.metrics.json").read_text())
    assert scores["n"] == 3 and "bleu4" in result.stdout


def test_repro_again_is_up_to_date_and_one_param_reruns_only_its_stages(pipeline) -> None:
    work, env = pipeline
    status = run([str(BIN / "dvc"), "status"], work, env)
    assert "up to date" in status.stdout.lower(), status.stdout
    params = yaml.safe_load((work / "params.yaml").read_text())
    params["evaluate"]["sample_rows"] = params["evaluate"]["sample_rows"] + 1
    (work / "params.yaml").write_text(yaml.safe_dump(params, allow_unicode=True, sort_keys=False))
    changed = run([str(BIN / "dvc"), "status", "--json"], work, env).stdout
    assert set(json.loads(changed)) == {"evaluate"}  # register follows once evaluate's outputs change
