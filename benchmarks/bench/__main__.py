"""`make bench`: every figure of reports/bench.json measured in this one run, each in its own try so that one
failure is recorded (as an error string) and the rest still run; then reports/bench.md and reports/bench_gpu.json.

    python -m benchmarks.bench [--outputs outputs] [--params params.yaml] [--reports reports]

BENCH_QUICK=1 shortens everything (seconds of serving, a few steps) for trying the bench out; BENCH_SERVE_S sets
the serving load's duration (default 60 s), BENCH_EVALUATE_ROWS the test rows the evaluate stage is timed on
(default: all)."""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks.bench import commands, decoding, gpu, machine, report, serving, training
from benchmarks.bench.inputs import Inputs, locate

QUICK = os.environ.get("BENCH_QUICK") == "1"
# (warm-up steps, timed steps) of the trainer comparison and of each scaling point; test rows of the generation
# comparison; serving clients and seconds
TRAIN_STEPS = (1, 4) if QUICK else (3, 30)
SCALING_STEPS = (1, 2) if QUICK else (1, 4)
SCALING_ROWS = (1000, 2000, 4000)
GENERATION_ROWS = 8 if QUICK else 32  # one at a time; the batched side decodes the whole test split (16 if quick)
SERVE_CLIENTS = 4
# None: the whole test split (BENCH_EVALUATE_ROWS caps it, for trying the bench out)
EVALUATE_ROWS = 16 if QUICK else int(os.environ.get("BENCH_EVALUATE_ROWS", "0")) or None
SERVE_S = float(os.environ.get("BENCH_SERVE_S", "5" if QUICK else "60"))


def measured(figures: dict[str, Any], keys: tuple[str, ...], measure: Callable[[], dict[str, dict[str, Any]]]) -> None:
    """Run one measurement into figures; if it raises, each of its keys records the error instead."""
    started = time.perf_counter()
    try:
        figures.update(measure())
    except Exception as error:  # noqa: BLE001 - any failure is a recorded figure, not the end of the bench
        figures.update({key: report.failed(key, error) for key in keys})
    print(f"[bench] {', '.join(keys)}: {time.perf_counter() - started:.0f} s: "
          + "; ".join(f"{key} {figures[key].get('value')}" for key in keys), flush=True)


def training_figures(inputs: Inputs, precision: str) -> dict[str, dict[str, Any]]:
    ours, theirs, model = training.compare_trainers(inputs, *TRAIN_STEPS)
    mean_length = sum(ours.lengths) / len(ours.lengths)
    per_token, formula = training.model_flops_per_token(model, mean_length)
    ceiling = machine.matmul_flops(precision)
    achieved = per_token * ours.tokens_per_s
    losses = {"project_loss": round(ours.final_loss(), 4), "hf_trainer_loss": round(theirs.final_loss(), 4)}
    return {
        "train_speedup_vs_hf_trainer": report.figure(
            "train_speedup_vs_hf_trainer", ours.tokens_per_s / theirs.tokens_per_s,
            project_tokens_per_s=round(ours.tokens_per_s), hf_trainer_tokens_per_s=round(theirs.tokens_per_s),
            steps=ours.steps, warm_up_steps=TRAIN_STEPS[0], project_precision=precision, hf_precision="fp32",
            **losses, losses_equal=training.losses_agree(losses["project_loss"], losses["hf_trainer_loss"]),
            loss_tolerance="|Δ| ≤ 0.1 nats or ≤ 3% (mean of the last 10 steps' losses)"),
        "train_flops_utilisation": report.figure(
            "train_flops_utilisation", achieved / ceiling["flops_per_s"], achieved_flops_per_s=f"{achieved:.3g}",
            matmul_flops_per_s=f"{ceiling['flops_per_s']:.3g}", matmul=f"{ceiling['size']}² {ceiling['dtype']}",
            formula=formula),
    }


def padding_figure(inputs: Inputs) -> dict[str, dict[str, Any]]:
    share, pads, total = training.padding_waste(inputs)
    return {"padding_waste": report.figure("padding_waste", share, pad_tokens=pads, all_tokens=total)}


def generation_figure(inputs: Inputs) -> dict[str, dict[str, Any]]:
    found = decoding.compare(inputs, GENERATION_ROWS, 16 if QUICK else None)
    return {"generation_speedup_vs_naive": report.figure("generation_speedup_vs_naive", found.pop("speedup"),
                                                         precision="fp32", **found)}


