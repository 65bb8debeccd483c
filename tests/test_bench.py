"""The bench's pure helpers (benchmarks/bench): targets met or not, padding share, percentiles, the report."""

from __future__ import annotations

import torch

from benchmarks.bench import report
from benchmarks.bench.serving import percentile
from benchmarks.bench.training import losses_agree, padding_share


def test_targets_are_met_by_their_direction() -> None:
    assert report.is_met(1.6, ">= 1.5") and not report.is_met(1.4, ">= 1.5")
    assert report.is_met(0.04, "<= 0.05") and not report.is_met(0.06, "<= 0.05")
    assert report.is_met(None, "<= 3") is None and report.is_met(2.0, "") is None


def test_padding_share_counts_masked_positions() -> None:
    batches = [{"attention_mask": torch.tensor([[1, 1, 1, 0], [1, 1, 1, 1]])},
               {"attention_mask": torch.tensor([[1, 1], [1, 0]])}]
    assert padding_share(batches) == (2 / 12, 2, 12)


def test_percentile_is_nearest_rank_and_losses_agree_within_tolerance() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 0.5) == 50 and percentile(values, 0.99) == 99 and percentile([7.0], 0.99) == 7
    assert losses_agree(3.00, 3.08) and losses_agree(10.0, 10.25) and not losses_agree(3.0, 3.2)


def test_report_renders_every_key_errors_and_missed_targets() -> None:
    figures = {"train_speedup_vs_hf_trainer": report.figure("train_speedup_vs_hf_trainer", 1.2, steps=40),
               "padding_waste": report.figure("padding_waste", 0.01),
               "cli_help_s": report.failed("cli_help_s", RuntimeError("no entry point"))}
    text = report.render({"machine": {"cores": 2}, "inputs_note": "tiny", "figures": figures,
                          "profiles": {"training": "aten::mm 40%"}, "gpu_note": "no GPU was available"})
    assert all(f"`{key}`" in text for key in report.TARGETS)
    assert "RuntimeError: no entry point" in text and "no GPU was available" in text
    assert "Missed by a factor of 1.25" in text and "aten::mm 40%" in text
    assert figures["padding_waste"]["met"] is True and figures["train_speedup_vs_hf_trainer"]["met"] is False
