"""Gated promotion on the tiny pipeline's registry, then `mlflow models serve` of the champion on loopback.
Candidates are made worse or better by construction: the same greedy model with fewer or more new tokens,
judged on avg_length with no tolerance (a longer greedy continuation extends the shorter one)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import mlflow
import pytest
from conftest import BIN, JSON, free_port, ping, post, record_figure, run, served, store_client
from omegaconf import OmegaConf

from reasongen.promote import gate_failures

NAME = "reasongen-adgen"
GATES = ["promote.max_examples=6", "promote.tolerance=0", "evaluate.objective.name=avg_length",
         "promote.max_hallucination_rate=100", "promote.max_violation_rate=100",
         "promote.max_attribute_hallucination_rate=100", "promote.max_product_type_mismatch_rate=100",
         "promote.max_repetition_rate=100", "promote.max_list_ending_rate=100", "promote.max_cut_off_rate=100",
         "promote.min_aspect_accuracy=0", "promote.min_length_accuracy=0"]


def register(work, env, max_new_tokens: int) -> str:
    """A version whose texts are as long as max_new_tokens allows (no retrieve-and-edit: its human texts would be
    as long whatever the model writes)."""
    run([sys.executable, "-m", "reasongen", "stage", "register", "generation.do_sample=false",
         f"generation.max_new_tokens={max_new_tokens}", "generation.retrieve_edit.neighbours=0"], work, env)
    return int(json.loads((work / "outputs/register/registered.json").read_text())["version"])


def promote(work, env, version: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "reasongen", "promote", f"promote.candidate={version}", *GATES],
                          cwd=work, env=env, capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def registry(pipeline):
    """The pipeline's registry; registering here rewrites registered.json, which is put back afterwards, so that
    the pipeline copy stays up to date for the tests that run after these (in any order)."""
    work, env = pipeline
    recorded = work / "outputs/register/registered.json"
    original = recorded.read_bytes()
    yield work, env, store_client(work)
    recorded.write_bytes(original)


@pytest.fixture(scope="module")
def champion(registry) -> str:
    """A champion version, promoted here if no test has made one yet (tests run in any order)."""
    work, env, client = registry
    try:
        return client.get_model_version_by_alias(NAME, "champion").version
    except mlflow.exceptions.MlflowException:
        version = register(work, env, 8)
        assert promote(work, env, version).returncode == 0
        return version


def test_gate_on_hand_made_scores() -> None:
    gates = OmegaConf.create({"tolerance": 1.0, "max_hallucination_rate": 5, "max_violation_rate": 5,
                              "max_attribute_hallucination_rate": 5, "max_product_type_mismatch_rate": 1,
                              "max_repetition_rate": 2, "max_list_ending_rate": 1, "max_cut_off_rate": 1,
                              "min_aspect_accuracy": 50, "min_length_accuracy": 50})
    objective = {"name": "combined", "coverage_weight": 0.2, "hallucination_weight": 1.0, "fault_weight": 0.2}
    good = {"bleu4": 5, "rougeL": 20, "coverage": 90, "hallucination_rate": 1, "violation_rate": 0,
            "aspect_accuracy": 80, "length_accuracy": None}
    assert gate_failures(good, None, gates, objective) == []
    assert gate_failures(good, {**good, "bleu4": 5.9}, gates, objective) == []  # within tolerance
    worse = {**good, "bleu4": 2, "violation_rate": 9, "aspect_accuracy": 10}
    reasons = gate_failures(worse, good, gates, objective)
    assert len(reasons) == 3 and reasons[0].startswith("objective")
    # a text that loops or ends in a glued-on list cannot become champion, however well it scores otherwise
    loops = {**good, "repetition_rate": 30.0, "list_ending_rate": 12.0, "cut_off_rate": 5.0}
    assert [r.split()[0] for r in gate_failures(loops, None, gates, objective)] == ["repetition_rate",
                                                                                    "list_ending_rate",
                                                                                    "cut_off_rate"]


def test_promotion_first_worse_then_better_candidate(registry) -> None:
    """One registry history, in order: the first candidate becomes champion, a worse one is rejected with its
    reasons, a better one takes champion and the old champion keeps `previous`."""
    work, env, client = registry
    first = register(work, env, 8)
    result = promote(work, env, first)
    assert result.returncode == 0, result.stdout + result.stderr
    assert client.get_model_version_by_alias(NAME, "champion").version == first

    worse = register(work, env, 1)
    result = promote(work, env, worse)
    assert result.returncode == 1, result.stdout + result.stderr
    assert client.get_model_version_by_alias(NAME, "champion").version == first
    tags = client.get_model_version(NAME, worse).tags
    assert tags["promotion"] == "rejected" and tags["rejected"].startswith("objective")

    better = register(work, env, 16)
    result = promote(work, env, better)
    assert result.returncode == 0, result.stdout + result.stderr
    assert client.get_model_version_by_alias(NAME, "champion").version == better
    assert client.get_model_version_by_alias(NAME, "previous").version == first
    lineage = client.get_model_version(NAME, better).tags
    assert {"git_commit", "data_hash", "config_hash", "source_run_id"} <= set(lineage)


def records_body(records: list[dict], **extra) -> bytes:
    return json.dumps({"dataframe_records": records, **extra}, ensure_ascii=False).encode()


@contextmanager
def tracking_store(work):
    """This process's MLflow URIs on the pipeline's store, for the duration."""
    before = mlflow.get_tracking_uri(), mlflow.get_registry_uri()
    uri = f"sqlite:///{work / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    try:
        yield
    finally:
        mlflow.set_tracking_uri(before[0])
        mlflow.set_registry_uri(before[1])


def test_served_texts_are_the_evaluated_ones(registry, tmp_path) -> None:
    """The pipeline's own registered version, asked without params for the rows its evaluate stage scored, writes
    the very texts that stage wrote (sampled candidates, seeded): through the pyfunc API, a request to
    `mlflow models serve`, and `reasongen generate`. Hard-coded param defaults (do_sample, 128 tokens) broke this."""
    import pandas as pd

    work, env, client = registry
    version = min(int(v.version) for v in client.search_model_versions(f"name='{NAME}'"))  # dvc repro's
    uri = f"models:/{NAME}/{version}"
    evaluated = [json.loads(line) for line in (work / "outputs/evaluate/predictions.jsonl").read_text().splitlines()]
    expected = [row["model"] for row in evaluated]
    # the evaluate stage's headline texts were written from the attributes alone (evaluate.use_controls: false)
    rows = [{"content": row["content"]} for row in evaluated]
    requested = rows

    with tracking_store(work):
        assert mlflow.pyfunc.load_model(uri).predict(pd.DataFrame(requested)) == expected
    with served(work, env, [str(BIN / "mlflow"), "models", "serve", "-m", uri, "--env-manager", "local"]) as base:
        status, text = post(f"{base}/invocations", records_body(requested))
    assert status == 200, text
    assert json.loads(text)["predictions"] == expected
    inputs, output = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    inputs.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8")
    run([sys.executable, "-m", "reasongen", "generate", "--model", uri, "--input", str(inputs), "--output",
         str(output)], work, env)
    assert [json.loads(line)["prediction"] for line in output.read_text().splitlines()] == expected


GOOD = [{"content": "类型#裙*颜色#蓝色*风格#清新", "aspect": "显瘦"}]
SERVE_LIMITS = ["serving.max_rows=4", "serving.max_body_bytes=4096", "serving.max_field_chars=200",
                "serving.max_new_tokens=32"]
# (what, body, content type, status): each bad request, and the status `reasongen serve` must answer it with
BAD_REQUESTS = [
    ("body not JSON", b"{not json", JSON, 400),
    ("JSON array, not an object", b"[1, 2]", JSON, 400),
    ("invalid UTF-8 in the body", b'{"dataframe_records": [{"content": "\xff\xfe"}]}', JSON, 400),
    ("no content column", records_body([{"colour": "蓝"}]), JSON, 400),
    ("content null", records_body([{"content": None}]), JSON, 400),
    ("content without key#value pairs", records_body([{"content": "蓝色连衣裙"}]), JSON, 400),
    ("unknown length_bucket", records_body([{"content": "类型#裙", "length_bucket": "huge"}]), JSON, 400),
    ("unknown aspect", records_body([{"content": "类型#裙", "aspect": "好看"}]), JSON, 400),
    ("keywords a list of numbers", records_body([{"content": "类型#裙", "keywords": [1, 2]}]), JSON, 400),
    ("no rows", records_body([]), JSON, 400),
    ("5 rows, over max_rows=4", records_body(GOOD * 5), JSON, 400),
    ("a 300-character field, over max_field_chars=200", records_body([{"content": "类型#" + "裙" * 300}]), JSON, 400),
    ("a 1 MB body, over max_body_bytes=4096", records_body([{"content": "类型#" + "裙" * 350_000}]), JSON, 413),
    ("5,000 rows (over max_body_bytes before max_rows)", records_body(GOOD * 5000), JSON, 413),
    ("max_new_tokens 100000, over the cap of 32", records_body(GOOD, params={"max_new_tokens": 100000}), JSON, 400),
    ("max_new_tokens 0", records_body(GOOD, params={"max_new_tokens": 0}), JSON, 400),
    ("max_new_tokens not a number", records_body(GOOD, params={"max_new_tokens": "abc"}), JSON, 400),
    ("temperature 0", records_body(GOOD, params={"temperature": 0.0}), JSON, 400),
    ("top_p 2", records_body(GOOD, params={"top_p": 2.0}), JSON, 400),
    ("an unknown param", records_body(GOOD, params={"bogus": 1}), JSON, 400),
    ("params not an object", records_body(GOOD, params=[1]), JSON, 400),
    ("text/plain body", b"content=x", "text/plain", 415),
    ("a charset other than UTF-8", records_body(GOOD), "application/json; charset=latin-1", 415),
]


def test_served_champion_refuses_bad_requests_with_one_line_and_stays_up(registry, champion) -> None:
    work, env, _ = registry
    command = [sys.executable, "-m", "reasongen", "serve", "--model", f"models:/{NAME}@champion", *SERVE_LIMITS]
    answered = []
    with served(work, env, command) as base:
        for what, body, content_type, expected in BAD_REQUESTS:
            status, text = post(f"{base}/invocations", body, content_type)
            answered.append({"request": what, "status": status})
            assert status == expected, f"{what}: {status} {text}"
            reason = json.loads(text)
            assert set(reason) == {"error_code", "message"} and reason["message"], f"{what}: {text}"
            assert "\n" not in reason["message"] and "Traceback" not in text, f"{what}: {text}"
            assert ping(base), f"no answer to /ping after: {what}"
        status, _ = post(f"{base}/invocations", b"", method="GET")
        answered.append({"request": "GET /invocations", "status": status})
        assert status == 405
        status, text = post(f"{base}/invocations", records_body(GOOD * 4, params={"max_new_tokens": 32}))
        assert status == 200, text
        assert len(json.loads(text)["predictions"]) == 4
    record_figure("bad requests", answered=answered)


def _state_and_parent(pid: int) -> tuple[str, int] | None:
    """A process's state letter and parent pid from /proc/<pid>/stat, or None once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return fields[0], int(fields[1])


