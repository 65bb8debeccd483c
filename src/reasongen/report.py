"""`make report`: one self-contained page, reports/index.html, that opens offline: the test metrics, the pipeline's
DVC plots (training curves, control accuracy per requested aspect and length bucket, lengths), the metrics across
DVC experiments and MLflow runs, and sample test products with their flagged problems highlighted.

    python -m reasongen.report [--output reports/index.html]
    python -m reasongen.report template vega.min.js vega-lite.min.js vega-embed.min.js --output .dvc/plots/offline.html

The second writes the HTML template of `dvc plots show` with the scripts inlined (`make vega-template`); the report
takes its scripts from that template, so both pages render with the same vega and no network."""

from __future__ import annotations

import argparse
import html
import json
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from reasongen.adgen import sample_report
from reasongen.adgen.evaluation import TABLE_METRICS
from reasongen.adgen.generator import rule_checks
from reasongen.config import load_params
from reasongen.io import read_json, read_jsonl
from reasongen.modeling.model_io import META_FILE
from reasongen.paths import repo_root
from reasongen.text.attributes import parse_content

SCRIPTS_START, SCRIPTS_END = "<!-- vega -->", "<!-- /vega -->"
HEADLINE = ("bleu4", "rougeL", "coverage", "hallucination_rate", "violation_rate", "aspect_accuracy",
            "length_accuracy", "distinct2")
TASK_B_HEADLINE = ("bleu4", "rougeL", "usr", "fmr", "fcr", "div")
PARAMS = ("peft.method", "finetune.epochs", "finetune.lr")  # the params the tables of runs show
STYLE = """
body { font: 14px/1.5 system-ui, "Noto Sans CJK SC", sans-serif; margin: 2em auto; max-width: 1250px; color: #222; }
h1 { margin-bottom: 0; } h2 { border-bottom: 1px solid #ddd; margin-top: 2em; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; } td, th { border: 1px solid #ddd; padding: 3px 8px; }
th { background: #f4f4f4; text-align: left; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
.wide { overflow-x: auto; } .plots { display: flex; flex-wrap: wrap; gap: 1.5em; } .note { color: #666; }
.product td.text { max-width: 720px; } tr.flagged td.notes { background: #fff1e0; color: #8a3b00; }
mark.violation { background: #ffb3b3; font-weight: bold; } del.hallucination { background: #ffe08a; color: #7a4d00; }
"""


def vega_scripts(root: Path) -> str:
    """The inlined vega, vega-lite and vega-embed of the DVC plots template that .dvc/config names."""
    from dvc.repo import Repo

    with Repo(str(root)) as repo:
        name = repo.config.get("plots", {}).get("html_template")
        if not name:
            raise FileNotFoundError(f"{root}/.dvc/config sets no plots.html_template (make vega-template)")
        template = Path(repo.dvc_dir) / name
    text = template.read_text(encoding="utf-8")
    start, end = text.find(SCRIPTS_START), text.find(SCRIPTS_END)
    if start < 0 or end < 0:
        raise ValueError(f"{template}: no inlined scripts between {SCRIPTS_START} and {SCRIPTS_END}")
    return text[start:end + len(SCRIPTS_END)]


def plot_specs(root: Path) -> list[tuple[str, dict[str, Any]]]:
    """(title, vega-lite spec) of every plot in dvc.yaml that has data, filled by DVC as `dvc plots show` does."""
    from dvc.render.match import match_defs_renderers
    from dvc.repo import Repo

    with Repo(str(root)) as repo:
        found = match_defs_renderers(data=repo.plots.show(), templates_dir=repo.plots.templates_dir)
    return [(item.renderer.name, item.renderer.get_filled_template()) for item in found
            if item.renderer.TYPE == "vega" and item.renderer.datapoints]


def experiments(root: Path) -> list[dict[str, Any]]:
    """The workspace and DVC experiments of HEAD (`dvc exp show`): name, revision, params and headline metrics."""
    import dvc.api
    from dvc.exceptions import DvcException

    try:
        records = dvc.api.exp_show(repo=str(root))
    except DvcException as error:  # e.g. a checkout without commits
        print(f"report: no DVC experiments ({error})")
        return []
    return [{"experiment": record.get("Experiment") or record.get("rev"), "rev": record.get("rev"),
             "created": record.get("Created"), "state": record.get("State"),
             **{name: column(record, name) for name in PARAMS},
             **{metric: column(record, f"model.{metric}") for metric in HEADLINE}}
            for record in records]


def column(record: Mapping[str, Any], key: str) -> Any:
    """A value of a `dvc exp show` record, whether or not DVC prefixed the key with its file (`file:key`)."""
    if key in record:
        return record[key]
    return next((value for name, value in record.items() if name.endswith(f":{key}")), None)


