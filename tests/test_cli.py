"""`reasongen --help` and every subcommand's help, and the CLI's errors for bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from reasongen.cli import main

COMMANDS = ("params", "data", "stage", "generate", "evaluate", "explain", "serve")


@pytest.mark.parametrize("command", ("", *COMMANDS))
def test_help_has_usage_and_examples(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main([command, "--help"] if command else ["--help"])
    assert done.value.code == 0
    text = capsys.readouterr().out
    assert "usage: reasongen" in text
    if command in ("", "generate", "evaluate"):
        assert "examples:" in text


def test_generate_names_the_bad_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "in.jsonl"
    bad.write_text(json.dumps({"content": "类型#裙"}) + "\n" + json.dumps({"title": "no content"}) + "\n")
    assert main(["generate", "--model", str(tmp_path), "--input", str(bad), "--output", str(tmp_path / "o")]) == 2
    assert f"{bad}:2" in capsys.readouterr().err


def test_evaluate_refuses_mismatched_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    predictions = tmp_path / "p.jsonl"
    references = tmp_path / "r.jsonl"
    predictions.write_text(json.dumps({"prediction": "这款裙子"}) + "\n")
    references.write_text("".join(json.dumps({"content": "类型#裙", "summary": s}) + "\n" for s in ("一", "二")))
    assert main(["evaluate", "--predictions", str(predictions), "--references", str(references)]) == 2
    assert "has 1 lines" in capsys.readouterr().err


def test_evaluate_scores_a_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    predictions = tmp_path / "p.jsonl"
    references = tmp_path / "r.jsonl"
    predictions.write_text(json.dumps({"prediction": "这款蓝色裙子清新显瘦"}, ensure_ascii=False) + "\n")
    references.write_text(json.dumps({"content": "类型#裙*颜色#蓝色*风格#清新", "summary": "这款蓝色裙子很清新"},
                                     ensure_ascii=False) + "\n")
    assert main(["evaluate", "--predictions", str(predictions), "--references", str(references),
                 "--train", str(tmp_path / "none.jsonl"), "--params", str(tmp_path / "none.yaml")]) == 0
    scores = json.loads((tmp_path / "p.metrics.json").read_text())
    assert scores["coverage"] == 100.0 and scores["bleu4"] > 0


REPO = Path(__file__).resolve().parents[1]
PARAMS = str(REPO / "params.yaml")
# (argv, what stderr must say): bad calls, each answered with one line and exit code 2, before any work is done
BAD_CALLS = [
    (["params", "finetnue.epochs=1"], "did you mean 'finetune.epochs'?"),
    (["params", "data.max_rowz=3"], "did you mean 'data.max_rows'?"),
    (["params", "experiment=tinny"], "conf/experiment has no option 'tinny'; did you mean 'tiny'?"),
    (["params", "peft=lorra"], "did you mean 'lora'?"),
    (["params", "finetune.epochs=abc"], "finetune.epochs takes an integer (it is "),
    (["params", "generation.do_sample=maybe"], "takes true or false"),
    (["params", "finetune.lr=1e-3,1e-4"], "make sweep"),
    (["params", "-m", "finetune.lr=1e-3,1e-4"], "dvc exp run --queue"),
    (["stage", "finetune", "-m", "finetune.epochs=1,2"], "reasongen sweep"),
    (["params", "finetune"], "not an override of the form key=value"),
    (["stage", "finetune", "--params", PARAMS, "finetnue.epochs=1"], "did you mean 'finetune.epochs'?"),
    (["stage", "finetune", "--params", PARAMS, "finetune.epochs=abc"], "takes an integer"),
    (["stage", "prepare", "--params", PARAMS, "experiment=tiny"], "reasongen params experiment=tiny"),
    (["stage", "prepare", "--params", PARAMS, "finetune.epochs=1"], "stage prepare does not read finetune.epochs"),
    (["stage", "finetune", "--params", "no-such-params.yaml"], "no such params file"),
    (["promote", "--params", PARAMS, "promote.candidatee=3"], "did you mean 'promote.candidate'?"),
    (["sweep", "hparams_search.n_trails=3"], "did you mean 'hparams_search.n_trials'?"),
    (["sweep", "hparams_search=fast"], "conf/hparams_search has no option 'fast'"),
    (["serve", "--model", "models:/m@champion", "serving.max_rowz=4"], "did you mean 'serving.max_rows'?"),
    (["data", "--params", "no-such-params.yaml"], "no such params file"),
    (["generate", "--model", "m", "--input", "no-such-input.jsonl", "--output", "o.jsonl"], "no-such-input.jsonl: "),
    (["explain", "--model", "m", "--input", "no-such-input.jsonl", "--output", "o.jsonl"], "no-such-input.jsonl: "),
]


@pytest.mark.parametrize(("argv", "says"), BAD_CALLS, ids=[" ".join(argv)[:60] for argv, _ in BAD_CALLS])
def test_bad_calls_get_one_line_and_exit_2(argv: list[str], says: str, capsys: pytest.CaptureFixture[str],
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO)  # dvc.yaml and conf/ of the checkout; nothing here writes a file
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert says in err and "\n" not in err and "Traceback" not in err, err


@pytest.mark.parametrize("argv", [["generate", "--batch-size", "0"], ["explain", "--batch-size", "-3"],
                                  ["generate", "--batch-size", "abc"], ["serve", "--port", "0"]])
def test_bad_flag_values_are_refused(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    full = [*argv, "--model", "m", "--input", "i", "--output", "o"] if argv[0] != "serve" else [*argv, "--model", "m"]
    with pytest.raises(SystemExit) as done:
        main(full)
    assert done.value.code == 2 and argv[-1] in capsys.readouterr().err


def test_unknown_models_get_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    import mlflow

    good = tmp_path / "in.jsonl"
    good.write_text(json.dumps({"content": "类型#裙*颜色#蓝色"}, ensure_ascii=False) + "\n", encoding="utf-8")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    before = mlflow.get_tracking_uri(), mlflow.get_registry_uri()
    try:
        for model, says in ((str(tmp_path / "no-model"), "is not a reasongen model folder"),
                            (str(tmp_path), "is not a reasongen model folder"),
                            ("models:/no-such-model/1", "models:/no-such-model/1: ")):
            argv = ["generate", "--model", model, "--input", str(good), "--output", str(tmp_path / "o.jsonl")]
            assert main(argv) == 2
            err = capsys.readouterr().err.strip()
            assert says in err.splitlines()[-1] and "Traceback" not in err, err  # above it: MLflow's own log lines
    finally:  # tracking.configure set this process's MLflow URIs
        mlflow.set_tracking_uri(before[0])
        mlflow.set_registry_uri(before[1])
