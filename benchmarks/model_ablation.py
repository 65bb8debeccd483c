"""Model-side ablations on a GPU: tokenizer, size, architecture, training length and PEFT method.

Each variant runs the pipeline's own stages (`base_model.run`, `finetune.run`), then generates the test split
with `serving.Generator` twice (the pipeline's sampling, top_p 0.7 / temperature 0.95 / seed 42, and the
`generation=greedy` preset), with controls as the evaluate stage does. Scoring uses `metrics.score` with
`metrics.options`, on any machine with the project's venv.

Three steps, so that the GPU machine needs neither Hydra nor the metric packages:

    # 1. here (CPU, seconds): prepare the data, both tokenizers and one resolved config per variant
    python benchmarks/model_ablation.py setup --params params.yaml --conf conf --raw data/advertisegen.jsonl \\
        --work .gpu/work
    # 2. on the GPU: train + generate; writes summary.jsonl, predictions.jsonl (one line per variant) to --out
    python benchmarks/model_ablation.py train --work .gpu/work --out $OUT --variants A,B,C --deadline-s 520
    # 3. here: score the predictions and write a Markdown table
    python benchmarks/model_ablation.py score --work .gpu/work --results results_dir --out ablation_results.md

Variants (`--variants`, default all): A default; B longer training (pretrain 12, finetune 10 epochs);
C bert_vocab tokenizer; D 6 layers x 384; E 4 layers x 256; F llama_small; G_<method> PEFT on B's base;
H, I, J the trimmed character vocabulary (tokenizer=chars) at CPU-sized and at B's training lengths.
"""

from __future__ import annotations

import argparse
import json
import sys
import tarfile
import time
import types
from pathlib import Path
from typing import Any

from reasongen.text.attributes import value_lexicon

LONG = ["pretrain.epochs=12", "finetune.epochs=10"]
BIG_BATCH = ["pretrain.batch_size=64", "finetune.batch_size=64"]
PEFT_METHODS = ("lora", "adalora", "prefix", "prompt", "ia3")
# name -> (overrides, tokenizer variant, variant whose pretrained base it fine-tunes or None for its own)
VARIANTS: dict[str, tuple[list[str], str, str | None]] = {
    "A": ([], "bpe", None),
    "B": (LONG + BIG_BATCH, "bpe", None),
    "C": (LONG + BIG_BATCH + ["tokenizer=bert_vocab"], "bert_vocab", None),
    "D": (
        LONG + BIG_BATCH + ["model.config.n_layer=6", "model.config.n_embd=384", "model.config.n_head=6"],
        "bpe",
        None,
    ),
    "E": (
        LONG + BIG_BATCH + ["model.config.n_layer=4", "model.config.n_embd=256", "model.config.n_head=4"],
        "bpe",
        None,
    ),
    "F": (LONG + BIG_BATCH + ["model=llama_small"], "bpe", None),
    # the character vocabulary trimmed to the training split, at training lengths a 2-core CPU affords
    "H": (["tokenizer=chars", "pretrain.epochs=4", "finetune.epochs=8"], "chars", None),
    "I": (["tokenizer=chars", "pretrain.epochs=0", "finetune.epochs=12"], "chars", None),
    "J": (["tokenizer=chars", "pretrain.epochs=12", "finetune.epochs=10"] + BIG_BATCH, "chars", None),
    **{f"G_{m}": (LONG + BIG_BATCH + [f"peft={m}"], "bpe", "B") for m in PEFT_METHODS},
}
TOKENIZERS = {"bpe": [], "bert_vocab": ["tokenizer=bert_vocab"], "chars": ["tokenizer=chars"]}
DECODINGS = ("sampling", "greedy", "reranked")  # conf/generation/<name>.yaml
TABLE = (
    "bleu4",
    "rougeL",
    "distinct2",
    "coverage",
    "hallucination_rate",
    "aspect_accuracy",
    "length_accuracy",
    "violation_rate",
)


# ---------------------------------------------------------------- setup (CPU, needs Hydra)


def compose_variant(params: Path, conf: Path, overrides: list[str]):
    """The variant's config: params.yaml with Hydra-style overrides, and each decoding of DECODINGS under
    `decodings` (from conf/generation/<name>.yaml)."""
    from reasongen.config import apply_overrides, load_params

    cfg = apply_overrides(load_params(params), overrides, config_dir=conf)
    cfg.decodings = {name: apply_overrides(cfg, [f"generation={name}"], config_dir=conf).generation
                     for name in DECODINGS}
    return cfg


