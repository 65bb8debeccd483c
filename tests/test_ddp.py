"""The fine-tune stage under DDP on CPU (gloo, two processes) against the same stage in one process: one model
saved (by rank 0), every rank reloads the same intact best checkpoint before rank 0 deletes it, the ranks agree
on the validation loss (synced), and that loss is within TOLERANCE of the single-process run's."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow

TOLERANCE = 0.02  # relative difference of the best validation loss, DDP (2 x batch 4) vs one process (batch 8)
# Full fine-tuning at a high rate for three epochs: the validation loss moves (LoRA on the tiny model barely does).
TRAINING = ["peft.method=none", "finetune.lr=0.01", "finetune.epochs=3", "finetune.accelerator=cpu"]

# The stage function itself, with its model saves counted and its trained weights summed. Lightning starts this
# script again for rank 1; each rank writes rank<N>.json.
DRIVER = """
import json, sys
from pathlib import Path

from lightning.pytorch.utilities import rank_zero_only

from reasongen.config import load_params
from reasongen.modeling import model_io
from reasongen.stages import finetune

report, out_dir, checkpoints, *overrides = sys.argv[1:]
record = {"saves": 0}
save_model, train_lm = model_io.save_model, finetune.train_lm


def counting_save(*args, **kwargs):
    record["saves"] += 1
    save_model(*args, **kwargs)


def recording_train_lm(*args, **kwargs):
    module, trained = train_lm(*args, **kwargs)
    record["weights"] = sum(float(p.detach().double().sum()) for p in module.model.parameters())
    return module, trained


model_io.save_model, finetune.train_lm = counting_save, recording_train_lm
record["summary"] = finetune.run(load_params("params.yaml", overrides), out_dir=Path(out_dir),
                                 checkpoint_root=Path(checkpoints))
Path(report, f"rank{rank_zero_only.rank}.json").write_text(json.dumps(record))
"""


def finetune(work, env, folder, *overrides: str) -> list[dict]:
    """Run the driver; the records of every rank, in rank order."""
    (folder / "report").mkdir(parents=True)
    driver = folder / "driver.py"
    driver.write_text(DRIVER)
    result = subprocess.run([sys.executable, str(driver), str(folder / "report"), str(folder / "out"),
                             str(folder / "checkpoints"), *TRAINING, *overrides],
                            cwd=work, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return [json.loads(path.read_text()) for path in sorted((folder / "report").glob("rank*.json"))]


def test_ddp_finetune_saves_once_and_matches_one_process(pipeline, tmp_path) -> None:
    from reasongen.modeling.model_io import load_model

    work, env = pipeline
    env = {**env, "OMP_NUM_THREADS": "1"}
    (single,) = finetune(work, env, tmp_path / "single", "finetune.devices=1")
    ranks = finetune(work, env, tmp_path / "ddp", "finetune.strategy=ddp", "finetune.devices=2",
                     "finetune.batch_size=4")
    assert len(ranks) == 2
    assert [rank["saves"] for rank in ranks] == [1, 0]  # rank 0 alone writes the model
    # both ranks loaded the same best checkpoint (rank 0 deleted it only afterwards), chosen on the same loss
    assert ranks[0]["weights"] == ranks[1]["weights"]
    assert ranks[0]["summary"] == ranks[1]["summary"]
    assert list((tmp_path / "ddp/checkpoints").iterdir()) == []  # cleaned up, the persistent root kept
    _, _, meta = load_model(tmp_path / "ddp/out/model")
    assert meta["best_val_loss"] == ranks[0]["summary"]["best_val_loss"]
    saved = json.loads((tmp_path / "ddp/out/summary.json").read_text())
    assert saved["steps"] == single["summary"]["steps"]  # 2 ranks x batch 4 take the steps of one batch of 8
    ddp_loss, single_loss = saved["best_val_loss"], single["summary"]["best_val_loss"]
    assert abs(ddp_loss - single_loss) <= TOLERANCE * single_loss, (ddp_loss, single_loss)
