"""Progress that a log file shows: on a terminal, progress bars; elsewhere (`make run > log`, CI), where a bar
prints only when it ends, a plain line every EVERY_S seconds and at each milestone (an epoch, the end)."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, TextIO, TypeVar

EVERY_S = 30.0  # at most this long between two lines of a long step
T = TypeVar("T")


def interactive(stream: TextIO | None = None) -> bool:
    """Whether output goes to a terminal (bars redraw there), as opposed to a file or a pipe."""
    stream = stream or sys.stdout
    return hasattr(stream, "isatty") and stream.isatty()


def duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


class Lines:
    """Timestamped lines for a log: `say` always writes, `due` tells whether every_s has passed since the last."""

    def __init__(self, every_s: float = EVERY_S, clock: Callable[[], float] = time.monotonic,
                 stream: TextIO | None = None):
        self.every_s = every_s
        self.clock = clock
        self.stream = stream
        self.start = self.last = clock()

    def due(self) -> bool:
        return self.clock() - self.last >= self.every_s

    def elapsed(self) -> float:
        return self.clock() - self.start

    def say(self, text: str) -> None:
        self.last = self.clock()
        say(text, self.stream)


def say(text: str, stream: TextIO | None = None) -> None:
    """One line with the time of day, flushed at once (a log file shows it while the step still runs)."""
    print(f"[{time.strftime('%H:%M:%S')}] {text}", file=stream or sys.stdout, flush=True)


def counted(items: Sequence[T], what: str, size: Callable[[T], int] = lambda item: 1, enabled: bool = True,
            lines: Lines | None = None) -> Iterator[T]:
    """items one by one, counting `size(item)` units each: a tqdm bar on a terminal, else a line `what: done/total
    (share), elapsed, ~left` every EVERY_S seconds and when all are done (lines: where and how often)."""
    total = sum(size(item) for item in items)
    if not enabled:
        yield from items
        return
    if lines is None and interactive():
        from tqdm.auto import tqdm

        with tqdm(total=total, desc=what, unit="it") as bar:
            for item in items:
                yield item
                bar.update(size(item))
        return
    lines = lines or Lines()
    done = 0
    for item in items:
        yield item
        done += size(item)
        if lines.due() or done == total:
            left = lines.elapsed() / done * (total - done) if done else 0.0
            lines.say(f"{what}: {done}/{total} ({100 * done / max(total, 1):.0f}%), {duration(lines.elapsed())}"
                      + (f", ~{duration(left)} left" if done < total else ""))


def losses(metrics: dict[str, Any], names: Iterable[str]) -> str:
    found = [f"{name} {float(metrics[name]):.4f}" for name in names if name in metrics]
    return ", ".join(found) or "no loss yet"
