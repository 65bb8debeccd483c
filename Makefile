# Two commands on a fresh machine: `make run` (the pipeline end to end) and `make test`.
# Both create .venv from requirements.lock when it is missing or older than the lock / pyproject.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export HF_HUB_OFFLINE ?= 1
export TRANSFORMERS_OFFLINE ?= 1
export HF_DATASETS_OFFLINE ?= 1
export HF_EVALUATE_OFFLINE ?= 1
export MLFLOW_DISABLE_TELEMETRY ?= true
# torch threads sleep while they wait: with another job on the cores, spinning ones slowed decoding 3-8x (threads.py)
export OMP_WAIT_POLICY ?= PASSIVE
export PATH := $(CURDIR)/$(BIN):$(PATH)

.PHONY: help install params data run repro test test-slow lint audit metrics plots report vega-template ui screenshots \
	sweep promote serve team-up team-down bench clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-13s %s\n", $$1, $$2}'

$(STAMP): requirements.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -r requirements.lock
	$(BIN)/pip install -q --no-deps -e .
	touch $(STAMP)

install: $(STAMP)  ## create .venv with the pinned dependencies

# pip-audit in a venv of its own: it audits requirements.lock without touching the project's environment
AUDIT := .venv-audit
AUDIT_STAMP := $(AUDIT)/.installed
$(AUDIT_STAMP):
	$(PYTHON) -m venv $(AUDIT)
	$(AUDIT)/bin/pip install -q pip-audit
	touch $(AUDIT_STAMP)

TEAM_STAMP := $(VENV)/.team-installed
$(TEAM_STAMP): $(STAMP)
	$(BIN)/pip install -q -e ".[team]"
	touch $(TEAM_STAMP)

params: $(STAMP)  ## regenerate params.yaml from conf/ (ARGS="peft=ia3 finetune.lr=1e-3")
	$(BIN)/reasongen params $(ARGS)

data: $(STAMP)  ## materialise the raw data (data.source in params.yaml) and pin it in data.dvc
	$(BIN)/reasongen data
	$(BIN)/dvc add -q data

run: data  ## the whole pipeline: dvc repro (prepare -> ... -> register), then promote the new version if it passes
	$(BIN)/dvc repro
	@echo "test-split metrics (outputs/evaluate/metrics.json; all of them: make metrics):"
	@cat outputs/evaluate/table.md
	$(BIN)/reasongen promote || echo "the new version stays a candidate: it failed a promotion gate (see above)"

repro: run

test: $(STAMP)  ## the test suite (offline, CPU; without the slow tests)
	$(BIN)/python -m pytest -q $(ARGS)

test-slow: $(TEAM_STAMP) $(AUDIT_STAMP)  ## the slow tests: DDP, PostgreSQL + MLflow server, kills, serving load, pip-audit, DVC grid, browser
	$(BIN)/python -m pytest -q -m slow $(ARGS)

lint: $(STAMP)  ## ruff
	$(BIN)/ruff check src tests

audit: $(AUDIT_STAMP)  ## pip-audit of requirements.lock (needs PyPI's JSON API or OSV; docs/reliability.md)
	$(AUDIT)/bin/pip-audit -r requirements.lock --no-deps --disable-pip

metrics: $(STAMP)  ## dvc metrics show (model and baselines; prepare and finetune summaries)
	$(BIN)/dvc metrics show outputs/evaluate/metrics.json
	$(BIN)/dvc metrics show outputs/prepare/stats.json outputs/finetune/summary.json

plots: $(STAMP)  ## dvc plots show (dvc_plots/index.html; vega inlined: renders offline)
	$(BIN)/dvc plots show

report: $(STAMP)  ## reports/index.html: curves, metrics across experiments, control accuracy, flagged samples (offline)
	$(BIN)/python -m reasongen.report

VEGA := vega@5 vega-lite@5 vega-embed@6
vega-template: $(STAMP)  ## rebuild .dvc/plots/offline.html: vega, vega-lite, vega-embed from npm, inlined
	rm -rf .vega && mkdir .vega && cd .vega && npm pack --silent $(VEGA) >/dev/null && \
		for f in *.tgz; do mkdir "$${f%.tgz}" && tar xzf "$$f" -C "$${f%.tgz}"; done
	$(BIN)/python -m reasongen.report template .vega/vega-[0-9]*/package/build/vega.min.js \
		.vega/vega-lite-*/package/build/vega-lite.min.js .vega/vega-embed-*/package/build/vega-embed.min.js \
		--output .dvc/plots/offline.html
	rm -rf .vega

ui: $(STAMP)  ## the MLflow UI on http://127.0.0.1:5000 over the embedded sqlite store
	@echo "open http://127.0.0.1:5000/#/experiments?workflowType=machine_learning (training runs, not GenAI)"
	MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false $(BIN)/mlflow ui --backend-store-uri sqlite:///mlflow.db \
		--default-artifact-root ./mlartifacts --host 127.0.0.1 --port 5000

# Debian packages of the browser checks; as root, or through sudo
BROWSER := chromium chromium-driver fonts-noto-cjk
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
screenshots: $(STAMP)  ## docs/img/*.png from headless Chromium (apt-get installs it if missing): MLflow UI, report, plots
	@command -v chromedriver >/dev/null || { echo "installing $(BROWSER)"; \
		$(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq $(BROWSER); }
	REASONGEN_SCREENSHOTS=$(CURDIR)/docs/img $(BIN)/python -m pytest -q -m slow -p no:randomly tests/test_browser.py

sweep: data  ## Optuna search (resumable): make sweep ARGS="hparams_search.n_trials=20 finetune.epochs=1"
	$(BIN)/dvc repro base_model
	$(BIN)/reasongen sweep $(ARGS)

promote: $(STAMP)  ## gate the latest registered version against the champion; move the alias if it passes
	$(BIN)/reasongen promote $(ARGS)

SERVE_PORT ?= 5001
serve: $(STAMP)  ## serve models:/reasongen-adgen@champion on http://127.0.0.1:$(SERVE_PORT)/invocations (with limits)
	MLFLOW_TRACKING_URI=$${MLFLOW_TRACKING_URI:-sqlite:///$(CURDIR)/mlflow.db} $(BIN)/reasongen serve \
		--model models:/reasongen-adgen@champion --host 127.0.0.1 --port $(SERVE_PORT) $(ARGS)

TEAM_PORT ?= 5000
team-up: $(TEAM_STAMP)  ## PostgreSQL + an MLflow server on http://127.0.0.1:$(TEAM_PORT) (prints how to use them)
	$(BIN)/python -m reasongen.team up --port $(TEAM_PORT)

team-down: $(STAMP)  ## stop the MLflow server of team-up (and PostgreSQL, if team-up started it)
	$(BIN)/python -m reasongen.team down

bench: $(STAMP)  ## reports/bench.{json,md}: speed figures against their targets, side by side in one run (~15 min)
	$(BIN)/python -m benchmarks.bench $(ARGS)

clean:  ## remove pipeline outputs (not the venv, the MLflow store or the DVC cache)
	rm -rf outputs checkpoints dvc_plots reports
