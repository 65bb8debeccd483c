"""What each `reasongen` subcommand does (argument parsing lives in cli.py)."""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from pathlib import Path

from reasongen.config import compose, load_params, to_container, write_params
from reasongen.io import read_jsonl, write_json, write_jsonl


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
    cfg = load_params(args.params, args.overrides)
    importlib.import_module(f"reasongen.stages.{args.name}").run(cfg)
    return 0


def generate(args: argparse.Namespace) -> int:
    from reasongen.serving import load_generator

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
    generator = load_generator(args.model)
    if Path(args.model).exists() and Path("params.yaml").exists():
        # a bare model folder carries no decoding settings (a registered model does): use the pipeline's
        generator.generation = {**dict(load_params().generation), **generator.generation}
    overrides = {"do_sample": False} if args.greedy else {}
    if args.batch_size:
        overrides["batch_size"] = args.batch_size
    predictions = generator.generate(rows, **overrides)
    write_jsonl(args.output, ({"prediction": text} for text in predictions))
    print(f"wrote {len(predictions)} predictions to {args.output}")
    return 0


def evaluate(args: argparse.Namespace) -> int:
    from reasongen import metrics
    from reasongen.stages.evaluate import reference_rows

    predictions = [row.get("prediction", "") for row in read_jsonl(args.predictions)]
    references = reference_rows(read_jsonl(args.references))
    if len(predictions) != len(references):
        print(f"{args.predictions} has {len(predictions)} lines but {args.references} has {len(references)}",
              file=sys.stderr)
        return 2
    cfg = load_params(args.params) if Path(args.params).exists() else compose()
    train = read_jsonl(args.train) if args.train.exists() else references
    scores = metrics.score(predictions, references, **metrics.options(cfg, metrics.value_lexicon(train)))
    output = args.output or args.predictions.with_suffix(".metrics.json")
    write_json(output, scores)
    print(json.dumps(scores, ensure_ascii=False, indent=2))
    print(f"wrote {output}")
    return 0


def explain(args: argparse.Namespace) -> int:
    from reasongen.explain.serving import check_rows, load_generator

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
    generator = load_generator(args.model)
    if Path(args.model).exists() and Path("params.yaml").exists():
        # a bare model folder carries no decoding settings (a registered model does): use the pipeline's
        generator.generation = {**dict(load_params().explain.generation), **generator.generation}
    overrides = {"do_sample": True, "top_p": 0.9} if args.sample else {}
    if args.batch_size:
        overrides["batch_size"] = args.batch_size
    texts = generator.explain(rows, use_feature=not args.no_feature, **overrides)
    write_jsonl(args.output, ({"explanation": text} for text in texts))
    print(f"wrote {len(texts)} explanations to {args.output}")
    return 0


def sweep(args: argparse.Namespace) -> int:
    from reasongen.sweep import Sweep

    Sweep(args.overrides, args.workdir, Path("outputs/prepare"), Path("outputs/base_model")).run()
    return 0


def promote(args: argparse.Namespace) -> int:
    from reasongen.promote import promote as run_promotion

    return 0 if run_promotion(load_params(args.params, args.overrides)).accepted else 1
