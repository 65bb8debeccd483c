"""Progress that a log file shows (stdout not a terminal): timed lines for a counted step such as generation, and
the training callback's lines (start, every interval, each epoch with its losses), on a clock the tests move."""

from __future__ import annotations

import io

from test_training import datamodule, trainer_settings

from reasongen.modeling.module import CausalLMModule
from reasongen.modeling.progress import Lines, counted
from reasongen.modeling.training import ProgressLines, fit


class Clock:
    """A clock that moves only when a test moves it."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def said(stream: io.StringIO) -> list[str]:
    """The lines written, without their time of day."""
    return [line.split("] ", 1)[1] for line in stream.getvalue().splitlines()]


def test_counted_says_how_far_every_interval_and_at_the_end() -> None:
    clock, out = Clock(), io.StringIO()
    batches = [[1, 2], [3, 4], [5, 6], [7]]
    seen = []
    for batch in counted(batches, "generate", size=len, lines=Lines(every_s=30, clock=clock, stream=out)):
        seen.append(batch)
        clock.now += 20  # each batch takes 20 s: a line is due after the second (40 s) and at the end
    assert seen == batches
    assert said(out) == ["generate: 4/7 (57%), 40 s, ~30 s left", "generate: 7/7 (100%), 80 s"]


def test_counted_is_silent_when_disabled_and_yields_everything() -> None:
    out = io.StringIO()
    assert list(counted([1, 2, 3], "x", enabled=False, lines=Lines(every_s=0, stream=out))) == [1, 2, 3]
    assert out.getvalue() == ""


def test_training_lines_show_the_start_steps_and_each_epoch_with_its_losses(
    tiny_cfg, tiny_model, bpe_tokenizer, tiny_rows, tmp_path
) -> None:
    out = io.StringIO()
    lines = ProgressLines(lambda: Lines(every_s=0, stream=out))  # every step is due
    module = CausalLMModule(tiny_model("gpt2", bpe_tokenizer), lr=1e-2)
    fit(module, datamodule(bpe_tokenizer, tiny_rows), trainer_settings(tiny_cfg()), tmp_path / "checkpoints",
        tmp_path / "curves", epochs=2, callbacks=[lines])
    text = said(out)
    assert text[0] == "training: 2 epochs of 4 steps, from epoch 1, step 0"
    assert text[1].startswith("epoch 1/2, step 1/4: train_loss ")
    epochs = [line for line in text if " done " in line]
    assert [line.split(" done")[0] for line in epochs] == ["epoch 1/2", "epoch 2/2"]
    assert all("train_loss" in line and "val_loss" in line for line in epochs)
    assert len(text) == 1 + 2 * 4 + 2  # the start, a line per step (every_s=0), one per epoch
