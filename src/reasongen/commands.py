"""What each `reasongen` subcommand does (argument parsing lives in cli.py)."""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import time
from pathlib import Path

from omegaconf import OmegaConf

from reasongen.config import compose, declared_params, load_params, restrict, to_container, write_params
from reasongen.io import read_jsonl, write_json, write_jsonl
from reasongen.text.attributes import value_lexicon


def dispatch(args: argparse.Namespace) -> int:
    handler = {"params": params, "data": data, "stage": stage, "generate": generate, "evaluate": evaluate,
               "explain": explain, "sweep": sweep, "promote": promote}
    return handler[args.command](args)


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
    # the stage sees only the params its dvc.yaml entry lists
    cfg = restrict(load_params(args.params, args.overrides), declared_params(args.name), args.name)
    from reasongen.modeling.progress import duration, say

    started = time.monotonic()
    say(f"stage {args.name}: started")  # the header a log shows
    importlib.import_module(f"reasongen.stages.{args.name}").run(cfg)
    say(f"stage {args.name}: done in {duration(time.monotonic() - started)}")
    return 0


def generate(args: argparse.Namespace) -> int:
    from reasongen.adgen.generator import Generator, load_text_generator
    from reasongen.tracking import is_model_uri

    rows = read_jsonl(args.input)
    for number, row in enumerate(rows, start=1):
        if not isinstance(row.get("content"), str) or not row["content"].strip():
            print(f"{args.input}:{number}: needs a non-empty string field \"content\" (e.g. 类型#裙*颜色#蓝色)",
                  file=sys.stderr)
            return 2
        if args.no_controls:
            for key in ("aspect", "length_bucket", "keywords"):
                row.pop(key, None)
        if args.aspect and not row.get("aspect"):
            row["aspect"] = args.aspect
        if args.length and not row.get("length_bucket"):
            row["length_bucket"] = args.length
    generator = load_text_generator(args.model) if is_model_uri(args.model) else Generator.from_dir(
        args.model, pipeline_decoding(args.params, "generation"))
    overrides = {"do_sample": False} if args.greedy else {}
    if args.batch_size:
        overrides["batch_size"] = args.batch_size
    predictions = generator.generate(rows, **overrides)
    write_jsonl(args.output, ({"prediction": text} for text in predictions))
    print(f"wrote {len(predictions)} predictions to {args.output}")
    return 0


def evaluate(args: argparse.Namespace) -> int:
    from reasongen import metrics
    from reasongen.adgen.evaluation import reference_rows

    predictions = [row.get("prediction", "") for row in read_jsonl(args.predictions)]
    references = reference_rows(read_jsonl(args.references))
    if len(predictions) != len(references):
        print(f"{args.predictions} has {len(predictions)} lines but {args.references} has {len(references)}",
              file=sys.stderr)
        return 2
    cfg = load_params(args.params) if Path(args.params).exists() else compose()
    train = read_jsonl(args.train) if args.train.exists() else references
    scores = metrics.score(predictions, references, **metrics.options(cfg, value_lexicon(train)))
    output = args.output or args.predictions.with_suffix(".metrics.json")
    write_json(output, scores)
    print(json.dumps(scores, ensure_ascii=False, indent=2))
    print(f"wrote {output}")
    return 0


def explain(args: argparse.Namespace) -> int:
    from reasongen.explain.generator import ExplainGenerator, check_rows, load_explainer
    from reasongen.tracking import is_model_uri

    rows = read_jsonl(args.input)
    try:
        check_rows(rows)
    except ValueError as error:
        print(f"{args.input}: {error} (lines are 1 + the row numbers)", file=sys.stderr)
        return 2
    for row in rows:
        if args.no_feature:
            row.pop("feature", None)
        elif args.feature and not row.get("feature"):
            row["feature"] = args.feature
    generator = load_explainer(args.model) if is_model_uri(args.model) else ExplainGenerator.from_dir(
        args.model, pipeline_decoding(args.params, "explain.generation"))
    overrides = {"do_sample": True, "top_p": 0.9} if args.sample else {}
    if args.batch_size:
        overrides["batch_size"] = args.batch_size
    texts = generator.explain(rows, use_feature=not args.no_feature, **overrides)
    write_jsonl(args.output, ({"explanation": text} for text in texts))
    print(f"wrote {len(texts)} explanations to {args.output}")
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
