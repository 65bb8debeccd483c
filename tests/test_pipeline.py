"""The whole DAG end to end on the tiny preset: `dvc repro` in a temporary copy of the repository, then the
MLflow run, the registered model, the CLI on it, and DVC's view of what changed."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import yaml
from conftest import BIN, TINY_ROWS, run, store_client


def test_repro_writes_metrics_for_model_and_baselines(pipeline) -> None:
    work, _ = pipeline
    table = json.loads((work / "outputs/evaluate/metrics.json").read_text())
    ablation = yaml.safe_load((work / "params.yaml").read_text())["evaluate"]["decoding_ablation"]
    assert set(table) == ({"model", "retrieval", "template", "references", "model_with_controls",
                          "references_with_controls"} | {f"decoding_{n}" for n in ablation})
    # the headline is attributes only: no control was asked for, so no control metric is measured there
    assert table["model"]["aspect_accuracy"] is None and table["model_with_controls"]["aspect_accuracy"] is not None
    # the configured decoding bans advertising-law words outright: none can be served
    assert table["model"]["violation_rate"] == 0.0 and table["model_with_controls"]["violation_rate"] == 0.0
    for metric in ("repetition_rate", "list_ending_rate", "product_type_mismatch_rate", "attribute_hallucination_rate"):
        assert table["model"][metric] is not None and table["references"][metric] is not None
    report = (work / "outputs/evaluate/sample_report.md").read_text(encoding="utf-8")
    assert report.count("\n## ") == min(table["model"]["n"], 4)  # evaluate.sample_rows of the tiny preset
    for system in ("model", "retrieval", "template"):
        for metric in ("bleu4", "rougeL", "coverage", "hallucination_rate", "violation_rate", "distinct2",
                       "repetition_rate", "list_ending_rate"):
            assert table[system][metric] is not None and 0 <= table[system][metric] <= 100
    assert table["template"]["coverage"] == 100.0
    stats = json.loads((work / "outputs/prepare/stats.json").read_text())
    assert stats["rows_in"] == TINY_ROWS and stats["quarantined"] == 2
    assert stats["kept"] + stats["quarantined"] == stats["rows_in"]
    predictions = (work / "outputs/evaluate/predictions.jsonl").read_text().splitlines()
    assert len(predictions) == table["model"]["n"]


def test_mlflow_run_and_registered_model(pipeline) -> None:
    work, _ = pipeline

    registered = json.loads((work / "outputs/register/registered.json").read_text())
    client = store_client(work)
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
    original = (work / "params.yaml").read_text()
    params = yaml.safe_load(original)
    params["evaluate"]["sample_rows"] = params["evaluate"]["sample_rows"] + 1
    (work / "params.yaml").write_text(yaml.safe_dump(params, allow_unicode=True, sort_keys=False))
    try:
        changed = run([str(BIN / "dvc"), "status", "--json"], work, env).stdout
    finally:
        (work / "params.yaml").write_text(original)
    # register records every param (the whole config goes to MLflow), so it re-runs too; nothing upstream does
    assert set(json.loads(changed)) == {"evaluate", "register"}