def setup(args: argparse.Namespace) -> None:
    from omegaconf import OmegaConf

    from reasongen.stages import prepare, tokenizer

    work = Path(args.work)
    base = compose_variant(Path(args.params), Path(args.conf), [])
    prepare.run(base, Path(args.raw), work / "prepare")
    for name, overrides in TOKENIZERS.items():
        cfg = compose_variant(Path(args.params), Path(args.conf), overrides)
        tokenizer.run(cfg, work / "prepare" / "train.jsonl", work / "tokenizer" / name)
    (work / "configs").mkdir(parents=True, exist_ok=True)
    for name, (overrides, _, _) in VARIANTS.items():
        cfg = compose_variant(Path(args.params), Path(args.conf), overrides)
        OmegaConf.save(cfg, work / "configs" / f"{name}.yaml", resolve=True)
    print(f"setup: {len(VARIANTS)} variant configs -> {work / 'configs'}")


# ---------------------------------------------------------------- train (GPU, no Hydra / MLflow needed)


def stub_mlflow() -> None:
    """serving imports mlflow.pyfunc for its pyfunc wrapper only; where MLflow is absent, a stand-in suffices."""
    try:
        import mlflow.pyfunc  # noqa: F401
    except ImportError:
        import importlib.machinery

        pyfunc = types.ModuleType("mlflow.pyfunc")
        pyfunc.PythonModel = object
        mlflow = types.ModuleType("mlflow")
        # a spec, so that find_spec("mlflow") works (accelerate asks, then finds no package metadata: absent)
        mlflow.__spec__ = importlib.machinery.ModuleSpec("mlflow", None)
        pyfunc.__spec__ = importlib.machinery.ModuleSpec("mlflow.pyfunc", None)
        mlflow.pyfunc = pyfunc
        sys.modules.update({"mlflow": mlflow, "mlflow.pyfunc": pyfunc})


class TrainMeter:
    """Lightning callback: training tokens (attention mask), time in training batches, the precision used."""

    def __new__(cls):
        from lightning.pytorch.callbacks import Callback

        class _Meter(Callback):
            def __init__(self) -> None:
                self.tokens, self.seconds, self.precision, self._start = 0, 0.0, None, 0.0

            def on_train_start(self, trainer, pl_module) -> None:
                self.precision = str(trainer.precision)

            def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
                self._start = time.perf_counter()

            def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
                self.tokens += int(batch["attention_mask"].sum())
                self.seconds += time.perf_counter() - self._start

        return _Meter()


def gpu_memory_reset() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()


def gpu_memory_peak_mib() -> float | None:
    import torch

    return round(torch.cuda.max_memory_allocated() / 2**20, 1) if torch.cuda.is_available() else None


def pretrain(cfg, work: Path, tokenizer_dir: Path, out: Path, scratch: Path) -> dict[str, Any]:
    """The base_model stage into out, timed."""
    from reasongen.stages import base_model

    gpu_memory_reset()
    started = time.perf_counter()
    base_model.run(cfg, work / "prepare", tokenizer_dir, out, scratch / "checkpoints" / "base_model")
    return {
        "pretrain_s": round(time.perf_counter() - started, 1),
        "pretrain_peak_mib": gpu_memory_peak_mib(),
        "base_parameters": json.loads((out / "model" / "reasongen.json").read_text())["parameters"],
    }


def finetune(cfg, work: Path, base_dir: Path, out: Path, scratch: Path) -> dict[str, Any]:
    """The finetune stage into out, timed, with training tokens/s and the precision Lightning used."""
    from reasongen.stages import finetune as stage

    meter = TrainMeter()
    gpu_memory_reset()
    started = time.perf_counter()
    summary = stage.run(cfg, work / "prepare", base_dir, out, scratch / "checkpoints" / "finetune", callbacks=[meter])
    return {
        **summary,
        "finetune_s": round(time.perf_counter() - started, 1),
        "finetune_peak_mib": gpu_memory_peak_mib(),
        "precision": meter.precision,
        "train_tokens": meter.tokens,
        "tokens_per_s": round(meter.tokens / meter.seconds) if meter.seconds else None,
    }


def generate(cfg, model_dir: Path, test: list[dict]) -> tuple[dict[str, list[str]], dict[str, float]]:
    """Test-split texts with controls, for each decoding of DECODINGS, with seconds each."""
    from reasongen.adgen.generator import Generator
    from reasongen.seeding import seed_everything

    texts, seconds = {}, {}
    for decoding, settings in cfg.decodings.items():
        seed_everything(settings.seed)
        started = time.perf_counter()
        generator = Generator.from_dir(model_dir, generation=dict(settings))
        texts[decoding] = generator.generate(test, use_controls=True, progress=False)
        seconds[f"generate_{decoding}_s"] = round(time.perf_counter() - started, 1)
    return texts, seconds


