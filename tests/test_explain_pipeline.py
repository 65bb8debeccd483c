"""Task B end to end on the tiny preset, in the same `dvc repro` as Task A (the `pipeline` fixture runs both DAGs
over hand-made reviews): the four systems' metrics, the MLflow run, the registered model and `reasongen explain`."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from conftest import MALFORMED_REVIEW_LINES, make_reviews, run, store_client

from reasongen.explain import privacy

PRIVATE = ("REVIEWER", "Person ", "AMISSING", "No Item")  # what the tiny reviews' raw ids and names contain

SYSTEMS = {"a_profile_feature", "b_profile", "c_soft_prompt", "d_retrieval"}


def test_repro_evaluates_the_four_systems_on_every_metric(pipeline) -> None:
    work, _ = pipeline
    table = json.loads((work / "outputs/explain/evaluate/metrics.json").read_text())
    assert set(table) == SYSTEMS | {"targets_met"}
    for system in SYSTEMS:
        for metric in ("bleu1", "bleu4", "rouge1", "rouge2", "rougeL"):
            assert 0 <= table[system][metric] <= 100
        for metric in ("usr", "fmr", "fcr"):
            assert 0 <= table[system][metric] <= 1
        assert table[system]["div"] >= 0 and table[system]["n"] == 8
    assert table["d_retrieval"]["fmr"] > 0  # retrieved training explanations name real features
    assert set(table["targets_met"]) == {"fmr_min_0.85", "usr_min_0.3", "div_below_c", "bleu4_above_c_and_d",
                                         "rougeL_above_c_and_d"}
    stats = json.loads((work / "outputs/explain/prepare/stats.json").read_text())
    assert stats["rows_in"] == len(make_reviews()) + len(MALFORMED_REVIEW_LINES)
    assert stats["quarantined"] == len(MALFORMED_REVIEW_LINES)
    assert "targets for (a)" in (work / "outputs/explain/evaluate/table.md").read_text().lower()


def test_explain_run_is_tracked_and_registered(pipeline) -> None:
    work, _ = pipeline

    registered = json.loads((work / "outputs/explain/register/registered.json").read_text())
    client = store_client(work)
    run_info = client.get_run(registered["run_id"])
    assert client.get_experiment(run_info.info.experiment_id).name == "reasongen-explain"
    assert "a_profile_feature/fmr" in run_info.data.metrics and "d_retrieval/bleu4" in run_info.data.metrics
    assert run_info.data.params["explain.peft.method"] == "none"
    assert len(client.get_metric_history(registered["run_id"], "soft_prompt/val_loss")) >= 1
    children = client.search_runs([run_info.info.experiment_id], f"tags.mlflow.parentRunId = '{registered['run_id']}'")
    assert sorted(child.data.tags["stage"] for child in children) == ["explain_finetune", "explain_soft_prompt"]
    assert all(len(client.get_metric_history(child.info.run_id, "val_loss")) >= 1 for child in children)
    assert run_info.info.status == "FINISHED"
    version = client.get_model_version("reasongen-explain", registered["version"])
    assert version.tags["source_run_id"] == registered["run_id"]



def test_no_raw_id_name_or_salt_in_any_output_param_tag_or_artifact(pipeline, tmp_path: Path) -> None:
    """The crafted malformed lines of the tiny reviews (cut short, repeated, nested, escaped, non-string ids) and
    the good ones: none of their ids or names, nor the salt, reaches an output file or the MLflow run."""
    work, _ = pipeline
    secret = privacy.salt()  # the session's salt file (conftest points $REASONGEN_SECRETS_DIR at a temp folder)
    registered = json.loads((work / "outputs/explain/register/registered.json").read_text())
    client = store_client(work)
    runs = [client.get_run(registered["run_id"])]
    runs += client.search_runs([runs[0].info.experiment_id], f"tags.mlflow.parentRunId = '{registered['run_id']}'")
    texts = {f"{r.info.run_id} params+tags": json.dumps([r.data.params, r.data.tags]) for r in runs}
    for found in runs:
        folder = Path(client.download_artifacts(found.info.run_id, "", str(tmp_path / found.info.run_id)))
        texts |= {str(path): path.read_bytes().decode("utf-8", "replace") for path in folder.rglob("*")
                  if path.is_file()}
    texts |= {str(path): path.read_bytes().decode("utf-8", "replace") for path in (work / "outputs/explain").rglob("*")
              if path.is_file()}
    assert any("quarantine.jsonl" in name for name in texts) and len(texts) > 20
    for name, text in texts.items():
        assert not any(word in text for word in (*PRIVATE, secret)), name


def test_explain_cli_on_the_registered_model(pipeline, tmp_path: Path) -> None:
    work, env = pipeline
    test_rows = [json.loads(line) for line in (work / "outputs/explain/prepare/test.jsonl").read_text().splitlines()]
    pairs = [{"user_id": row["user"], "item_id": row["item"], "feature": row["feature"]} for row in test_rows[:3]]
    pairs.append({"user_id": "A000REVIEWER", "item_id": test_rows[0]["item"]})  # a raw id, hashed with the salt
    inputs = tmp_path / "pairs.jsonl"
    inputs.write_text("\n".join(json.dumps(p) for p in pairs) + "\n")
    output = tmp_path / "out.jsonl"
    run([sys.executable, "-m", "reasongen", "explain", "--model", "models:/reasongen-explain/latest",
         "--input", str(inputs), "--output", str(output)], work, env)
    lines = [json.loads(line) for line in output.read_text().splitlines()]
    assert len(lines) == 4 and all(set(line) == {"explanation"} for line in lines)
