"""The serving figures: the model registered in a throw-away MLflow store (as the register stage registers it),
served by `reasongen serve` (what `make serve` runs), and N clients each sending one product per request."""

from __future__ import annotations

import json
import math
import os
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import chdir
from pathlib import Path
from typing import Any

from benchmarks.bench.inputs import Inputs
from benchmarks.bench.loopback import post, server
from reasongen.config import to_container

REGISTERED = "reasongen-bench"


def register(inputs: Inputs, store: Path) -> str:
    """Register the model folder in a fresh sqlite store under `store` (artifacts there too); its models:/ URI."""
    from reasongen import serving, tracking
    from reasongen.adgen import pyfunc

    generation = to_container(inputs.cfg.generation)
    model_dir = inputs.model_dir.resolve()  # before chdir: the folder may be given relative to the checkout
    store = store.resolve()
    store.mkdir(parents=True, exist_ok=True)
    os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{store / 'mlflow.db'}"
    with chdir(store):  # the embedded store puts artifacts under ./mlartifacts
        _, version = tracking.log_model(model_dir, REGISTERED, generation,
                                        serving.check_limits(inputs.cfg.serving, generation), {}, pyfunc)
    return f"models:/{REGISTERED}/{version}"


def percentile(values: list[float], share: float) -> float:
    """The nearest-rank percentile of values (share in (0, 1])."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


def load(inputs: Inputs, store: Path, clients: int, seconds: float) -> dict[str, Any]:
    """p50 / p99 latency of one-product requests from `clients` threads for `seconds`, with the registered
    (default) decoding; every non-200 is counted."""
    uri = register(inputs, store)
    rows = inputs.rows("test")
    bodies = [json.dumps({"dataframe_records": [{"content": row["content"]}]}, ensure_ascii=False).encode()
              for row in rows]
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false", "PYTHONPATH": os.pathsep.join(sys.path)}
    latencies: list[float] = []
    statuses: list[int] = []
    with server([sys.executable, "-m", "reasongen", "serve", "--model", uri], store, env) as base:
        post(f"{base}/invocations", bodies[0])  # warm-up: the first request builds the decoding tables
        stop = time.perf_counter() + seconds

        def client(offset: int) -> None:
            index = offset
            while time.perf_counter() < stop:
                started = time.perf_counter()
                status, _ = post(f"{base}/invocations", bodies[index % len(bodies)])
                latencies.append((time.perf_counter() - started) * 1000)
                statuses.append(status)
                index += clients

        with ThreadPoolExecutor(clients) as pool:
            list(pool.map(client, range(clients)))
    return {"requests": len(latencies), "clients": clients, "seconds": seconds,
            "non_200": sum(status != 200 for status in statuses),
            "p50_ms": statistics.median(latencies), "p99_ms": percentile(latencies, 0.99)}