def model_size_mib(model_dir: Path) -> float:
    return round(sum(f.stat().st_size for f in model_dir.rglob("*") if f.is_file()) / 2**20, 2)


def run_variant(name: str, work: Path, scratch: Path, test: list[dict], gen_batch: int) -> dict[str, Any]:
    """Pretrain (or reuse another variant's base), fine-tune and generate one variant; returns its record."""
    from omegaconf import OmegaConf

    overrides, tokenizer_name, base_of = VARIANTS[name]
    cfg = OmegaConf.load(work / "configs" / f"{name}.yaml")
    for settings in cfg.decodings.values():
        settings.batch_size = gen_batch * settings.get("num_candidates", 1)
    tokenizer_dir = work / "tokenizer" / tokenizer_name
    record: dict[str, Any] = {"variant": name, "overrides": overrides, "started": time.time()}
    base_root = scratch / (base_of or name) / "base_model"
    if not (base_root / "model" / "reasongen.json").exists():
        base_cfg = OmegaConf.load(work / "configs" / f"{base_of or name}.yaml")
        record |= pretrain(base_cfg, work, tokenizer_dir, base_root, scratch)
    record["base_from"] = base_of or name
    out = scratch / name / "finetune"
    record |= finetune(cfg, work, base_root, out, scratch)
    texts, seconds = generate(cfg, out / "model", test)
    record |= seconds
    record["model_mib"] = model_size_mib(out / "model")
    record["wall_s"] = round(time.time() - record["started"], 1)
    return {"record": record, "texts": texts}


def append_jsonl(path: Path, record: dict[str, Any]) -> None:
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(json.dumps(record, ensure_ascii=False) + "\n")


def keep_model(model_dir: Path, out: Path, name: str, limit_mib: float = 15.5) -> bool:
    """Tar a model folder into out when it stays under the transfer limit."""
    if model_size_mib(model_dir) > limit_mib:
        return False
    with tarfile.open(out / f"model_{name}.tar", "w") as tar:
        tar.add(model_dir, arcname="model")
    return True


def train(args: argparse.Namespace) -> None:
    stub_mlflow()
    from reasongen.io import read_jsonl

    work, out, scratch = Path(args.work), Path(args.out), Path(args.scratch)
    out.mkdir(parents=True, exist_ok=True)
    test = read_jsonl(work / "prepare" / "test.jsonl")
    begun, longest = time.perf_counter(), 0.0
    for name in args.variants.split(","):
        left = args.deadline_s - (time.perf_counter() - begun)
        if left < longest * args.margin:
            print(f"skip {name}: {left:.0f}s left, the longest variant took {longest:.0f}s", flush=True)
            append_jsonl(out / "summary.jsonl", {"variant": name, "skipped": f"{left:.0f}s left"})
            continue
        print(f"=== variant {name}: {VARIANTS[name][0]}", flush=True)
        try:
            result = run_variant(name, work, scratch, test, args.gen_batch)
        except Exception as error:  # one failing variant must not lose the others
            import traceback

            traceback.print_exc()
            append_jsonl(out / "summary.jsonl", {"variant": name, "error": f"{type(error).__name__}: {error}"})
            continue
        record = result["record"]
        longest = max(longest, record["wall_s"])
        if name in args.keep_models.split(","):
            record["model_kept"] = keep_model(scratch / name / "finetune" / "model", out, name)
        append_jsonl(out / "summary.jsonl", record)
        append_jsonl(out / "predictions.jsonl", {"variant": name, **result["texts"]})
        print(json.dumps(record), flush=True)


# ---------------------------------------------------------------- score (CPU, needs the metric packages)


def load_results(folders: list[Path]) -> tuple[dict[str, dict], dict[str, dict]]:
    """Summaries and predictions by variant from result folders (later folders win)."""
    summaries, predictions = {}, {}
    for folder in folders:
        for line in (folder / "summary.jsonl").read_text(encoding="utf-8").splitlines():
            record = json.loads(line)
            if record["variant"] not in summaries or "error" not in record and "skipped" not in record:
                summaries[record["variant"]] = record
        path = folder / "predictions.jsonl"
        if path.exists():
            for line in path.read_text(encoding="utf-8").splitlines():
                record = json.loads(line)
                predictions[record["variant"]] = record
    return summaries, predictions


def score_variant(texts: dict[str, list[str]], test: list[dict], options: dict[str, Any]) -> dict[str, dict]:
    from reasongen import metrics

    return {decoding: metrics.score(texts[decoding], test, use_controls=True, **options)
            for decoding in DECODINGS if decoding in texts}


