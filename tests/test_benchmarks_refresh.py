"""Smoke run of benchmarks/bench_refresh.py: every case timed, the result files name the machine."""

import json

from conftest import load_benchmark


def test_bench_refresh_quick_writes_results(tmp_path):
    bench = load_benchmark("bench_refresh")
    rows = bench.main(["--quick", "--sizes", "5000", "--out", str(tmp_path)])
    assert [r["case"] for r in rows] == ["refresh", "refresh, exclude 0.4", "rank: radix", "rank: torch.sort"]
    assert all(r["n"] == 5000 and r["ms"] > 0 for r in rows)
    saved = json.loads((tmp_path / "bench_refresh_quick.json").read_text())
    assert saved["machine"]["torch_threads"] == 1 and saved["rows"] == rows
    assert "Machine:" in (tmp_path / "bench_refresh_quick.md").read_text()


def test_the_benchmark_sampler_has_losses_of_four_ages():
    bench = load_benchmark("bench_refresh")
    sampler = bench._sampler(400, 0.0)
    table = sampler.observed.table(now=4)
    assert bool(table["seen"].all()) and sorted(table["age"].unique().tolist()) == [0.0, 1.0, 2.0, 3.0]
