"""What each `reasongen` subcommand does (argument parsing lives in cli.py)."""

from __future__ import annotations

import argparse
import importlib
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from reasongen import threads
from reasongen.config import (
    apply_overrides,
    check_within,
    compose,
    declared_params,
    load_params,
    restrict,
    to_container,
    write_params,
)
from reasongen.errors import UserError, at_line
from reasongen.io import write_json, write_jsonl
from reasongen.rows import read_objects
from reasongen.text.attributes import value_lexicon


def dispatch(args: argparse.Namespace) -> int:
    handler = {"params": params, "data": data, "stage": stage, "generate": generate, "evaluate": evaluate,
               "explain": explain, "serve": serve, "sweep": sweep, "promote": promote}
    if args.command in threads.COMPUTING:
        threads.fit_threads()
    return handler[args.command](args)


def input_rows(path: Path, check: Callable[[dict[str, Any]], dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows of an input file, each passed through check (which raises ValueError for a bad one); the first bad
    line is a UserError `path:line: reason`."""
    rows = []
    for number, record in read_objects(path):
        try:
            rows.append(check(record))
        except ValueError as error:
            raise at_line(path, number, str(error)) from None
    return rows


def params(args: argparse.Namespace) -> int:
    cfg = compose(args.overrides)
    if args.check:
        # compare values, not text: `dvc exp run` rewrites params.yaml in its own layout
        same = to_container(cfg) == to_container(load_params(args.output))
        print(f"{args.output} {'matches' if same else 'differs from'} conf/ {' '.join(args.overrides)}".rstrip())
        return 0 if same else 1
    write_params(cfg, args.output)
    print(f"wrote {args.output}")
    return 0


def data(args: argparse.Namespace) -> int:
    from reasongen.sources import materialize

    path = materialize(load_params(args.params).data, Path(args.output))
    print(f"raw data ready: {path}")
    return 0


def stage(args: argparse.Namespace) -> int:
    # the stage sees only the params its dvc.yaml entry lists, and may be given overrides of those only
    declared = declared_params(args.name)
    cfg = load_params(args.params, args.overrides)  # first: a typo gets its closest key
    check_within(args.overrides, declared, args.name)
    cfg = restrict(cfg, declared, args.name)
    from reasongen.modeling.progress import duration, say

    started = time.monotonic()
    say(f"stage {args.name}: started")  # the header a log shows
    importlib.import_module(f"reasongen.stages.{args.name}").run(cfg)
    say(f"stage {args.name}: done in {duration(time.monotonic() - started)}")
    return 0


def generate(args: argparse.Namespace) -> int:
    from reasongen.adgen.generator import Generator, check_control, load_text_generator, request_row
    from reasongen.tracking import is_model_uri

    try:  # the flags first: a bad one is not the input file's fault
        defaults = {"aspect": check_control("aspect", args.aspect), "length_bucket": args.length}
    except ValueError as error:
        raise UserError(f"--aspect: {error}") from None

    def with_flags(record: dict[str, Any]) -> dict[str, Any]:
        if args.no_controls:
            record = {key: value for key, value in record.items() if key not in ("aspect", "length_bucket",
                                                                                  "keywords")}
        row = request_row(record)
        return {**row, **{key: value for key, value in defaults.items() if value and not row[key]}}

    rows = input_rows(args.input, with_flags)
    trust = args.trust_remote_code
    generator = load_text_generator(args.model, trust) if is_model_uri(args.model) else Generator.from_dir(
        args.model, pipeline_decoding(args.params, "generation"), trust_remote_code=trust)
    overrides: dict[str, Any] = {"do_sample": False} if args.greedy else {}
    if args.batch_size:
        overrides["batch_size"] = args.batch_size
    predictions = generator.generate(rows, **overrides)
    write_jsonl(args.output, ({"prediction": text} for text in predictions))
    print(f"wrote {len(predictions)} predictions to {args.output}")
    return 0


def prediction_field(record: dict[str, Any]) -> dict[str, Any]:
    if not isinstance(record.get("prediction"), str):
        raise ValueError('needs a string field "prediction" (the lines `reasongen generate` writes)')
    return record


def evaluate(args: argparse.Namespace) -> int:
    from reasongen import metrics
    from reasongen.adgen.evaluation import reference_row

    predictions = [row["prediction"] for row in input_rows(args.predictions, prediction_field)]
    references = input_rows(args.references, reference_row)
    if len(predictions) != len(references):
        raise UserError(f"{args.predictions} has {len(predictions)} lines but {args.references} has "
                        f"{len(references)}: one prediction per reference, in the same order")
    cfg = load_params(args.params) if Path(args.params).exists() else compose()
    train = input_rows(args.train, reference_row) if args.train.exists() else references
    scores = metrics.score(predictions, references, **metrics.options(cfg, value_lexicon(train)))
    output = args.output or args.predictions.with_suffix(".metrics.json")
    write_json(output, scores)
    print(json.dumps(scores, ensure_ascii=False, indent=2))
    print(f"wrote {output}")
    return 0


def explain(args: argparse.Namespace) -> int:
    from reasongen.explain.generator import ExplainGenerator, load_explainer, request_row
    from reasongen.tracking import is_model_uri

    rows = input_rows(args.input, request_row)
    for row in rows:
        if args.no_feature:
            row["feature"] = None
        elif args.feature and not row.get("feature"):
            row["feature"] = args.feature
    trust = args.trust_remote_code
    generator = load_explainer(args.model, trust) if is_model_uri(args.model) else ExplainGenerator.from_dir(
        args.model, pipeline_decoding(args.params, "explain.generation"), trust_remote_code=trust)
    overrides: dict[str, Any] = {"do_sample": True, "top_p": 0.9} if args.sample else {}
    if args.batch_size:
        overrides["batch_size"] = args.batch_size
    texts = generator.explain(rows, use_feature=not args.no_feature, **overrides)
    write_jsonl(args.output, ({"explanation": text} for text in texts))
    print(f"wrote {len(texts)} explanations to {args.output}")
    return 0


def serve(args: argparse.Namespace) -> int:
    from reasongen import serving
    from reasongen.overrides import parse_overrides

    # `serving.max_rows=4`: changes to the limits registered with the model, checked as strictly as any override
    blank = OmegaConf.create({"serving": dict.fromkeys(serving.LIMIT_KEYS)})
    changed = apply_overrides(blank, args.overrides).serving
    named = {override.key_or_group.removeprefix("serving.") for override in parse_overrides(args.overrides)}
    serving.serve(args.model, args.host, args.port, {key: changed[key] for key in named},
                  trust_remote_code=args.trust_remote_code)
    return 0


def pipeline_decoding(params_file: str | Path, section: str) -> dict:
    """The decoding settings for a bare model folder (a registered model carries its own): params.yaml's, or the
    defaults composed from conf/ outside a pipeline checkout."""
    cfg = load_params(params_file) if Path(params_file).exists() else compose()
    return to_container(OmegaConf.select(cfg, section))


def sweep(args: argparse.Namespace) -> int:
    from reasongen.sweep import Sweep

    Sweep(args.overrides, args.workdir, Path("outputs/prepare"), Path("outputs/base_model")).run()
    return 0


def promote(args: argparse.Namespace) -> int:
    from reasongen.promote import promote as run_promotion

    return 0 if run_promotion(load_params(args.params, args.overrides)).accepted else 1
