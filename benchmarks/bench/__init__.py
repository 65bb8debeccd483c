"""`make bench`: the project's speed figures, each measured beside its baseline in one run on one machine.

`python -m benchmarks.bench` writes reports/bench.json, reports/bench.md and reports/bench_gpu.json."""