def mlflow_runs(experiment: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(pipeline runs, sweep trials) of the experiment in the MLflow store, newest first; none without a store."""
    import mlflow

    from reasongen.runs import configure, tracking_uri

    uri = tracking_uri()
    if uri.startswith("sqlite:///") and not Path(uri.removeprefix("sqlite:///")).exists():
        return [], []
    configure()
    client = mlflow.MlflowClient()
    found = client.get_experiment_by_name(experiment)
    if found is None:
        return [], []
    pipeline, trials = [], []
    for run in client.search_runs([found.experiment_id], max_results=500, order_by=["attributes.start_time DESC"]):
        data, info = run.data, run.info
        started = time.strftime("%Y-%m-%d %H:%M", time.localtime(info.start_time / 1000))
        if "bleu4" in data.metrics:
            pipeline.append({"run": info.run_name, "started": started, "status": info.status,
                             **{name: data.params.get(name) for name in PARAMS},
                             **{metric: data.metrics.get(metric) for metric in HEADLINE}})
        elif "optuna_trial" in data.tags:
            val_loss = [point.value for point in client.get_metric_history(info.run_id, "val_loss")]
            trials.append({"study": data.tags.get("optuna_study"), "trial": data.tags["optuna_trial"],
                           "state": data.tags.get("optuna_state", info.status),
                           "objective": data.metrics.get("objective"), "best val_loss": min(val_loss, default=None),
                           **{f"val/{m}": data.metrics.get(f"val/{m}") for m in ("bleu4", "rougeL", "coverage")}})
    return pipeline, trials


def table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str] | None = None) -> str:
    """An HTML table of dicts: metrics right-aligned with two decimals, the PARAMS columns as they are."""
    if not rows:
        return '<p class="note">none yet</p>'
    columns = list(columns or rows[0])

    def cell(name: str, value: Any) -> str:
        if isinstance(value, float) and name not in PARAMS:
            return f'<td class="num">{value:.2f}</td>'
        if isinstance(value, int | float) and not isinstance(value, bool):
            return f'<td class="num">{value}</td>'
        return f"<td>{html.escape('' if value is None else str(value))}</td>"

    head = "".join(f"<th>{html.escape(name)}</th>" for name in columns)
    body = "".join("<tr>" + "".join(cell(name, row.get(name)) for name in columns) + "</tr>" for row in rows)
    return f'<div class="wide"><table><tr>{head}</tr>{body}</table></div>'


def metrics_table(path: Path, metrics: Sequence[str]) -> str:
    """The systems x metrics of an evaluate stage's metrics.json."""
    if not path.exists():
        return f'<p class="note">{html.escape(str(path))} is not there yet (dvc repro)</p>'
    scores = read_json(path)
    rows = [{"system": system, **{m: values.get(m) for m in metrics}} for system, values in scores.items()
            if isinstance(values, dict) and any(m in values for m in metrics)]
    return table(rows, ["system", *metrics])


def plots_section(specs: Iterable[tuple[str, dict[str, Any]]]) -> str:
    parts = []
    for number, (title, spec) in enumerate(specs):
        payload = json.dumps(spec, ensure_ascii=False).replace("</", "<\\/")
        parts.append(f'<figure><div id="plot{number}" class="plot" data-title="{html.escape(title)}"></div>'
                     f"<script>vegaEmbed('#plot{number}', {payload}, {{actions: false, renderer: 'svg'}});</script>"
                     "</figure>")
    return '<div class="plots">' + "".join(parts) + "</div>" if parts else '<p class="note">no plot data yet</p>'


def samples_section(root: Path, cfg: Any) -> str:
    """The sample report's products (same seed and count) as HTML: every system's text with advertising-law words
    and hallucinated values highlighted, and the flagged problems beside it."""
    predictions = root / "outputs/evaluate/predictions.jsonl"
    meta = root / "outputs/finetune/model" / META_FILE
    if not predictions.exists() or not meta.exists():
        return '<p class="note">no predictions yet (dvc repro evaluate)</p>'
    rows = read_jsonl(predictions)
    checks = rule_checks(read_json(meta), dict(cfg.generation))
    systems = [name for name in sample_report.SYSTEMS if name in rows[0]]
    parts = []
    for number, index in enumerate(sample_report.sample_indices(len(rows), cfg.evaluate.sample_rows, cfg.seed), 1):
        row = rows[index]
        pairs = parse_content(row["content"])
        controls = ", ".join(f"{name}: {row[name]}" for name in ("aspect", "length_bucket") if row.get(name))
        lines = []
        for system in ("reference", *systems):
            found = sample_report.notes(row[system], row, pairs, checks)
            lines.append(f'<tr class="{"ok" if found == "ok" else "flagged"}"><th>{system}</th>'
                         f'<td class="text">{sample_report.mark(row[system], pairs, checks, sample_report.HTML)}</td>'
                         f'<td class="notes">{html.escape(found)}</td></tr>')
        parts.append(f'<div class="product"><h3>{number}. <code>{html.escape(row["content"])}</code></h3>'
                     f"<p>controls: {html.escape(controls or 'none')}</p>"
                     f"<table><tr><th>system</th><th>text</th><th>notes</th></tr>{''.join(lines)}</table></div>")
    legend = ('<p class="note"><mark class="violation">advertising-law word</mark> · '
              '<del class="hallucination">value that contradicts the input</del> · rows whose notes are not '
              '<q>ok</q> are flagged.</p>')
    return legend + "".join(parts)


def render(root: Path) -> str:
    """The whole page for the checkout at root."""
    cfg = load_params(root / "params.yaml")
    pipeline, trials = mlflow_runs(cfg.tracking.experiment)
    exps = experiments(root)
    sections = [
        ("Test metrics (Task A)", metrics_table(root / "outputs/evaluate/metrics.json", TABLE_METRICS)),
        ("Test metrics (Task B)", metrics_table(root / "outputs/explain/evaluate/metrics.json", TASK_B_HEADLINE)),
        ("Training curves, control accuracy per aspect and length bucket", plots_section(plot_specs(root))),
        ("Metrics across DVC experiments", table(exps)),
        (f"Metrics across MLflow pipeline runs ({cfg.tracking.experiment})", table(pipeline)),
        ("Sweep trials (validation split)", table(trials)),
        ("Sample products", samples_section(root, cfg)),
    ]
    body = "".join(f"<h2>{html.escape(title)}</h2>{content}" for title, content in sections)
    return (f'<!DOCTYPE html><html><head><meta charset="utf-8"><title>reasongen report</title>'
            f"<style>{STYLE}</style>{vega_scripts(root)}</head><body><h1>reasongen report</h1>"
            f'<p class="note">{html.escape(str(root))}, {time.strftime("%Y-%m-%d %H:%M")}; self-contained: opens '
            f"offline.</p>{body}</body></html>")


def template(scripts: Sequence[Path]) -> str:
    """The page template of `dvc plots show` (placeholders {plot_divs}, {refresh_tag}) with the scripts inlined
    between the markers (no {scripts} placeholder: DVC would add its CDN links there)."""
    names = []
    for script in scripts:
        package = script.parent.parent / "package.json"
        names.append(f"{read_json(package)['name']}@{read_json(package)['version']}" if package.exists()
                     else script.name)
    inlined = "\n".join(f"<script>\n{strip_source_map(script.read_text(encoding='utf-8'))}\n</script>"
                        for script in scripts)
    return (f'<!DOCTYPE html>\n<html>\n<head>\n<meta charset="utf-8">\n{{refresh_tag}}\n<title>DVC plots</title>\n'
            f"<!-- {', '.join(names)} from the npm registry, inlined so that the page renders offline "
            f"(make vega-template) -->\n{SCRIPTS_START}\n{inlined}\n{SCRIPTS_END}\n"
            "<style>body { font-family: system-ui, sans-serif; } table { border-spacing: 15px; }</style>\n"
            "</head>\n<body>\n{plot_divs}\n</body>\n</html>\n")


def strip_source_map(script: str) -> str:
    """A script without its `//# sourceMappingURL=` line (the map is not inlined: nothing to fetch)."""
    return "\n".join(line for line in script.splitlines() if not line.startswith("//# sourceMappingURL="))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m reasongen.report", description=__doc__.split("\n\n")[0])
    parser.add_argument("scripts", nargs="*", type=Path,
                        help="with `template` first: the scripts to inline (vega, vega-lite, vega-embed builds)")
    parser.add_argument("--output", type=Path, default=None,
                        help="the page (default reports/index.html) or, with `template`, the template file")
    args = parser.parse_args(argv)
    if args.scripts and str(args.scripts[0]) == "template":
        output = args.output or Path(".dvc/plots/offline.html")
        output.write_text(template(args.scripts[1:]), encoding="utf-8")
    elif args.scripts:
        parser.error("unexpected arguments (did you mean `template SCRIPT...`?)")
    else:
        output = args.output or repo_root() / "reports/index.html"
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(render(repo_root()), encoding="utf-8")
    print(f"wrote {output} ({output.stat().st_size / 1e6:.1f} MB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
