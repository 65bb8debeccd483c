"""`reasongen stage finetune trainer.strategy=ddp trainer.devices=2 trainer.accelerator=cpu` (gloo, two
processes) against the same stage in one process, each in a copy of the tiny pipeline: one model saved (by rank 0),
the ranks agree on the best validation loss (synced) and reload the same intact best checkpoint before rank 0
deletes it, and that loss is within TOLERANCE of the single-process run's."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

TOLERANCE = 0.02  # relative difference of the best validation loss, DDP (2 x batch 4) vs one process (batch 8)
# Full fine-tuning at a high rate for three epochs: the validation loss moves (LoRA on the tiny model barely does).
TRAINING = ["peft.method=none", "finetune.lr=0.01", "finetune.epochs=3", "trainer.accelerator=cpu"]

# `reasongen stage finetune <overrides>` (the CLI's own main) with the model saves counted and the trained weights
# summed. Lightning starts this script again for rank 1; each rank writes rank<N>.json.
DRIVER = """
import json, sys
from pathlib import Path

from lightning.pytorch.utilities import rank_zero_only

from reasongen.cli import main
from reasongen.modeling import model_io
from reasongen.stages import finetune

report, *overrides = sys.argv[1:]
record = {"saves": 0}
save_model, train_lm = model_io.save_model, finetune.train_lm


def counting_save(*args, **kwargs):
    record["saves"] += 1
    save_model(*args, **kwargs)


def recording_train_lm(*args, **kwargs):
    module, trained = train_lm(*args, **kwargs)
    record["weights"] = sum(float(p.detach().double().sum()) for p in module.model.parameters())
    record["best_val_loss"] = trained["best_val_loss"]
    return module, trained


model_io.save_model, finetune.train_lm = counting_save, recording_train_lm
record["exit"] = main(["stage", "finetune", *overrides])
Path(report, f"rank{rank_zero_only.rank}.json").write_text(json.dumps(record))
"""


def finetune(pipeline, folder: Path, *overrides: str) -> tuple[Path, list[dict]]:
    """The stage in a copy of the tiny pipeline: (the copy, the records of every rank in rank order)."""
    work, env = pipeline
    shutil.copytree(work, folder / "repo", symlinks=True)
    (folder / "report").mkdir()
    (folder / "driver.py").write_text(DRIVER)
    env = {**env, "PYTHONPATH": str(folder / "repo/src"), "OMP_NUM_THREADS": "1"}
    result = subprocess.run([sys.executable, str(folder / "driver.py"), str(folder / "report"), *TRAINING, *overrides],
                            cwd=folder / "repo", env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return folder / "repo", [json.loads(path.read_text()) for path in sorted((folder / "report").glob("rank*.json"))]


def test_ddp_finetune_saves_once_and_matches_one_process(pipeline, tmp_path) -> None:
    from reasongen.modeling.model_io import load_model

    single_work, _ = finetune(pipeline, tmp_path / "single", "trainer.devices=1")
    single = json.loads((single_work / "outputs/finetune/summary.json").read_text())
    work, ranks = finetune(pipeline, tmp_path / "ddp", "trainer.strategy=ddp", "trainer.devices=2",
                           "finetune.batch_size=4")
    assert [rank["exit"] for rank in ranks] == [0, 0]
    assert [rank["saves"] for rank in ranks] == [1, 0]  # rank 0 alone writes the model
    # both ranks chose the best checkpoint on the same (synced) loss and loaded it before rank 0 deleted it
    assert ranks[0]["best_val_loss"] == ranks[1]["best_val_loss"]
    assert ranks[0]["weights"] == ranks[1]["weights"]
    # cleaned up, the persistent root kept (with the .gitignore that keeps it in git)
    assert [path.name for path in (work / "checkpoints/finetune").iterdir()] == [".gitignore"]
    summary = json.loads((work / "outputs/finetune/summary.json").read_text())
    _, _, meta = load_model(work / "outputs/finetune/model")
    assert meta["best_val_loss"] == summary["best_val_loss"]
    assert summary["steps"] == single["steps"]  # 2 ranks x batch 4 take the steps of one process with batch 8
    ddp_loss, single_loss = summary["best_val_loss"], single["best_val_loss"]
    assert abs(ddp_loss - single_loss) <= TOLERANCE * single_loss, (ddp_loss, single_loss)
