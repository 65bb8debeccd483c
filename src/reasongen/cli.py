"""The `reasongen` command: pipeline stages for dvc.yaml, and generate / evaluate / params for people."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from reasongen import threads

STAGES = ("prepare", "tokenizer", "base_model", "finetune", "evaluate", "register",
          "explain_prepare", "explain_tokenizer", "explain_finetune", "explain_soft_prompt", "explain_evaluate",
          "explain_register")

EPILOG = """examples:
  reasongen params                                   # params.yaml from conf/ (defaults)
  reasongen params peft=ia3 finetune.lr=1e-3          # ... with Hydra overrides
  reasongen data                                     # materialise the raw data (data.source) into data
  reasongen stage finetune                           # run one DVC stage by hand (dvc repro does this)
  reasongen generate --model models:/reasongen-adgen/latest --input in.jsonl --output out.jsonl
  reasongen generate --model outputs/finetune/model --input in.jsonl --output out.jsonl --aspect 显瘦 --length short
  reasongen evaluate --predictions out.jsonl --references in.jsonl
  reasongen explain --model models:/reasongen-explain/latest --input pairs.jsonl --output out.jsonl
  reasongen explain --model outputs/explain/finetune/model --input pairs.jsonl --output out.jsonl --no-feature
  reasongen sweep hparams_search.n_trials=20 'hparams_search.space.peft.choices=[lora,ia3]'
  reasongen promote promote.candidate=3
  reasongen serve --model models:/reasongen-adgen@champion --port 5001 serving.max_rows=8
"""


def offline_defaults() -> None:
    """No hub and no telemetry unless the user says otherwise (without these, missing names retry for ~46 s)."""
    for name, value in (("HF_HUB_OFFLINE", "1"), ("TRANSFORMERS_OFFLINE", "1"), ("HF_DATASETS_OFFLINE", "1"),
                        ("HF_EVALUATE_OFFLINE", "1"), ("MLFLOW_DISABLE_TELEMETRY", "true"),
                        ("TOKENIZERS_PARALLELISM", "false")):
        os.environ.setdefault(name, value)
    threads.passive_waiting()


def positive_int(text: str) -> int:
    """argparse type: an integer of at least 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is not at least 1")
    return value


def add_decoding_flags(parser: argparse.ArgumentParser) -> None:
    """What every generating command takes: batch size, where a model folder's decoding comes from, trust."""
    parser.add_argument("--batch-size", type=positive_int, help="generation batch size")
    parser.add_argument("--params", default="params.yaml",
                        help="decoding settings for a model folder (a registered model carries its own)")
    add_trust_flag(parser)


def add_trust_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--trust-remote-code", action="store_true",
                        help="let the model folder's own Python code run (transformers' trust_remote_code); only "
                        "for models you trust: without it, code shipped inside a model is never run")


