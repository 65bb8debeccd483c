"""Stage `register`: the pipeline execution's MLflow run (the parent of the training stages' live runs): config,
datasets, curves, metrics, lineage, the sample report and plots, with the fine-tuned model logged as a pyfunc and
registered as a new version of tracking.registered_model; the run is ended here."""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig

from reasongen import runs, serving, tracking
from reasongen.adgen import pyfunc
from reasongen.config import to_container


def run(
    cfg: DictConfig,
    finetune_dir: Path = Path("outputs/finetune"),
    base_dir: Path = Path("outputs/base_model"),
    evaluate_dir: Path = Path("outputs/evaluate"),
    out_dir: Path = Path("outputs/register"),
    prepared_dir: Path = Path("outputs/prepare"),
) -> dict:
    base = Path(cfg.model.name_or_path).name if cfg.model.name_or_path else cfg.model.config.model_type
    generation = to_container(cfg.generation)
    return tracking.record_run(
        cfg, cfg.tracking,
        run_name=lambda cfg_hash: f"{base}-{cfg.peft.method}-{cfg_hash[:6]}",
        curves={"pretrain": base_dir / "curves", "finetune": finetune_dir / "curves"},
        evaluate_dir=evaluate_dir,
        sample_rows=cfg.evaluate.sample_rows,
        artifacts={"pipeline": [Path("dvc.lock"), prepared_dir / "stats.json", evaluate_dir / "metrics.json",
                                evaluate_dir / "table.md", finetune_dir / "summary.json"],
                   "samples": [evaluate_dir / "sample_report.md"],
                   "plots": [evaluate_dir / "plots"]},
        datasets=runs.split_files(prepared_dir, "training", "validation", "testing"),
        model_dir=finetune_dir / "model",
        generation=generation,
        limits=serving.check_limits(cfg.serving, generation),
        out_dir=out_dir,
        serving_module=pyfunc,
    )
