"""A serving load on loopback: 2,000 requests from 8 concurrent clients to `reasongen serve` of the tiny pipeline's
registered model, most of them good, one in eight of them bad in one of several ways. Every good request gets 200
with its texts, every bad one its 4xx, none a 5xx; /ping still answers at the end. Bounded: each request gives up
after 120 s."""

from __future__ import annotations

import json
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from conftest import ping, post, record_figure, served, store_client

pytestmark = pytest.mark.slow

CLIENTS, PER_CLIENT = 8, 250
LIMITS = ["serving.max_rows=4", "serving.max_body_bytes=4096"]


def body(records: list[dict], **extra) -> bytes:
    return json.dumps({"dataframe_records": records, **extra}, ensure_ascii=False).encode()


BAD = [  # (body, the status it must get)
    (b"{not json", 400),
    (body([{"content": "类型#裙", "length_bucket": "huge"}]), 400),
    (body([{"content": "类型#裙"}] * 5), 400),
    (body([{"content": "类型#裙"}], params={"bogus": 1}), 400),
    (body([{"content": "类型#" + "裙" * 2000}]), 413),
]


def test_2000_requests_from_8_clients_get_no_5xx(pipeline) -> None:
    work, env = pipeline
    client = store_client(work)
    version = min(int(v.version) for v in client.search_model_versions("name='reasongen-adgen'"))
    rows = [json.loads(line) for line in (work / "outputs/prepare/test.jsonl").read_text().splitlines()]
    good = [body([{"content": row["content"], "aspect": row["aspect"], "length_bucket": row["length_bucket"]}
                  for row in rows[i : i + 1 + i % 2]]) for i in range(len(rows))]

    def one(index: int) -> tuple[int, int, float]:
        payload, expected = BAD[index % len(BAD)] if index % 8 == 7 else (good[index % len(good)], 200)
        started = time.perf_counter()
        status, _ = post(f"{base}/invocations", payload)
        return expected, status, time.perf_counter() - started

    command = [sys.executable, "-m", "reasongen", "serve", "--model", f"models:/reasongen-adgen/{version}", *LIMITS]
    with served(work, env, command) as base:
        started = time.perf_counter()
        with ThreadPoolExecutor(CLIENTS) as pool:
            results = list(pool.map(one, range(CLIENTS * PER_CLIENT)))
        seconds = time.perf_counter() - started
        assert ping(base)
    statuses = [status for _, status, _ in results]
    counts = {kind: sum(1 for s in statuses if s // 100 == digit) for kind, digit in (("2xx", 2), ("4xx", 4),
                                                                                       ("5xx", 5))}
    wrong = [(expected, status) for expected, status, _ in results if expected != status]
    latencies = sorted(seconds * 1000 for *_, seconds in results)
    figures = {"requests": len(results), "clients": CLIENTS, **counts, "wrong_status": len(wrong),
               "p50_ms": round(statistics.median(latencies), 1),
               "p99_ms": round(latencies[int(0.99 * len(latencies)) - 1], 1), "seconds": round(seconds, 1)}
    record_figure("serving load", **figures)
    assert len(results) == 2000 and counts["5xx"] == 0 and not wrong, (figures, wrong[:5])
