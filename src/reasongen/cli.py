"""The `reasongen` command: pipeline stages for dvc.yaml, and generate / evaluate / params for people."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

STAGES = ("prepare", "tokenizer", "base_model", "finetune", "evaluate", "register")

EPILOG = """examples:
  reasongen params                                   # params.yaml from conf/ (defaults)
  reasongen params peft=ia3 finetune.lr=1e-3          # ... with Hydra overrides
  reasongen data                                     # materialise the raw data (data.source) into data
  reasongen stage finetune                           # run one DVC stage by hand (dvc repro does this)
  reasongen generate --model models:/reasongen-adgen/latest --input in.jsonl --output out.jsonl
  reasongen generate --model outputs/finetune/model --input in.jsonl --output out.jsonl --aspect 显瘦 --length short
  reasongen evaluate --predictions out.jsonl --references in.jsonl
  reasongen sweep hparams_search.n_trials=20 'hparams_search.space.peft.choices=[lora,ia3]'
  reasongen promote promote.candidate=3
"""


def offline_defaults() -> None:
    """No hub and no telemetry unless the user says otherwise (without these, missing names retry for ~46 s)."""
    for name, value in (("HF_HUB_OFFLINE", "1"), ("TRANSFORMERS_OFFLINE", "1"), ("HF_DATASETS_OFFLINE", "1"),
                        ("HF_EVALUATE_OFFLINE", "1"), ("MLFLOW_DISABLE_TELEMETRY", "true"),
                        ("TOKENIZERS_PARALLELISM", "false")):
        os.environ.setdefault(name, value)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="reasongen",
        description="Controllable recommendation-reason generation: product attributes (+ controls) -> text.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    params = commands.add_parser(
        "params", help="compose conf/ (+ Hydra overrides) into params.yaml",
        description="Compose conf/config.yaml with Hydra overrides and write params.yaml, which dvc.yaml reads.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    params.add_argument("overrides", nargs="*",
                        help="Hydra overrides, e.g. peft=lora finetune.epochs=2 experiment=tiny")
    params.add_argument("--output", default="params.yaml", help="file to write (default: params.yaml)")
    params.add_argument("--check", action="store_true", help="exit 1 if the file differs from what conf/ composes")

    data = commands.add_parser("data", help="materialise the raw data selected by data.source into data/",
                               description="Copy the configured raw data (shared copy, your JSON Lines file, or a hub "
                               "dataset) to data/advertisegen.jsonl; data.dvc then pins its hash.")
    data.add_argument("--params", default="params.yaml")
    data.add_argument("--output", default="data/advertisegen.jsonl")

    stage = commands.add_parser("stage", help="run one pipeline stage (what dvc.yaml calls)",
                                description="Run one DVC stage with params.yaml: " + ", ".join(STAGES))
    stage.add_argument("name", choices=STAGES)
    stage.add_argument("--params", default="params.yaml", help="params file (default: params.yaml)")
    stage.add_argument("overrides", nargs="*", help="dotlist overrides on top of params, e.g. finetune.epochs=1")

    generate = commands.add_parser(
        "generate", help="write a text for each product in a JSON Lines file",
        description="Each input line is AdvertiseGen-style: {\"content\": \"类型#裙*颜色#蓝色*...\"} plus optional "
        "controls aspect (e.g. 显瘦), length_bucket (short|medium|long), keywords (list); other fields are ignored. "
        "Each output line is {\"prediction\": \"...\"}, in input order.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    generate.add_argument("--model", required=True,
                          help="models:/reasongen-adgen/latest, models:/reasongen-adgen@champion, runs:/..., "
                          "or a model folder (outputs/finetune/model)")
    generate.add_argument("--input", required=True, type=Path)
    generate.add_argument("--output", required=True, type=Path)
    generate.add_argument("--aspect", help="selling-point aspect for rows that give none")
    generate.add_argument("--length", choices=("short", "medium", "long"), help="length bucket for rows that give none")
    generate.add_argument("--no-controls", action="store_true", help="ignore controls in the input")
    generate.add_argument("--greedy", action="store_true", help="greedy decoding instead of the model's saved settings")
    generate.add_argument("--batch-size", type=int, help="generation batch size")

    evaluate = commands.add_parser(
        "evaluate", help="score predictions against AdvertiseGen-format references",
        description="Scores {\"prediction\"} lines against references ({\"content\", \"summary\"}, optional "
        "controls) line by line: BLEU-4, ROUGE-1/2/L, distinct-n, coverage, hallucination, control accuracy, "
        "advertising-law violations. Prints the metrics and writes them as JSON.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    evaluate.add_argument("--predictions", required=True, type=Path)
    evaluate.add_argument("--references", required=True, type=Path)
    evaluate.add_argument("--output", type=Path, help="metrics JSON (default: <predictions>.metrics.json)")
    evaluate.add_argument("--train", type=Path, default=Path("outputs/prepare/train.jsonl"),
                          help="training rows for the attribute-value lexicon of the hallucination metric "
                          "(default: outputs/prepare/train.jsonl; the references are used if it is missing)")
    evaluate.add_argument("--params", default="params.yaml", help="for length bounds and hallucination keys")
    sweep = commands.add_parser(
        "sweep", help="Optuna search over Hydra overrides (resumable, failure-tolerant, tracked in MLflow)",
        description="Runs the study conf/hparams_search/default.yaml on top of the pipeline's base model "
        "(run `dvc repro base_model` first; `make sweep` does). Running it again continues the same study up to "
        "hparams_search.n_trials. Trials are scored on the validation split.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    sweep.add_argument("overrides", nargs="*", help="Hydra overrides for every trial and for the search itself")
    sweep.add_argument("--workdir", type=Path, default=Path("outputs/sweep"), help="trial outputs")

    promote = commands.add_parser(
        "promote", help="gate a registered version against the champion and move the alias",
        description="Scores promote.candidate (default: the latest version) and the current champion on the test "
        "split; if the candidate passes every gate in conf/promote/, alias champion moves to it and the old "
        "champion keeps `previous`; otherwise it is tagged rejected with the reasons. Exit code 1 on rejection.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    promote.add_argument("--params", default="params.yaml")
    promote.add_argument("overrides", nargs="*", help="dotlist overrides, e.g. promote.candidate=3 promote.tolerance=0")
    return parser


def main(argv: list[str] | None = None) -> int:
    offline_defaults()
    args = build_parser().parse_args(argv)
    from reasongen import commands

    return commands.dispatch(args)
