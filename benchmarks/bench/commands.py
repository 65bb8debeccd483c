"""Figures of whole commands, each in a child process of its own (wall time and that child's peak memory): the
evaluate stage, a short training run, `dvc repro` with nothing changed, `reasongen --help`."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path
from typing import Any

from benchmarks.bench.inputs import Inputs
from benchmarks.bench.machine import ChildRun, run_child

BIN = Path(sys.executable).parent


def bench_child(inputs: Inputs, outputs: Path, work: Path, what: str, *extra: str) -> ChildRun:
    """`python -m benchmarks.bench child <what>` on the same inputs; fails loudly with the child's output tail."""
    command = [sys.executable, "-m", "benchmarks.bench", "--outputs", str(outputs), "--params",
               str(inputs.params_file), "--work", str(work), "child", what, *extra]
    found = run_child(command, env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    if found.returncode != 0:
        raise RuntimeError(f"child {what} exited {found.returncode}: {found.output[-800:]}")
    return found


def evaluate_stage(inputs: Inputs, out_dir: Path) -> None:
    """The evaluate stage's run() on the test split, writing to out_dir (never into the pipeline's outputs)."""
    from reasongen.stages import evaluate

    evaluate.run(inputs.cfg, inputs.prepared_dir, inputs.model_dir, out_dir)


def cli_help() -> ChildRun:
    entry = BIN / "reasongen"
    command = [str(entry), "--help"] if entry.exists() else [sys.executable, "-m", "reasongen", "--help"]
    return run_child(command)


def dvc_noop(repo: Path) -> tuple[ChildRun, str]:
    """`dvc repro` when `dvc status` finds the pipeline up to date here; else (it would run stages) `dvc status`'s
    own time, with a note saying so."""
    dvc = str(BIN / "dvc") if (BIN / "dvc").exists() else shutil.which("dvc") or "dvc"
    status = run_child([dvc, "status"], cwd=repo)
    up_to_date = status.returncode == 0 and "up to date" in status.output.lower()
    if not up_to_date:
        return status, ("the pipeline is not up to date in this checkout (or not run here): this is `dvc status`'s "
                        "time, not `dvc repro`'s")
    return run_child([dvc, "repro"], cwd=repo), "`dvc repro` with every stage up to date"


def summary(found: ChildRun) -> dict[str, Any]:
    return {"seconds": round(found.seconds, 2), "peak_rss_mb": round(found.peak_rss_mb, 1)}
