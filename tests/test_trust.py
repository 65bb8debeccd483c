"""Nothing runs unless the user asks: a planted model folder says `trust_remote_code: true` in its reasongen.json
and ships code for transformers' auto classes, and a planted checkpoint is a pickle that runs code when loaded.
Loading either runs none of it; the folder's code runs only with the user's --trust-remote-code."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import REPO

from reasongen.adgen.prompts import datamodule_options
from reasongen.config import compose, to_container, write_params
from reasongen.modeling import model_io
from reasongen.modeling.datamodule import PromptDataModule
from reasongen.modeling.module import CausalLMModule
from reasongen.modeling.training import LAST, fit

EVIL = '''from pathlib import Path

Path({marker!r}).write_text("ran")  # what a hostile folder does on import

from transformers import GPT2Config as EvilConfig  # noqa: E402
from transformers import GPT2LMHeadModel as EvilModel  # noqa: E402
'''


def plant_folder(folder: Path, tokenizer, model, marker: Path) -> Path:
    """A fine-tuned-looking model folder whose reasongen.json and config.json ask for its own code to run."""
    model_io.save_model(model, tokenizer, folder, {"peft_method": "none", "max_source_length": 48,
                                                   "length_bounds": [100, 125], "value_lexicon": {}})
    meta = json.loads((folder / model_io.META_FILE).read_text())
    (folder / model_io.META_FILE).write_text(json.dumps({**meta, "trust_remote_code": True}))
    config_path = folder / model_io.WEIGHTS_DIR / "config.json"
    config = json.loads(config_path.read_text())
    config["auto_map"] = {"AutoConfig": "evil.EvilConfig", "AutoModelForCausalLM": "evil.EvilModel"}
    config_path.write_text(json.dumps(config))
    (folder / model_io.WEIGHTS_DIR / "evil.py").write_text(EVIL.format(marker=str(marker)))
    return folder


class Payload:
    """Unpickled, it opens (creates) a file: any code could stand there."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return open, (self.marker, "w")


def test_a_planted_model_folder_runs_no_code_unless_the_user_trusts_it(tmp_path: Path, bpe_tokenizer, tiny_model,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    from reasongen.cli import main

    marker = tmp_path / "ran.txt"
    folder = plant_folder(tmp_path / "model", bpe_tokenizer, tiny_model("gpt2", bpe_tokenizer), marker)
    model, _, meta = model_io.load_model(folder)
    assert meta["trust_remote_code"] is True and type(model).__name__ == "GPT2LMHeadModel"
    params = tmp_path / "params.yaml"
    write_params(compose(["experiment=tiny", "generation=greedy", "generation.max_new_tokens=4"]), params)
    inputs = tmp_path / "in.jsonl"
    inputs.write_text(json.dumps({"content": "类型#裙*颜色#蓝色"}, ensure_ascii=False) + "\n", encoding="utf-8")
    argv = ["generate", "--model", str(folder), "--input", str(inputs), "--output", str(tmp_path / "out.jsonl"),
            "--params", str(params)]
    assert main(argv) == 0
    assert not marker.exists()
    # the same folder with the user's flag: its code runs (in a subprocess, with its own module cache)
    env = {**os.environ, "HF_MODULES_CACHE": str(tmp_path / "modules"), "PYTHONPATH": str(REPO / "src")}
    subprocess.run([sys.executable, "-m", "reasongen", *argv, "--trust-remote-code"], env=env, capture_output=True,
                   timeout=300)
    assert marker.read_text() == "ran"


def test_a_planted_checkpoint_is_refused_and_runs_no_code(tmp_path: Path, tiny_cfg, tiny_model, bpe_tokenizer,
                                                          tiny_rows) -> None:
    marker = tmp_path / "ran.txt"
    checkpoints = tmp_path / "ck"
    checkpoints.mkdir()
    torch.save({"state_dict": Payload(marker), "epoch": 0, "global_step": 1}, checkpoints / LAST)
    data = PromptDataModule(bpe_tokenizer, tiny_rows[:30], tiny_rows[30:35], **datamodule_options(), batch_size=8,
                            max_source_length=48, max_target_length=24, seed=0)
    module = CausalLMModule(tiny_model("gpt2", bpe_tokenizer), lr=1e-2)
    with pytest.raises(ValueError, match=f"{checkpoints / LAST}: not loaded, it holds more than weights"):
        fit(module, data, to_container(tiny_cfg().trainer), checkpoints, tmp_path / "curves", epochs=1)
    assert not marker.exists()
    torch.load(checkpoints / LAST, weights_only=False)  # what the old loading did: the payload runs
    assert marker.exists()
