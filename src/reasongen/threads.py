"""How torch's threads share the cores: every core this process may use, and threads that sleep while they wait.

torch's OpenMP threads meet at the end of every operation. By default a thread that arrives early spins; when
another process holds one of the cores, the spinning takes the very core the late thread needs, and each operation
waits a scheduler slice: on 2 shared cores, decoding ran 3 to 8 times slower with 2 threads than with 1. Sleeping
waiters (OMP_WAIT_POLICY=PASSIVE) make 2 threads as fast as 1 there, and faster on idle cores."""

from __future__ import annotations

import os

COMPUTING = ("stage", "generate", "evaluate", "explain", "serve", "sweep")  # the commands that run models


def passive_waiting() -> None:
    """Threads sleep while they wait, unless the user chose OMP_WAIT_POLICY; before torch is imported (the OpenMP
    runtime reads it once)."""
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def usable_cores() -> int:
    """REASONGEN_THREADS or OMP_NUM_THREADS when given, else the cores this process may use."""
    asked = os.environ.get("REASONGEN_THREADS") or os.environ.get("OMP_NUM_THREADS")
    if asked and asked.isdigit() and int(asked) > 0:
        return int(asked)
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def fit_threads() -> int:
    """Set torch's intra-op threads to usable_cores(); returns the number set."""
    import torch

    threads = usable_cores()
    torch.set_num_threads(threads)
    return threads
