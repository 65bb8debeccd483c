"""What users see, in a real browser (headless Chromium through chromedriver). On a copy of the tiny pipeline: a
three-trial sweep, a promotion to `champion`, `make report`'s page and `dvc plots show`; then the MLflow UI on
loopback over the copy's store. Each page is checked by its text (and the charts by their rendered elements) before
its screenshot is saved. `make screenshots` runs this module with REASONGEN_SCREENSHOTS=docs/img for README."""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import pytest
import yaml
from browser import Browser, find_chromium
from conftest import BIN, free_port, run, store_client
from test_promote_serve import NAME, promote
from test_sweep import TEST_SEARCH

from reasongen import team

pytestmark = pytest.mark.slow

# Three completed trials with different learning rates (test_sweep's search otherwise): their loss curves and
# objectives side by side.
SHOWCASE_SEARCH = yaml.safe_dump({
    **yaml.safe_load(TEST_SEARCH), "study_name": "showcase",
    "enqueue": [{"finetune.lr": lr} for lr in (0.01, 0.003, 0.0003)],
    "pruner": {"n_startup_trials": 100, "n_warmup_steps": 0},  # no pruning: every trial runs its epochs
    "space": {"finetune.lr": {"type": "float", "low": 1.0e-4, "high": 1.0e-2, "log": True}}})
SWEEP = ["hparams_search=showcase", "finetune.epochs=3", "trainer.log_every_n_steps=2", "generation.max_new_tokens=4"]
# The MLflow UI keeps its settings in the browser's local storage: the model-training view (not GenAI), the
# assistant panel closed, and per experiment the runs table's columns, filter and expanded rows.
UI_SETTINGS = {"mlflow.workflowType_v1": "machine_learning", "mlflow.assistant.panelOpen_v1": False,
               "mlflow.assistant.fab.autoOpenedOnFirstLoad_v1": True}
TABLE_STATE = {"searchFilter": "", "orderByKey": "attributes.start_time", "orderByAsc": False, "startTime": "ALL",
               "lifecycleFilter": "Active", "datasetsFilter": [], "modelVersionFilter": "All Runs",
               "selectedColumns": ["attributes.`Models`"], "columnOrder": [], "columnWidths": {}, "runsExpanded": {},
               "runsPinned": [], "runsHidden": [], "runsVisibilityMap": {}, "runsHiddenMode": "FIRST_10_RUNS",
               "viewMaximized": False, "runListHidden": False, "isAccordionReordered": False,
               "useGroupedValuesInCharts": True, "hideEmptyCharts": True, "groupBy": None, "groupsExpanded": {},
               "autoRefreshEnabled": False,
               "globalLineChartConfig": {"xAxisKey": "step", "lineSmoothness": 0, "selectedXAxisMetricKey": ""}}
COLUMNS = ["params.`peft.method`", "params.`finetune.lr`", "metrics.`bleu4`", "metrics.`rougeL`",
           "metrics.`coverage`", "metrics.`objective`", "attributes.`Models`"]


@pytest.fixture(scope="module")
def showcase(pipeline, tmp_path_factory):
    """(the pipeline copy, the MLflow UI's base URL, run ids) with the sweep, the champion, the report and the DVC
    plots made; the UI server is stopped afterwards."""
    if find_chromium() is None:
        pytest.skip("chromium and chromedriver are not installed: apt-get install chromium chromium-driver "
                    "(make screenshots installs them)")
    work = tmp_path_factory.mktemp("showcase") / "repo"
    shutil.copytree(pipeline[0], work, symlinks=True)  # the other tests keep their own registry and outputs
    env = {**pipeline[1], "PYTHONPATH": str(work / "src")}
    (work / "conf/hparams_search/showcase.yaml").write_text(SHOWCASE_SEARCH)
    run([sys.executable, "-m", "reasongen", "sweep", *SWEEP], work, env)
    registered = json.loads((work / "outputs/register/registered.json").read_text())
    version = registered["version"]
    result = promote(work, env, version)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    run([sys.executable, "-m", "reasongen.report"], work, env)
    run([str(BIN / "dvc"), "plots", "show"], work, env)
    client = store_client(work)
    experiment = client.get_experiment_by_name("reasongen-adgen").experiment_id
    (sweep,) = client.search_runs([experiment], "tags.sweep = 'showcase'")
    (trial,) = client.search_runs([experiment], f"tags.mlflow.parentRunId = '{sweep.info.run_id}' and "
                                                "tags.optuna_trial = '0'")
    port = free_port()
    server = team.start_mlflow(f"sqlite:///{work / 'mlflow.db'}", work / "ui-artifacts", port, work / "ui.log")
    try:
        yield work, f"http://127.0.0.1:{port}", {"experiment": experiment, "sweep": sweep.info.run_id,
                                                 "trial": trial.info.run_id, "version": str(version),
                                                 "pipeline": registered["run_id"]}
    finally:
        team.stop_process_group(server.pid)


