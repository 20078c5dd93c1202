"""Smoke run of benchmarks/bench_rescore.py: every schedule runs and the scoring passes follow the schedule."""

from __future__ import annotations

import json
import math
from pathlib import Path

from conftest import load_benchmark


def test_bench_rescore_quick(tmp_path: Path) -> None:
    bench = load_benchmark("bench_rescore")
    rows = bench.main(["--quick", "--out", str(tmp_path)])
    assert [r["schedule"] for r in rows] == list(bench.SCHEDULES)
    passes = {r["schedule"]: r["scoring_passes"] for r in rows}
    # 2 epochs: epoch 0 warms up, epoch 1 is the first mining epoch and always scores.
    assert passes == {
        "plain": 0,
        "warmup only": 0,
        "rescore_every=1": 1,
        "rescore_every=2": 1,
        "rescore_every=5": 1,
        "rescore_every=1, score batch 512": 1,
    }
    for r in rows:
        assert math.isfinite(r["s_per_epoch"]) and r["s_per_epoch"] > 0
    assert rows[0]["vs_plain"] == 1.0
    saved = json.loads((tmp_path / "bench_rescore_quick.json").read_text())
    assert len(saved["rows"]) == len(rows) and "Machine:" in (tmp_path / "bench_rescore_quick.md").read_text()
