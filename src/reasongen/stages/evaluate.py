"""Stage `evaluate`: generate for the test split and score the model beside two baselines and the references."""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig

from reasongen import metrics
from reasongen.adgen import evaluation, sample_report
from reasongen.adgen.generator import Generator
from reasongen.io import read_jsonl, write_json, write_jsonl
from reasongen.modeling.progress import say
from reasongen.seeding import seed_everything
from reasongen.text.attributes import value_lexicon


def run(
    cfg: DictConfig,
    prepared_dir: Path = Path("outputs/prepare"),
    model_dir: Path = Path("outputs/finetune/model"),
    out_dir: Path = Path("outputs/evaluate"),
) -> dict:
    seed_everything(cfg.generation.seed)
    train = read_jsonl(prepared_dir / "train.jsonl")
    test = read_jsonl(prepared_dir / "test.jsonl")
    if cfg.evaluate.max_examples:
        test = test[: cfg.evaluate.max_examples]
    generator = Generator.from_dir(model_dir, generation=dict(cfg.generation),
                                   trust_remote_code=cfg.model.trust_remote_code)
    outputs = evaluation.system_predictions(generator, cfg.evaluate, train, test)
    options = metrics.options(cfg, value_lexicon(train))
    use_controls = cfg.evaluate.use_controls
    say(f"scoring {len(outputs)} systems on {len(test)} rows")
    table = {system: metrics.score(texts, test, use_controls=use_controls, **options)
             for system, texts in outputs.items()}
    table["references"] = metrics.score_references(test, use_controls=use_controls, **options)
    if cfg.evaluate.control_table and not use_controls:  # the second table: control following
        controlled = generator.generate(test, use_controls=True)
        table[evaluation.WITH_CONTROLS] = metrics.score(controlled, test, use_controls=True, **options)
        table["references_with_controls"] = metrics.score_references(test, use_controls=True, **options)
    write_json(out_dir / "metrics.json", table)
    (out_dir / "table.md").write_text(evaluation.markdown_table(table), encoding="utf-8")
    predictions = evaluation.prediction_records(test, outputs)
    write_jsonl(out_dir / "predictions.jsonl", predictions)
    report_systems = [name for name in sample_report.SYSTEMS if name in outputs]
    (out_dir / "sample_report.md").write_text(
        sample_report.render(predictions, report_systems, generator.checks, n=cfg.evaluate.sample_rows, seed=cfg.seed),
        encoding="utf-8")
    evaluation.write_plots(out_dir, test, outputs, list(cfg.data.controls.length_bounds))
    print(evaluation.markdown_table(table))
    return table
