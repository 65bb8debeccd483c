"""How many threads torch computes with: all the cores nobody else is using.

torch's OpenMP threads meet at the end of every operation. When another process holds one of the cores, each
operation waits a scheduler slice for the thread that lost its core: on 2 shared cores, decoding ran 8 times slower
with 2 threads than with 1. So a command that computes looks, for a moment, at how busy the cores are."""

from __future__ import annotations

import os

COMPUTING = ("stage", "generate", "evaluate", "explain", "serve", "sweep")  # the commands that run models


def free_cores(sample_s: float = 0.2) -> int:
    """The cores this process may use, less those other processes kept busy over sample_s seconds (at least 1)."""
    import psutil

    allowed = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    busy = psutil.cpu_percent(interval=sample_s) / 100 * (os.cpu_count() or 1)
    return max(1, min(allowed, allowed - round(busy)))


def fit_threads() -> int:
    """Set torch's intra-op threads to free_cores(), unless OMP_NUM_THREADS or REASONGEN_THREADS says how many;
    returns the number set."""
    import torch

    asked = os.environ.get("REASONGEN_THREADS") or os.environ.get("OMP_NUM_THREADS")
    threads = int(asked) if asked and asked.isdigit() and int(asked) > 0 else free_cores()
    torch.set_num_threads(threads)
    return threads
