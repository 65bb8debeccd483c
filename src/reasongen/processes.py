"""Pure-Python work per row over several processes: the rules, the edits and the selection of Task A are Python
(string matching), which one process runs on one core while torch's decoding uses them all. Forked workers see
the parent's objects (the clause bank, the lexicon) without pickling them; only results travel back."""

from __future__ import annotations

import multiprocessing
import sys
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from reasongen.threads import usable_cores

Item = TypeVar("Item")
Result = TypeVar("Result")

MIN_ITEMS_PER_WORKER = 32  # below this a fork (tens of ms) costs more than it saves: a server's one request
_JOB: tuple[Callable[[Any], Any], Sequence[Any]] | None = None  # what the forked workers run, inherited by fork


def fork_map(function: Callable[[Item], Result], items: Sequence[Item], workers: int | None = None) -> list[Result]:
    """[function(item) for item in items], in order, split into contiguous chunks over `workers` forked processes
    (default: usable_cores). Serial with one worker, with few items, off Linux (fork is unsafe on macOS and absent on
    Windows), in a daemonic process (which may not have children), or inside a worker.
    function must not use torch (a forked child must not touch the parent's OpenMP pool) and must be
    deterministic per item: a worker's caches and random state die with it."""
    global _JOB
    workers = min(workers or usable_cores(), len(items) // MIN_ITEMS_PER_WORKER)
    if workers < 2 or _JOB is not None or not can_fork():
        return [function(item) for item in items]
    bounds = [(len(items) * k // workers, len(items) * (k + 1) // workers) for k in range(workers)]
    _JOB = (function, items)
    try:
        with multiprocessing.get_context("fork").Pool(workers) as pool:
            parts = pool.map(_run_chunk, bounds, chunksize=1)
    finally:
        _JOB = None
    return [result for part in parts for result in part]


def can_fork() -> bool:
    """Whether this process may fork workers: on Linux (fork is unsafe on macOS once torch has threads, and absent
    on Windows), and not from a daemonic process (which may not have children)."""
    return sys.platform.startswith("linux") and not multiprocessing.current_process().daemon


def _run_chunk(bounds: tuple[int, int]) -> list[Any]:
    assert _JOB is not None  # set by fork_map before the pool forks
    function, items = _JOB
    return [function(items[index]) for index in range(*bounds)]