def evaluate_figures(inputs: Inputs, args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    run = commands.bench_child(inputs, args.outputs, args.work, "evaluate")
    rows = EVALUATE_ROWS or len(inputs.rows("test"))
    note = "" if inputs.base_dir else "on the untrained stand-in model: it writes max_new_tokens every time"
    return {"evaluate_stage_s": report.figure("evaluate_stage_s", run.seconds, test_rows=rows, note=note),
            "generate_peak_rss_mb": report.figure("generate_peak_rss_mb", run.peak_rss_mb,
                                                  note="the evaluate stage's process")}


def train_rss_figure(inputs: Inputs, args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    run = commands.bench_child(inputs, args.outputs, args.work, "train")
    return {"train_peak_rss_mb": report.figure("train_peak_rss_mb", run.peak_rss_mb,
                                               note=f"a process running {sum(TRAIN_STEPS)} steps of the project's "
                                                    "trainer on the training split")}


def dvc_figure(repo: Path) -> dict[str, dict[str, Any]]:
    run, note = commands.dvc_noop(repo)
    return {"dvc_noop_s": report.figure("dvc_noop_s", run.seconds, note=note)}


def cli_figure() -> dict[str, dict[str, Any]]:
    run = commands.cli_help()
    if run.returncode != 0:
        raise RuntimeError(f"reasongen --help exited {run.returncode}: {run.output[-300:]}")
    return {"cli_help_s": report.figure("cli_help_s", run.seconds)}


def serve_figures(inputs: Inputs, args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    found = serving.load(inputs, args.work / "serve", SERVE_CLIENTS, SERVE_S)
    details = {k: found[k] for k in ("requests", "clients", "seconds", "non_200")}
    return {"serve_p50_ms": report.figure("serve_p50_ms", found["p50_ms"], **details),
            "serve_p99_ms": report.figure("serve_p99_ms", found["p99_ms"], decoding="the registered default",
                                          **details)}


def profiles(figures: dict[str, Any], inputs: Inputs) -> dict[str, str]:
    """A profile for each kind of missed target (training: torch.profiler; generation: cProfile)."""
    kinds = {report.profile_kind(key) for key, found in figures.items() if found.get("met") is False}
    found = {}
    for kind, make in (("training", lambda: training.profile_steps(inputs)),
                       ("generation", lambda: decoding.profile(inputs))):
        if kind in kinds:
            try:
                found[kind] = make()
            except Exception as error:  # noqa: BLE001 - a failed profile is a line in the report
                found[kind] = f"profile failed: {type(error).__name__}: {error}"
    return found


def bench(args: argparse.Namespace) -> dict[str, Any]:
    started = time.perf_counter()
    inputs = locate(args.outputs, args.params, args.work)
    precision = training.precision(inputs)
    result: dict[str, Any] = {"machine": machine.machine_info(precision), "inputs_note": inputs.note,
                              "quick": QUICK}
    figures: dict[str, Any] = {}
    measured(figures, ("cli_help_s",), cli_figure)
    measured(figures, ("dvc_noop_s",), lambda: dvc_figure(Path.cwd()))
    measured(figures, ("padding_waste",), lambda: padding_figure(inputs))
    measured(figures, ("train_speedup_vs_hf_trainer", "train_flops_utilisation"),
             lambda: training_figures(inputs, precision))
    measured(figures, ("generation_speedup_vs_naive",), lambda: generation_figure(inputs))
    measured(figures, ("train_peak_rss_mb",), lambda: train_rss_figure(inputs, args))
    measured(figures, ("evaluate_stage_s", "generate_peak_rss_mb"), lambda: evaluate_figures(inputs, args))
    measured(figures, ("serve_p50_ms", "serve_p99_ms"), lambda: serve_figures(inputs, args))
    result["figures"] = {key: figures[key] for key in report.TARGETS if key in figures}
    try:
        rows = training.scaling(inputs, SCALING_ROWS, *SCALING_STEPS)
        result["scaling"] = {"rows": rows, "summary": training.scaling_summary(rows)}
    except Exception as error:  # noqa: BLE001
        result["scaling"] = {"error": f"{type(error).__name__}: {error}"}
    print(f"[bench] scaling: {result['scaling'].get('summary') or result['scaling'].get('error')}", flush=True)
    result["profiles"] = profiles(result["figures"], inputs)
    result["gpu"] = gpu.gpu_bench(QUICK)
    result["gpu_note"] = gpu.gpu_note(result["gpu"])
    result["seconds"] = round(time.perf_counter() - started, 1)
    return result


def child(args: argparse.Namespace) -> None:
    """What a measured child process runs: the evaluate stage, or a short training run."""
    inputs = locate(args.outputs, args.params, args.work)
    if args.what == "evaluate":
        inputs.cfg.evaluate.max_examples = EVALUATE_ROWS
        commands.evaluate_stage(inputs, args.work / "evaluate")
    else:
        model, tokenizer = training.starting_model(inputs)
        training.project_run(inputs, model, training.datamodule(inputs, tokenizer, inputs.rows("train")),
                             *TRAIN_STEPS)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--outputs", type=Path, default=Path("outputs"), help="the pipeline's outputs, if any")
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--reports", type=Path, default=Path("reports"))
    parser.add_argument("--work", type=Path, default=None, help="scratch folder (default: a temporary one)")
    sub = parser.add_subparsers(dest="command")
    child_parser = sub.add_parser("child")
    child_parser.add_argument("what", choices=("evaluate", "train"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-") as scratch:
        args.work = (args.work or Path(scratch)).resolve()
        if args.command == "child":
            child(args)
            return
        result = bench(args)
    args.reports.mkdir(parents=True, exist_ok=True)
    (args.reports / "bench.json").write_text(json.dumps({k: v for k, v in result.items() if k != "gpu"},
                                                        ensure_ascii=False, indent=2), encoding="utf-8")
    (args.reports / "bench_gpu.json").write_text(json.dumps(result["gpu"], indent=2), encoding="utf-8")
    (args.reports / "bench.md").write_text(report.render(result), encoding="utf-8")
    print(f"[bench] {result['seconds']:.0f} s; wrote {args.reports}/bench.json, bench.md, bench_gpu.json")


if __name__ == "__main__":
    main()
