"""Kills (SIGKILL, no chance to clean up) of the finetune stage on the tiny pipeline's data and base model: once
while it trains, once while it writes the model. Each time the rerun resumes from the checkpoints left behind, and
the last run ends with a whole model and no checkpoint; nothing is lost. (The sweep worker's kill is in
test_sweep.py.)"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from conftest import record_figure

pytestmark = pytest.mark.slow

# finetune.run on the pipeline's prepared rows and base model, outputs under OUT. `train`: each batch takes 0.2 s
# longer, so that a kill lands mid-training; `save`: the model's weights are written, then the save hangs.
DRIVER = """
import json, sys, time
from pathlib import Path

from lightning.pytorch.callbacks import Callback

from reasongen.config import load_params
from reasongen.stages import finetune

work, out, mode = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
cfg = load_params(work / "params.yaml", ["peft=none", "finetune.epochs=3", "trainer.checkpoint_every_n_steps=2"],
                  config_dir=work / "conf")


class Slow(Callback):
    def on_train_batch_end(self, *args):
        time.sleep(0.2)


if mode == "save":
    from transformers import PreTrainedModel

    save_pretrained = PreTrainedModel.save_pretrained

    def hangs_after_the_weights(self, *args, **kwargs):
        save_pretrained(self, *args, **kwargs)
        (out / "saving").touch()
        time.sleep(600)

    PreTrainedModel.save_pretrained = hangs_after_the_weights
summary = finetune.run(cfg, work / "outputs/prepare", work / "outputs/base_model", out / "finetune",
                       out / "checkpoints", callbacks=[Slow()] if mode == "train" else [])
print("summary " + json.dumps(summary))
"""


def start(work: Path, env: dict, out: Path, mode: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, str(out / "driver.py"), str(work), str(out), mode], cwd=out,
                            env={**env, "OMP_NUM_THREADS": "1"}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)


def kill_when(process: subprocess.Popen, ready, what: str) -> None:
    """SIGKILL the process as soon as ready() holds (polled; the process must not end first)."""
    deadline = time.time() + 300
    while not ready():
        assert process.poll() is None, f"ended before {what}:\n{process.stdout.read()[-3000:]}"
        assert time.time() < deadline, f"no {what} within 300 s"
        time.sleep(0.2)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=60)


def last_step(out: Path) -> int | None:
    found = list((out / "checkpoints").glob("*/last.ckpt"))
    if not found:
        return None
    try:
        return int(torch.load(found[0], map_location="cpu", weights_only=True)["global_step"])
    except Exception:  # noqa: BLE001 - caught while Lightning is still writing it
        return None


def test_kills_while_training_and_while_saving_lose_nothing(pipeline, tmp_path: Path) -> None:
    from reasongen.modeling.model_io import load_model

    work, env = pipeline
    out = tmp_path / "run"
    out.mkdir()
    (out / "driver.py").write_text(DRIVER)

    training = start(work, env, out, "train")
    kill_when(training, lambda: (last_step(out) or 0) >= 4, "checkpoint at step 4")
    killed_at = last_step(out)
    assert not (out / "finetune" / "model").exists()

    saving = start(work, env, out, "save")
    kill_when(saving, lambda: (out / "saving").exists(), "model save")
    log = saving.stdout.read()
    assert "resuming from" in log, log[-3000:]
    assert not (out / "finetune" / "model").exists()  # no half-written model under the name
    assert list(out.glob("finetune/.model.partial/weights/*.safetensors"))  # it was killed mid-write
    assert last_step(out) is not None  # the checkpoints outlived both kills

    done = subprocess.run([sys.executable, str(out / "driver.py"), str(work), str(out), "normal"], cwd=out,
                          env={**env, "OMP_NUM_THREADS": "1"}, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "resuming from" in done.stdout
    summary = json.loads(done.stdout.split("summary ", 1)[1])
    model, _, meta = load_model(out / "finetune" / "model")
    assert meta["steps"] == summary["steps"] > killed_at
    assert not list((out / "checkpoints").iterdir()) and not list(out.glob("finetune/.model.*"))
    record_figure("kills", kills=[
        {"kill": "finetune, while training", "at_step": killed_at, "resumed": True},
        {"kill": "finetune, while writing the model", "at_step": summary["steps"], "resumed": True},
    ], final_steps=summary["steps"], model_loads=type(model).__name__)