@pytest.fixture(scope="module")
def browser(showcase):
    with Browser(1600, 1000) as session:
        yield session


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    """Where screenshots go: $REASONGEN_SCREENSHOTS (make screenshots: docs/img), else a temporary folder."""
    configured = os.environ.get("REASONGEN_SCREENSHOTS")
    return Path(configured) if configured else tmp_path_factory.mktemp("screenshots")


def open_ui(browser: Browser, base: str, route: str, experiment: str, **table: object) -> None:
    """The UI at `#/route` with UI_SETTINGS and the experiment's runs-table state (TABLE_STATE updated by table),
    written to local storage from a page outside the app, so that the app reads them when it starts."""
    browser.open(f"{base}/health")
    settings = {**{key: json.dumps(value) for key, value in UI_SETTINGS.items()},
                f'MLflowLocalStorage-1.1-ExperimentPage-["{experiment}"]-ReactComponentState':
                    json.dumps({**TABLE_STATE, **table})}
    browser.script("for (const [key, value] of Object.entries(arguments[0])) localStorage.setItem(key, value);",
                   settings)
    browser.open(f"{base}/#/{route}")


def search_charts(browser: Browser, pattern: str) -> None:
    """Type a pattern into the page's chart search box (charts below the fold are drawn only when scrolled to)."""
    browser.script("""
        const input = [...document.querySelectorAll('input')].find(i => (i.placeholder || '').includes('chart'));
        Object.getOwnPropertyDescriptor(HTMLInputElement.prototype, 'value').set.call(input, arguments[0]);
        input.dispatchEvent(new Event('input', {bubbles: true}));""", pattern)


def test_run_table_shows_params_and_metrics(showcase, browser, shots) -> None:
    work, base, ids = showcase
    open_ui(browser, base, f"experiments/{ids['experiment']}/runs", ids["experiment"], selectedColumns=COLUMNS,
            runsExpanded={ids["sweep"]: True, ids["pipeline"]: True})
    shown = browser.wait_for("gpt2-lora-", "base_model", "finetune", "sweep-showcase", "trial-0", "trial-2",
                             "Parameters", "Metrics", "peft.method", "finetune.lr", "bleu4", "objective",
                             f"v{ids['version']}")
    assert "0.003" in shown and "lora" in shown  # a trial's learning rate, the pipeline run's PEFT method
    browser.screenshot(shots / "mlflow-runs.png")


def test_chart_view_compares_the_sweep_trials(showcase, browser, shots) -> None:
    work, base, ids = showcase
    browser.resize(1600, 1250)
    open_ui(browser, base, f"experiments/{ids['experiment']}/runs?compareRunsMode=CHART", ids["experiment"],
            searchFilter="attributes.run_name LIKE 'trial-%'", runsExpanded={ids["sweep"]: True},
            runsVisibilityMap={ids["sweep"]: False})
    browser.wait_for("trial-0", "trial-1", "trial-2", "val/bleu4")
    search_charts(browser, "^(train_loss|val_loss|objective)$")
    shown = browser.wait_for("objective", "train_loss", "val_loss", "trial-0 (val_loss)", "trial-2 (val_loss)")
    assert "val/bleu4" not in shown and "neg_val_loss" not in shown  # the chart search: losses and objective
    browser.screenshot(shots / "mlflow-sweep-charts.png")
    browser.resize(1600, 1000)


