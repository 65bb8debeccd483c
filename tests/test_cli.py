"""`reasongen --help` and every subcommand's help, and the CLI's errors for bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from reasongen.cli import main

COMMANDS = ("params", "data", "stage", "generate", "evaluate")


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
