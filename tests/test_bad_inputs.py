"""Every bad input file under tests/data/bad/ (expected.yaml says what each one is and what must become of it):
prepare quarantines the bad line with its reason and keeps the other rows (rows in = kept + quarantined: none
lost), Task B's review validation does the same, and the command line refuses a bad input file with
`path:line: reason`, one line, exit 2."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import pytest
import yaml
from conftest import CONF_DIR, record_figure

from reasongen.adgen.dataset import SPLITS
from reasongen.cli import main
from reasongen.config import compose
from reasongen.explain.reviews import review_row
from reasongen.io import read_jsonl
from reasongen.rows import validate_lines
from reasongen.stages import prepare

BAD = Path(__file__).parent / "data" / "bad"
EXPECTED = yaml.safe_load((BAD / "expected.yaml").read_text(encoding="utf-8"))
ROWS_PER_FILE = 5  # prepare/ and reviews/: four good rows around the bad line 3


@lru_cache(maxsize=1)
def default_cfg():
    return compose([], config_dir=CONF_DIR)


def test_there_are_at_least_30_kinds_of_bad_input() -> None:
    files = {path.relative_to(BAD).with_suffix("").as_posix() for path in BAD.rglob("*.jsonl")}
    named = {f"{'cli' if kind in ('generate', 'explain', 'evaluate') else kind}/{name}"
             for kind, entries in EXPECTED.items() for name in entries}
    assert files == named and len(files) >= 30


@pytest.mark.parametrize("name", sorted(EXPECTED["prepare"]))
def test_prepare_quarantines_the_bad_line_and_loses_no_row(name: str, tmp_path: Path) -> None:
    spec = EXPECTED["prepare"][name]
    stats = prepare.run(default_cfg(), raw_path=BAD / "prepare" / f"{name}.jsonl", out_dir=tmp_path)
    quarantined = read_jsonl(tmp_path / "quarantine.jsonl")
    assert [(record["line"], record["reason"]) for record in quarantined] == [(spec["line"], spec["reason"])]
    kept = sum(len(read_jsonl(tmp_path / f"{split}.jsonl")) for split in SPLITS)
    lost = stats["rows_in"] - kept - len(quarantined)
    assert (stats["rows_in"], kept, lost) == (ROWS_PER_FILE, ROWS_PER_FILE - 1, 0)
    record_figure("bad input", file=f"prepare/{name}.jsonl", reason=spec["reason"], rows_in=stats["rows_in"],
                  kept=kept, quarantined=len(quarantined), lost=lost)


@pytest.mark.parametrize("name", sorted(EXPECTED["reviews"]))
def test_review_validation_quarantines_the_bad_line_and_loses_no_row(name: str) -> None:
    spec = EXPECTED["reviews"][name]
    rows_in, kept, quarantined = validate_lines(BAD / "reviews" / f"{name}.jsonl", None, review_row)
    assert [(record["line"], record["reason"]) for record in quarantined] == [(spec["line"], spec["reason"])]
    assert (rows_in, len(kept)) == (ROWS_PER_FILE, ROWS_PER_FILE - 1)
    record_figure("bad input", file=f"reviews/{name}.jsonl", reason=spec["reason"], rows_in=rows_in, kept=len(kept),
                  quarantined=len(quarantined), lost=rows_in - len(kept) - len(quarantined))


def cli_cases() -> list[tuple[str, str]]:
    return [(kind, name) for kind in ("generate", "explain", "evaluate") for name in sorted(EXPECTED[kind])]


@pytest.mark.parametrize(("kind", "name"), cli_cases())
def test_the_command_line_names_the_bad_line(kind: str, name: str, tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    """The input is checked before any model is loaded: the model path here does not even exist."""
    spec = EXPECTED[kind][name]
    path = BAD / "cli" / f"{name}.jsonl"
    if kind == "evaluate":
        good = tmp_path / "good.jsonl"
        if spec["role"] == "predictions":
            good.write_text('{"content": "类型#裙", "summary": "这款裙子"}\n' * 2, encoding="utf-8")
            argv = ["evaluate", "--predictions", str(path), "--references", str(good)]
        else:
            good.write_text('{"prediction": "这款裙子"}\n' * 2, encoding="utf-8")
            argv = ["evaluate", "--predictions", str(good), "--references", str(path)]
    else:
        argv = [kind, "--model", str(tmp_path / "no-model"), "--input", str(path), "--output", str(tmp_path / "o")]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    where = f"{path}:{spec['line']}: " if spec["line"] else f"{path}: "
    assert err.startswith(where) and spec["reason"] in err, err
    assert "\n" not in err and "Traceback" not in err
    record_figure("bad input", file=f"cli/{name}.jsonl", command=kind, answer=err.replace(str(BAD) + "/", ""))
