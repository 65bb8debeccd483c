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


def _asked(*names: str) -> int | None:
    """The first of the environment variables `names` that is set, as a positive count, or None."""
    asked = next((os.environ[name] for name in names if os.environ.get(name)), "")
    return int(asked) if asked.isdigit() and int(asked) > 0 else None


def asked_threads() -> int | None:
    """The thread count the user set (REASONGEN_THREADS, else OMP_NUM_THREADS), or None."""
    return _asked("REASONGEN_THREADS", "OMP_NUM_THREADS")


def affinity_cores() -> int:
    """The cores this process may use, whatever the user asked."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def usable_cores() -> int:
    """asked_threads() when given, else affinity_cores()."""
    return asked_threads() or affinity_cores()


# A served request decodes a handful of rows. Below this size a model's ops on them are too small to share out:
# with two sleeping threads (PASSIVE) each op waits for a wake-up (a one-product request of the default model took
# 869 ms against 540 ms on one thread), and with spinning ones another process on a core slows every op (1.6-4.8 s).
SMALL_MODEL_PARAMETERS = 20_000_000


def serving_threads(parameters: int) -> int:
    """Torch threads for a server of a model with `parameters` weights: asked_threads() when given, one for a small
    model, else usable_cores()."""
    return asked_threads() or (1 if parameters < SMALL_MODEL_PARAMETERS else usable_cores())


def serving_processes(threads: int) -> int:
    """Server processes, each with `threads` torch threads: REASONGEN_SERVE_PROCESSES when set, else as many as the
    cores hold (a small model's requests are mostly Python, one core's work each: a second process answers a second
    request at the same time, where a second thread would wait for the first's interpreter lock)."""
    return _asked("REASONGEN_SERVE_PROCESSES") or max(1, affinity_cores() // max(1, threads))


def fit_threads() -> int:
    """Set torch's intra-op threads to usable_cores(); returns the number set."""
    import torch

    threads = usable_cores()
    torch.set_num_threads(threads)
    return threads


def serving_advice(parameters: int, threads: int, processes: int) -> str | None:
    """A line for the user when their thread setting (REASONGEN_THREADS / OMP_NUM_THREADS, often exported for
    training) leaves a small model's server with fewer processes than cores: such a request gains little from a
    second thread and would have had a core of its own (4 clients on 2 cores: p50 3.0 s against 0.83 s). None when
    nothing applies, or when the user chose the processes too."""
    if (parameters >= SMALL_MODEL_PARAMETERS or threads < 2 or not asked_threads()
            or _asked("REASONGEN_SERVE_PROCESSES") or processes >= affinity_cores()):
        return None
    return (f"note: {threads} torch threads per server process (REASONGEN_THREADS / OMP_NUM_THREADS), so "
            f"{processes} process(es) on {affinity_cores()} cores; this small model serves concurrent requests "
            "faster with REASONGEN_THREADS=1 (a process per core)")