def fmt(value: Any, digits: int = 2) -> str:
    if value is None:
        return "–"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def table_row(name: str, summary: dict[str, Any], scores: dict[str, dict] | None) -> str:
    if "error" in summary or "skipped" in summary:
        return f"| {name} | {summary.get('error') or 'skipped: ' + summary['skipped']} |"
    params = summary.get("total_parameters")
    cells = [
        name,
        f"{params / 1e6:.2f}M" if params else "–",
        f"{summary.get('trainable_parameters', 0) / 1e6:.3f}M",
        summary.get("epochs_run"),
        fmt(summary.get("best_val_loss"), 4),
        fmt(summary.get("pretrain_s"), 1),
        fmt(summary.get("finetune_s"), 1),
        fmt(summary.get("tokens_per_s")),
        fmt(max(filter(None, (summary.get("pretrain_peak_mib"), summary.get("finetune_peak_mib"))), default=None), 0),
        summary.get("precision"),
    ]
    for decoding in DECODINGS:
        cells += [fmt(scores[decoding].get(m)) if scores and decoding in scores else "–" for m in TABLE]
    return "| " + " | ".join(str(c) for c in cells) + " |"


def score(args: argparse.Namespace) -> None:
    from omegaconf import OmegaConf

    from reasongen import metrics
    from reasongen.io import read_jsonl

    work = Path(args.work)
    train_rows = read_jsonl(work / "prepare" / "train.jsonl")
    test = read_jsonl(work / "prepare" / "test.jsonl")
    cfg = OmegaConf.load(work / "configs" / "A.yaml")
    options = metrics.options(cfg, value_lexicon(train_rows))
    summaries, predictions = load_results([Path(p) for p in args.results])
    header = [
        "variant",
        "params",
        "trainable",
        "epochs run",
        "best val loss",
        "pretrain s",
        "finetune s",
        "train tokens/s",
        "peak GPU MiB",
        "precision",
    ]
    header += [f"{d[:4]} {m}" for d in DECODINGS for m in TABLE]
    lines = ["| " + " | ".join(header) + " |", "|---" * len(header) + "|"]
    scored = {}
    for name in VARIANTS:
        if name not in summaries:
            continue
        scores = score_variant(predictions[name], test, options) if name in predictions else None
        scored[name] = {"summary": summaries[name], "scores": scores}
        lines.append(table_row(name, summaries[name], scores))
    Path(args.out).write_text("\n".join(lines) + "\n", encoding="utf-8")
    Path(args.out).with_suffix(".json").write_text(json.dumps(scored, ensure_ascii=False, indent=1), encoding="utf-8")
    print("\n".join(lines))


# ---------------------------------------------------------------- CLI


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    s = commands.add_parser("setup", help="prepare data, tokenizers and variant configs (CPU, needs Hydra)")
    s.add_argument("--params", default="params.yaml", help="composed pipeline config")
    s.add_argument("--conf", default="conf", help="Hydra config folder for group overrides")
    s.add_argument("--raw", default="data/advertisegen.jsonl", help="raw AdvertiseGen rows")
    s.add_argument("--work", required=True, help="folder for prepare/, tokenizer/, configs/")
    s.set_defaults(func=setup)
    t = commands.add_parser("train", help="pretrain, fine-tune and generate each variant (GPU)")
    t.add_argument("--work", required=True, help="the folder setup wrote")
    t.add_argument("--out", required=True, help="summary.jsonl, predictions.jsonl, kept model tars")
    t.add_argument("--scratch", default="/tmp/model_ablation", help="models and checkpoints")
    t.add_argument("--variants", default=",".join(VARIANTS), help=f"comma-separated, of {', '.join(VARIANTS)}")
    t.add_argument("--deadline-s", type=float, default=1e9, help="start no variant that may not end by then")
    t.add_argument("--margin", type=float, default=1.0, help="a variant may take margin x the longest so far")
    t.add_argument("--gen-batch", type=int, default=128, help="generation batch size")
    t.add_argument("--keep-models", default="", help="variants whose model folder to tar into --out (<16 MiB)")
    t.set_defaults(func=train)
    c = commands.add_parser("score", help="score predictions with metrics.score and write a Markdown table")
    c.add_argument("--work", required=True, help="the folder setup wrote")
    c.add_argument("--results", nargs="+", required=True, help="folders holding summary/predictions.jsonl")
    c.add_argument("--out", required=True, help="Markdown table (a .json with all scores is written beside it)")
    c.set_defaults(func=score)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    args.func(args)


if __name__ == "__main__":
    main()
