"""Team mode for real: PostgreSQL and an MLflow server on loopback, started by `python -m reasongen.team up` as
`make team-up` starts them (on fresh databases). On a copy of the tiny pipeline: its register stage, a two-worker
sweep whose Optuna storage is the same PostgreSQL, promotion and serving, all against that server; then runs,
trials, model versions and aliases are read back through the MLflow REST API."""

from __future__ import annotations

import json
import os
import shutil
import sys
import urllib.request
from pathlib import Path

import optuna
import pytest
from conftest import free_port, post, run, served
from sqlalchemy import text as sql
from test_promote_serve import GOOD, NAME, promote, records_body, register
from test_sweep import check_shared_study, run_two_workers

from reasongen import team
from reasongen.sweep import StudyLock

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def team_server(tmp_path_factory):
    """(tracking URI, Optuna storage URL) from `python -m reasongen.team up` (what `make team-up` runs), on new
    databases of its own; `down --drop` afterwards."""
    if team.cluster() is None:
        pytest.skip("PostgreSQL is not installed (pg_lsclusters, pg_ctlcluster, psql): apt-get install postgresql")
    folder = tmp_path_factory.mktemp("team")
    command = [sys.executable, "-m", "reasongen.team"]
    env = {**os.environ, "PYTHONPATH": str(Path(team.__file__).resolve().parents[1])}  # this reasongen
    run([*command, "up", "--port", str(free_port()), "--workers", "1", "--prefix", f"reasongen_test_{os.getpid()}"],
        folder, env)
    state = json.loads((folder / ".team/state.json").read_text())
    try:
        yield state["tracking_uri"], state["optuna_storage"]
    finally:
        run([*command, "down", "--drop"], folder, env)


def api(base: str, path: str, body: dict | None = None) -> dict:
    """One MLflow REST call (GET, or POST with a JSON body)."""
    request = urllib.request.Request(f"{base}/api/2.0/mlflow/{path}",
                                     data=None if body is None else json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read())


def search(base: str, experiment_id: str, filter_string: str) -> list[dict]:
    return api(base, "runs/search", {"experiment_ids": [experiment_id], "filter": filter_string,
                                     "max_results": 100}).get("runs", [])


def tags(run: dict) -> dict[str, str]:
    return {tag["key"]: tag["value"] for tag in run["data"].get("tags", [])}


def test_pipeline_sweep_promote_and_serve_on_a_team_server(pipeline, team_server, tmp_path) -> None:
    tracking_uri, optuna_storage = team_server
    work = tmp_path / "repo"
    shutil.copytree(pipeline[0], work, symlinks=True)  # the other tests keep their own registry and outputs
    env = {**pipeline[1], "PYTHONPATH": str(work / "src"), "MLFLOW_TRACKING_URI": tracking_uri}

    version = register(work, env, 8)
    run_two_workers(work, env, f"hparams_search.storage='{optuna_storage}'")
    result = promote(work, env, version)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    serve = [sys.executable, "-m", "reasongen", "serve", "--model", f"models:/{NAME}@champion"]  # make serve
    with served(work, env, serve) as base:
        status, text = post(f"{base}/invocations", records_body(GOOD))
    assert status == 200, text
    assert len(json.loads(text)["predictions"]) == 1

    experiment_id = api(tracking_uri, "experiments/get-by-name?experiment_name=reasongen-adgen")["experiment"][
        "experiment_id"]
    registered = json.loads((work / "outputs/register/registered.json").read_text())
    pipeline_run = api(tracking_uri, f"runs/get?run_id={registered['run_id']}")["run"]
    assert pipeline_run["info"]["status"] == "FINISHED"
    assert pipeline_run["info"]["experiment_id"] == experiment_id
    assert {"git_commit", "data_hash", "config_hash"} <= set(tags(pipeline_run))

    (parent,) = search(tracking_uri, experiment_id, "tags.sweep = 'workers'")
    assert parent["info"]["status"] == "FINISHED"
    children = search(tracking_uri, experiment_id, f"tags.mlflow.parentRunId = '{parent['info']['run_id']}'")
    study = optuna.load_study(study_name="workers", storage=optuna_storage)
    check_shared_study(study, 4, [(tags(child)["optuna_trial"], child["info"]["status"]) for child in children])

    storage = optuna.storages.RDBStorage(optuna_storage)
    with StudyLock(storage, "workers") as lock, storage.engine.connect() as other:  # another worker's attempt
        assert other.execute(sql("select pg_try_advisory_lock(:key)"), {"key": lock.key}).scalar() is False

    model = api(tracking_uri, f"registered-models/get?name={NAME}")["registered_model"]
    champion = api(tracking_uri, f"registered-models/alias?name={NAME}&alias=champion")["model_version"]
    assert champion["version"] == str(version) and champion["run_id"] == registered["run_id"]
    assert {"alias": "champion", "version": str(version)} in model["aliases"]
