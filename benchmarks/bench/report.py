"""The bench's figures with their targets, and the Markdown report rendered from them."""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping
from typing import Any

# key -> (target, what it measures); the order is the report's
TARGETS: dict[str, tuple[str, str]] = {
    "train_speedup_vs_hf_trainer": (">= 1.5", "non-pad tokens/s of the project's trainer over a default "
                                              "transformers.Trainer"),
    "train_flops_utilisation": (">= 0.30", "achieved training FLOP/s over a large matmul's FLOP/s, same precision"),
    "padding_waste": ("<= 0.05", "pad tokens over all tokens, finetune train loader, one epoch"),
    "generation_speedup_vs_naive": (">= 10", "tokens/s of batched greedy decoding over model.generate one row "
                                             "at a time"),
    "evaluate_stage_s": ("<= 180", "the evaluate stage on the test split, wall seconds"),
    "dvc_noop_s": ("<= 3", "`dvc repro` with nothing changed, wall seconds"),
    "cli_help_s": ("<= 1.5", "`reasongen --help`, wall seconds"),
    "serve_p50_ms": ("", "one product per request, 4 concurrent clients: median latency"),
    "serve_p99_ms": ("<= 500", "one product per request, 4 concurrent clients: 99th percentile latency"),
    "train_peak_rss_mb": ("", "peak resident memory of a process that trains (project trainer)"),
    "generate_peak_rss_mb": ("", "peak resident memory of the evaluate stage's process (generation)"),
}
OPERATORS: dict[str, Callable[[float, float], bool]] = {">=": operator.ge, "<=": operator.le}


def is_met(value: float | None, target: str) -> bool | None:
    """Whether value meets a target such as '>= 1.5' (None: no target, or no value)."""
    if not target or value is None:
        return None
    symbol, bound = target.split()
    return OPERATORS[symbol](value, float(bound))


def figure(key: str, value: float | None, **details: Any) -> dict[str, Any]:
    """One figure of bench.json: its value, its target and whether it is met, plus what else explains it."""
    target = TARGETS[key][0]
    rounded = round(value, 4) if isinstance(value, float) else value
    return {"value": rounded, "target": target, "met": is_met(value, target), **details}


def failed(key: str, error: BaseException) -> dict[str, Any]:
    """A figure whose measurement raised: the error in place of the value, so that the rest of the bench goes on."""
    return {"value": None, "target": TARGETS[key][0], "met": None, "error": f"{type(error).__name__}: {error}"}


def cell(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "**no**"
    return f"{value:,.3f}".rstrip("0").rstrip(".") if isinstance(value, float) else str(value)


def figures_table(figures: Mapping[str, Mapping[str, Any]]) -> list[str]:
    lines = ["| key | value | target | met | what | note |", "|---|---|---|---|---|---|"]
    for key, (_, what) in TARGETS.items():
        found = figures.get(key, {})
        note = found.get("error") or found.get("note", "")
        lines.append(f"| `{key}` | {cell(found.get('value'))} | {found.get('target', '') or '–'} | "
                     f"{cell(found.get('met'))} | {what} | {note} |")
    return lines


def scaling_table(rows: list[Mapping[str, Any]]) -> list[str]:
    lines = ["| model | parameters | training rows | steps per epoch | s per step | epoch s (estimated) |",
             "|---|---|---|---|---|---|"]
    lines += [f"| {r['model']} | {r['parameters']:,} | {r['rows']:,} | {r['steps_per_epoch']} | "
              f"{r['s_per_step']:.3f} | {r['epoch_s']:.1f} |" for r in rows]
    return lines


def render(report: Mapping[str, Any]) -> str:
    """bench.md from bench.json's content: machine, inputs, the figures against their targets, the scaling table,
    the GPU section and a profile of each missed target."""
    machine = report.get("machine", {})
    figures = report.get("figures", {})
    lines = ["# Bench", "",
             "Every figure measured in one run on one machine (`make bench`). " + report.get("inputs_note", ""), "",
             "Machine: " + ", ".join(f"{k} {v}" for k, v in machine.items()) + ".", "",
             *figures_table(figures), ""]
    details = {key: {k: v for k, v in found.items() if k not in ("value", "target", "met", "note", "error")}
               for key, found in figures.items()}
    lines += ["## Details", ""] + [f"- `{key}`: {cell_dict(found)}" for key, found in details.items() if found] + [""]
    scaling = report.get("scaling", {})
    lines += ["## Scaling", ""]
    if scaling.get("rows"):
        lines += [*scaling_table(scaling["rows"]), "", scaling.get("summary", ""), ""]
    else:
        lines += [f"not measured: {scaling.get('error', 'skipped')}", ""]
    lines += ["## GPU", "", report.get("gpu_note", "not measured"), ""]
    missed = {key: found for key, found in figures.items() if found.get("met") is False}
    if missed:
        lines += ["## Missed targets: where the time goes", ""]
        for key, found in missed.items():
            lines += [f"### `{key}`: {cell(found.get('value'))} against {found['target']}", "",
                      gap_sentence(found), ""]
            profile = report.get("profiles", {}).get(profile_kind(key))
            if profile:
                lines += ["```", profile.rstrip(), "```", ""]
    return "\n".join(lines).rstrip() + "\n"


def cell_dict(found: Mapping[str, Any]) -> str:
    return ", ".join(f"{k} {cell(v) if not isinstance(v, (dict, list)) else v}" for k, v in found.items())


def gap_sentence(found: Mapping[str, Any]) -> str:
    """The gap stated plainly: how far the value is from its target, as a factor."""
    value, (symbol, bound) = found["value"], found["target"].split()
    bound = float(bound)
    if not value or not bound:
        return f"The value is {value}; the target is {found['target']}."
    factor = bound / value if symbol == ">=" else value / bound
    return f"Missed by a factor of {factor:.2f} ({value} where the target is {found['target']})."


def profile_kind(key: str) -> str:
    """Which profile explains a figure: training's torch.profiler table or generation's cProfile listing."""
    if key.startswith("train"):
        return "training"
    if key.startswith(("generation", "evaluate", "serve", "generate")):
        return "generation"
    return ""
