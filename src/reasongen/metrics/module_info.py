"""What the metric modules share: their MetricInfo from a description and their string inputs, and the rate of
flagged texts."""

from __future__ import annotations

from collections.abc import Iterable

import datasets
import evaluate


def metric_info(description: str, inputs_description: str, *string_inputs: str) -> evaluate.MetricInfo:
    """A module's MetricInfo: one string per example for each of string_inputs (predictions, contents, ...)."""
    return evaluate.MetricInfo(
        description=description,
        citation="",
        inputs_description=inputs_description,
        features=datasets.Features({name: datasets.Value("string") for name in string_inputs}),
    )


def percent(flags: Iterable[bool]) -> float:
    """Share of True ×100; 0 when there is nothing (no texts, no failures)."""
    found = list(flags)
    return 100.0 * sum(found) / len(found) if found else 0.0