def test_registered_model_page_shows_the_champion(showcase, browser, shots) -> None:
    work, base, ids = showcase
    open_ui(browser, base, f"models/{NAME}", ids["experiment"])
    shown = browser.wait_for(NAME, f"Version {ids['version']}", "champion", "source_run_id", "git_commit")
    assert "@ champion" in " ".join(shown.split())  # the alias tag (its space is a no-break space)
    browser.screenshot(shots / "mlflow-model-champion.png")


def test_a_trial_run_shows_its_loss_curves(showcase, browser, shots) -> None:
    work, base, ids = showcase
    history = store_client(work).get_metric_history(ids["trial"], "val_loss")
    assert len(history) == 3  # one point per epoch, logged while the trial trained
    open_ui(browser, base, f"experiments/{ids['experiment']}/runs/{ids['trial']}/model-metrics", ids["experiment"])
    # first, the val/ section
    browser.wait_for("trial-0", "Model metrics", "System metrics", "attribute_hallucination_rate")
    search_charts(browser, "^(train_loss|val_loss)$")
    shown = browser.wait_for("train_loss", "val_loss")
    assert "attribute_hallucination_rate" not in shown
    assert browser.script("return document.querySelectorAll('.js-plotly-plot, svg.main-svg').length") >= 2
    browser.screenshot(shots / "mlflow-trial-curves.png")


def svg_texts(browser: Browser) -> list[str]:
    """The texts vega drew as SVG (titles, axes, legends): charts of the report, rendered in the page."""
    return browser.script("return [...document.querySelectorAll('.vega-embed svg text')].map(t => t.textContent)")


def drawn_canvases(browser: Browser) -> int:
    """Canvases with at least one painted pixel: charts of `dvc plots show`, which vega draws on a canvas."""
    return browser.script("""
        return [...document.querySelectorAll('.vega-embed canvas')].filter(c => {
          const pixels = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
          for (let i = 3; i < pixels.length; i += 4) if (pixels[i] > 0) return true;
          return false;
        }).length;""")


def fetched_from_network(browser: Browser) -> list[str]:
    return browser.script("return performance.getEntriesByType('resource').map(e => e.name)"
                          ".filter(n => n.startsWith('http'))")


def test_report_renders_offline(showcase, browser, shots) -> None:
    work, _, _ = showcase
    browser.resize(1400, 3600)
    browser.open((work / "reports/index.html").as_uri())
    shown = browser.wait_for("Test metrics (Task A)", "Training curves", "Metrics across MLflow pipeline runs",
                             "Sweep trials", "Sample products", "showcase")
    plots = browser.script("return document.querySelectorAll('.plot').length")
    drawn = browser.script("return document.querySelectorAll('.plot svg.marks').length")
    assert plots >= 6 and drawn == plots
    texts = svg_texts(browser)
    assert {"Fine-tuning loss", "Aspect-control accuracy by requested aspect (%)", "model", "retrieval",
            "template"} <= set(texts)  # chart titles, and the grouped bars' legend: one series per system
    assert browser.script("return document.querySelectorAll('tr.flagged td.notes').length") > 0
    assert "missing:" in shown or "invented:" in shown or "not met" in shown  # what the flags say
    assert fetched_from_network(browser) == []
    browser.screenshot(shots / "report.png")
    browser.resize(1400, 1100)
    browser.script("document.querySelector('.product').scrollIntoView()")  # the sample products, up close
    browser.screenshot(shots / "report-samples.png")
    browser.resize(1600, 1000)


def test_dvc_plots_render_offline(showcase, browser, shots) -> None:
    work, _, _ = showcase
    browser.resize(1400, 2000)
    browser.open((work / "dvc_plots/index.html").as_uri())
    browser.wait_for("smooth")  # the loss charts' smoothing slider, drawn by vega once the page ran its scripts
    ids = set(browser.script("return [...document.querySelectorAll('div[id]')].map(d => d.id)"))
    assert {"Aspect-control_accuracy_by_requested_aspect____", "Fine-tuning_loss"} <= ids  # titles, as DVC ids
    charts = browser.script("return document.querySelectorAll('.vega-embed').length")
    assert charts >= 6 and drawn_canvases(browser) == charts
    assert fetched_from_network(browser) == []
    browser.screenshot(shots / "dvc-plots.png")
    browser.resize(1600, 1000)
