"""The machine the figures come from, the FLOP/s its cores reach on one large matmul, and child processes timed with
their own peak memory."""

from __future__ import annotations

import os
import platform
import subprocess
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch


def cpu_model() -> str:
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def machine_info(precision: str) -> dict[str, object]:
    return {"cpu": cpu_model(), "cores": os.cpu_count(), "torch threads": torch.get_num_threads(),
            "torch": torch.__version__, "training precision": precision,
            "load average (1 min, at start)": round(os.getloadavg()[0], 2)}


def matmul_flops(precision: str, size: int = 2048, seconds: float = 2.0, device: str = "cpu") -> dict[str, float | str]:
    """FLOP/s of a size x size matmul in the dtype training computes its matmuls in (bf16 under bf16-mixed,
    else fp32): the ceiling the training FLOP/s are compared with."""
    dtype = torch.bfloat16 if precision.startswith("bf16") else torch.float32
    a, b = (torch.randn(size, size, dtype=dtype, device=device) for _ in range(2))
    torch.mm(a, b)  # warm-up: first-call allocation and kernel selection
    runs, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        torch.mm(a, b)
        runs += 1
    if device != "cpu":
        torch.cuda.synchronize()
    elapsed = time.perf_counter() - started
    return {"flops_per_s": 2 * size**3 * runs / elapsed, "dtype": str(dtype).removeprefix("torch."), "size": size}


@dataclass
class ChildRun:
    seconds: float
    peak_rss_mb: float
    returncode: int
    output: str


def run_child(command: Sequence[str], env: dict[str, str] | None = None, cwd: Path | None = None,
              timeout_s: float = 900) -> ChildRun:
    """Run a command, timing it, with its peak resident memory: the kernel's high-water mark (VmHWM) of the child,
    read every 50 ms while it runs. (rusage's ru_maxrss would not do: it counts the parent's memory copied at the
    fork before the child's exec.)"""
    started, peak_kb = time.perf_counter(), 0
    with tempfile.TemporaryFile() as log:
        child = subprocess.Popen(list(command), stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                 env=env, cwd=cwd)
        while True:
            pid, status = os.waitpid(child.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() - started > timeout_s:
                child.kill()
                _, status = os.waitpid(child.pid, 0)
                break
            peak_kb = max(peak_kb, high_water_kb(child.pid))
            time.sleep(0.05)
        child.returncode = os.waitstatus_to_exitcode(status)  # reaped here: Popen must not wait for it again
        seconds = time.perf_counter() - started
        log.seek(0)
        output = log.read().decode(errors="replace")
    return ChildRun(seconds, peak_kb / 1024, child.returncode, output)


def high_water_kb(pid: int) -> int:
    """The process's peak resident set so far (VmHWM, kB); 0 where /proc does not say."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0
