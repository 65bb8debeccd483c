"""DVC stage `explain_register` (Task B): one MLflow run in experiment `reasongen-explain` with the Task B config,
both training curves, the four systems' metrics and samples, and the profile-prompt model (systems (a)/(b)) as a
pyfunc registered as `reasongen-explain` (inputs user_id, item_id, optional feature),
through the shared recorder (tracking.record_run)."""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from reasongen import runs, serving, tracking
from reasongen.config import to_container
from reasongen.explain import pyfunc
from reasongen.explain.profiles import PROFILES_FILE
from reasongen.io import read_json

FINETUNE = Path("outputs/explain/finetune")
SOFT_PROMPT = Path("outputs/explain/soft_prompt")
EVALUATE = Path("outputs/explain/evaluate")
PREPARED = Path("outputs/explain/prepare")


def run(cfg: DictConfig, finetune_dir: Path = FINETUNE, soft_prompt_dir: Path = SOFT_PROMPT,
        evaluate_dir: Path = EVALUATE, out_dir: Path = Path("outputs/explain/register")) -> dict:
    task = cfg.explain
    section = OmegaConf.create({"explain": to_container(task), "seed": cfg.seed})
    profiles = read_json(finetune_dir / "model" / PROFILES_FILE)
    generation = to_container(task.generation)
    return tracking.record_run(
        section, task.tracking,
        run_name=lambda cfg_hash: f"explain-{task.model.config.model_type}-{task.peft.method}-{cfg_hash[:6]}",
        curves={"finetune": finetune_dir / "curves", "soft_prompt": soft_prompt_dir / "curves"},
        evaluate_dir=evaluate_dir,
        sample_rows=task.evaluate.sample_rows,
        artifacts={"pipeline": [Path("dvc.lock"), PREPARED / "stats.json", evaluate_dir / "metrics.json",
                                evaluate_dir / "table.md", finetune_dir / "summary.json",
                                soft_prompt_dir / "summary.json"],
                   "samples": [PREPARED / "tuples_sample.md"]},
        datasets=runs.split_files(PREPARED, "training", "validation", "testing"),
        model_dir=finetune_dir / "model",
        generation=generation,
        limits=serving.check_limits(cfg.serving, generation),
        out_dir=out_dir,
        serving_module=pyfunc,
        input_example=pyfunc.input_example(profiles),
        headline="a_profile_feature",
    )
