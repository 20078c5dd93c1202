"""Smoke run of benchmarks/bench_dense.py at a tiny size: every case runs and the result files are written."""

from __future__ import annotations

import json
import math
from pathlib import Path

from conftest import load_benchmark


def test_bench_dense_quick(tmp_path: Path) -> None:
    bench = load_benchmark("bench_dense")
    rows = bench.main(["--quick", "--case", "lraspp", "--out", str(tmp_path)])
    rows += bench.main(["--quick", "--case", "fasterrcnn", "--out", str(tmp_path)])
    assert [r["case"] for r in rows] == ["lraspp", "fasterrcnn"]
    for row in rows:
        assert row["n"] == 4 and row["size"] == 64
        for key in ("bare_per_s", "score_per_s", "score_vs_bare"):
            assert math.isfinite(row[key]) and row[key] > 0, key
        assert math.isclose(row["score_vs_bare"], row["score_per_s"] / row["bare_per_s"])
    seg = rows[0]
    # per-image results only: the same bytes per image at 64x64 and 32x32
    assert seg["result_bytes_per_image"] == seg["result_bytes_per_image_half_size"]
    saved = json.loads((tmp_path / "bench_dense_quick.json").read_text())  # the last run's file
    assert [r["case"] for r in saved["rows"]] == ["fasterrcnn"]
    assert "| fasterrcnn | 4 | 64 |" in (tmp_path / "bench_dense_quick.md").read_text()