def add_command(commands, name: str, summary: str, description: str) -> argparse.ArgumentParser:
    """A subcommand whose --help shows its description and the examples."""
    return commands.add_parser(name, help=summary, description=description, epilog=EPILOG,
                               formatter_class=argparse.RawDescriptionHelpFormatter)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="reasongen",
        description="Controllable recommendation-reason generation: product attributes (+ controls) -> text.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    params = add_command(
        commands, "params", "compose conf/ (+ Hydra overrides) into params.yaml",
        "Compose conf/config.yaml with Hydra overrides and write params.yaml, which dvc.yaml reads.")
    params.add_argument("overrides", nargs="*",
                        help="Hydra overrides, e.g. peft=lora finetune.epochs=2 experiment=tiny")
    params.add_argument("--output", default="params.yaml", help="file to write (default: params.yaml)")
    params.add_argument("--check", action="store_true", help="exit 1 if the file differs from what conf/ composes")

    data = add_command(commands, "data", "materialise the raw data selected by data.source into data/",
                       "Copy the configured raw data (shared copy, your JSON Lines file, or a hub "
                       "dataset) to data/advertisegen.jsonl; data.dvc then pins its hash.")
    data.add_argument("--params", default="params.yaml")
    data.add_argument("--output", default="data/advertisegen.jsonl")

    stage = add_command(commands, "stage", "run one pipeline stage (what dvc.yaml calls)",
                        "Run one DVC stage with params.yaml: " + ", ".join(STAGES))
    stage.add_argument("name", choices=STAGES)
    stage.add_argument("--params", default="params.yaml", help="params file (default: params.yaml)")
    stage.add_argument("overrides", nargs="*", help="dotlist overrides on top of params, e.g. finetune.epochs=1")

    generate = add_command(
        commands, "generate", "write a text for each product in a JSON Lines file",
        "Each input line is AdvertiseGen-style: {\"content\": \"类型#裙*颜色#蓝色*...\"} plus optional "
        "controls aspect (e.g. 显瘦), length_bucket (short|medium|long), keywords (list); other fields are ignored. "
        "Each output line is {\"prediction\": \"...\"}, in input order.")
    generate.add_argument("--model", required=True,
                          help="models:/reasongen-adgen/latest, models:/reasongen-adgen@champion, runs:/..., "
                          "or a model folder (outputs/finetune/model)")
    generate.add_argument("--input", required=True, type=Path)
    generate.add_argument("--output", required=True, type=Path)
    generate.add_argument("--aspect", help="selling-point aspect for rows that give none")
    generate.add_argument("--length", choices=("short", "medium", "long"), help="length bucket for rows that give none")
    generate.add_argument("--no-controls", action="store_true", help="ignore controls in the input")
    generate.add_argument("--greedy", action="store_true", help="greedy decoding instead of the model's saved settings")
    add_decoding_flags(generate)

    evaluate = add_command(
        commands, "evaluate", "score predictions against AdvertiseGen-format references",
        "Scores {\"prediction\"} lines against references ({\"content\", \"summary\"}, optional "
        "controls) line by line: BLEU-4, ROUGE-1/2/L, distinct-n, coverage, hallucination, control accuracy, "
        "advertising-law violations. Prints the metrics and writes them as JSON.")
    evaluate.add_argument("--predictions", required=True, type=Path)
    evaluate.add_argument("--references", required=True, type=Path)
    evaluate.add_argument("--output", type=Path, help="metrics JSON (default: <predictions>.metrics.json)")
    evaluate.add_argument("--train", type=Path, default=Path("outputs/prepare/train.jsonl"),
                          help="training rows for the attribute-value lexicon of the hallucination metric "
                          "(default: outputs/prepare/train.jsonl; the references are used if it is missing)")
    evaluate.add_argument("--params", default="params.yaml", help="for length bounds and hallucination keys")
    explain = add_command(
        commands, "explain", "Task B: write a personalized explanation for each (user, item) pair",
        "Each input line is {\"user_id\": ..., \"item_id\": ..., \"feature\": ... (optional)}: user_id is the "
        "pseudonym of the pipeline's data (outputs/explain/prepare/*.jsonl, field user) or a raw reviewerID, which is "
        "hashed with $REASONGEN_EXPLAIN_SALT (the pipeline's salt) to find its profile; item_id is the product's asin. "
        "With a feature (e.g. sound, price, strings) the model explains with it (system (a)); without, it picks "
        "its own (system (b)). Each output line is {\"explanation\": \"...\"}, in input order.")
    explain.add_argument("--model", required=True,
                         help="models:/reasongen-explain/latest, models:/reasongen-explain/<version>, runs:/..., "
                         "or a model folder (outputs/explain/finetune/model)")
    explain.add_argument("--input", required=True, type=Path)
    explain.add_argument("--output", required=True, type=Path)
    explain.add_argument("--feature", help="feature for rows that give none")
    explain.add_argument("--no-feature", action="store_true", help="ignore features in the input (system (b))")
    explain.add_argument("--sample", action="store_true", help="top-p sampling instead of the saved (greedy) decoding")
    add_decoding_flags(explain)

    serve = add_command(
        commands, "serve", "serve a registered model over HTTP on loopback (what `make serve` runs)",
        "MLflow's scoring server (POST /invocations, GET /ping) for a registered pyfunc model of either task, with "
        "the limits registered with it (conf/serving/): rows per request, characters per field, max_new_tokens, and "
        "the body size, refused without being kept. Every bad request gets a 4xx with a one-line reason. A small "
        "model's texts are written by a process per core, each request by the first free one "
        "(REASONGEN_SERVE_PROCESSES sets how many; REASONGEN_THREADS or OMP_NUM_THREADS their torch threads, and "
        "then fewer processes).")
    serve.add_argument("--model", required=True, help="models:/reasongen-adgen@champion, models:/reasongen-explain/3, "
                       "runs:/...")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1, loopback)")
    serve.add_argument("--port", type=positive_int, default=5001)
    serve.add_argument("overrides", nargs="*", help="changes to the registered limits, e.g. serving.max_rows=4")
    add_trust_flag(serve)

    sweep = add_command(
        commands, "sweep", "Optuna search over Hydra overrides (resumable, failure-tolerant, tracked in MLflow)",
        "Runs the study conf/hparams_search/default.yaml on top of the pipeline's base model "
        "(run `dvc repro base_model` first; `make sweep` does). Running it again continues the same study up to "
        "hparams_search.n_trials. Trials are scored on the validation split.")
    sweep.add_argument("overrides", nargs="*", help="Hydra overrides for every trial and for the search itself")
    sweep.add_argument("--workdir", type=Path, default=Path("outputs/sweep"), help="trial outputs")

    promote = add_command(
        commands, "promote", "gate a registered version against the champion and move the alias",
        "Scores promote.candidate (default: the latest version) and the current champion on the test "
        "split; if the candidate passes every gate in conf/promote/, alias champion moves to it and the old "
        "champion keeps `previous`; otherwise it is tagged rejected with the reasons. Exit code 1 on rejection.")
    promote.add_argument("--params", default="params.yaml")
    promote.add_argument("overrides", nargs="*", help="dotlist overrides, e.g. promote.candidate=3 promote.tolerance=0")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run a command; an error of the user's making (errors.UserError, a missing file) is one line on stderr and
    exit code 2, without a traceback (REASONGEN_DEBUG=1 shows it)."""
    offline_defaults()
    argv = sys.argv[1:] if argv is None else list(argv)
    from reasongen.errors import UserError
    from reasongen.overrides import SWEEP_HINT

    if "-m" in argv or "--multirun" in argv:  # what every Hydra user tries first
        print(f"reasongen: -m/--multirun: {SWEEP_HINT}", file=sys.stderr)
        return 2
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra:  # overrides after an option (`stage finetune --params p.yaml finetune.epochs=1`) are overrides too
        if not hasattr(args, "overrides") or any(item.startswith("-") for item in extra):
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
        args.overrides = [*args.overrides, *extra]
    from reasongen import commands

    try:
        return commands.dispatch(args)
    except (UserError, FileNotFoundError) as error:
        if os.environ.get("REASONGEN_DEBUG"):
            raise
        message = f"{error.filename}: {error.strerror}" if isinstance(error, OSError) and error.filename else error
        print(f"{message}", file=sys.stderr)
        return 2