def _alive(pid: int, parent: int | None = None) -> bool:
    """Whether pid runs (neither gone nor a zombie), and when parent is given, as parent's child."""
    found = _state_and_parent(pid)
    return found is not None and found[0] != "Z" and parent in (None, found[1])


def _children(pid: int) -> list[int]:
    """The live processes whose parent is pid."""
    pids = [int(entry.name) for entry in Path("/proc").iterdir() if entry.name.isdigit()]
    return [child for child in pids if _alive(child, pid)]


@pytest.mark.skipif(not Path("/proc").exists(), reason="reads the process tree from /proc")
def test_server_processes_answer_together_and_end_with_their_parent(registry, champion) -> None:
    """REASONGEN_SERVE_PROCESSES=2: two forked copies of the model write two requests at once, the texts of one sent
    alone; killed outright (SIGKILL: it tells them nothing), the server leaves no copy behind."""
    work, env, _ = registry
    port = free_port()
    serve_env = {"MLFLOW_TRACKING_URI": f"sqlite:///{work / 'mlflow.db'}", **env, "REASONGEN_SERVE_PROCESSES": "2"}
    command = [sys.executable, "-m", "reasongen", "serve", "--model", f"models:/{NAME}@champion", "--port", str(port)]
    process = subprocess.Popen(command, cwd=work, env=serve_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 180
        while not ping(base):
            assert process.poll() is None, process.stdout.read().decode()[-3000:]
            assert time.time() < deadline, "the server did not come up"
            time.sleep(1)
        servers = _children(process.pid)
        assert len(servers) == 2, servers
        body = records_body(GOOD[:1], params={"max_new_tokens": 32})
        alone = post(f"{base}/invocations", body)
        with ThreadPoolExecutor(2) as pool:
            together = list(pool.map(lambda _: post(f"{base}/invocations", body), range(2)))
        assert alone[0] == 200 and together == [alone, alone]
    finally:
        process.kill()
        process.wait()
    deadline = time.time() + 30  # each copy notices within a second, then stops
    while servers_alive(servers) and time.time() < deadline:
        time.sleep(0.5)
    assert not servers_alive(servers), "a forked copy outlived the server"


def servers_alive(pids: list[int]) -> list[int]:
    """The pids that are still running (not gone, not zombies)."""
    return [pid for pid in pids if _alive(pid)]


def test_recorded_scores_stand_in_only_for_the_same_test_rows(monkeypatch) -> None:
    from types import SimpleNamespace

    from reasongen import promote, tracking
    from reasongen.config import compose, flatten

    cfg = compose(["experiment=tiny"])
    params = {key: str(value) for key, value in flatten(cfg).items()}
    run = SimpleNamespace(data=SimpleNamespace(tags={"data_hash": "abc"}, params=params,
                                               metrics={"model/bleu4": 8.5, "retrieval/bleu4": 5.0}))
    client = SimpleNamespace(get_model_version=lambda name, version: SimpleNamespace(tags={"source_run_id": "r1"}),
                             get_run=lambda run_id: run)
    monkeypatch.setattr(tracking, "data_hash", lambda: "abc")
    assert promote.recorded_scores(client, "m", "1", cfg) == {"bleu4": 8.5}
    cfg.promote.max_examples = 5  # promotion would score fewer rows than the run did
    assert promote.recorded_scores(client, "m", "1", cfg) is None
    cfg.promote.max_examples = None
    run.data.params = {**params, "data.split.seed": "7"}  # another split
    assert promote.recorded_scores(client, "m", "1", cfg) is None
    run.data.params = params
    monkeypatch.setattr(tracking, "data_hash", lambda: "other")  # other raw data
    assert promote.recorded_scores(client, "m", "1", cfg) is None


def test_a_version_accepted_after_a_rejection_keeps_no_rejected_tag(tmp_path) -> None:
    """Promotion's tags say the latest decision: accepting a version once rejected removes its `rejected` reasons."""
    from reasongen.promote import Decision, record

    client = store_client(tmp_path)
    client.create_registered_model("m")
    version = client.create_model_version("m", source=str(tmp_path)).version
    cfg = OmegaConf.create({"evaluate": {"objective": {"name": "bleu4"}}})
    record(client, "m", Decision(version, None, accepted=False, reasons=["objective 1 < 2"],
                                 scores={"candidate": {"bleu4": 1.0}}), cfg)
    assert client.get_model_version("m", version).tags["rejected"] == "objective 1 < 2"
    record(client, "m", Decision(version, None, accepted=True, scores={"candidate": {"bleu4": 3.0}}), cfg)
    tags = client.get_model_version("m", version).tags
    assert tags["promotion"] == "accepted" and "rejected" not in tags
    assert client.get_model_version_by_alias("m", "champion").version == version
