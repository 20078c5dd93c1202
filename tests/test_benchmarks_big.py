"""Smoke run of benchmarks/bench_big.py at tiny sizes: every engine and rank ran, and the files were written."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import load_benchmark

import hardmine as hm
from hardmine.core.columns import SCORE_COLUMNS

pytest.importorskip("duckdb")


def test_bench_big_quick(tmp_path: Path) -> None:
    bench = load_benchmark("bench_big")
    rows = bench.main(["--quick", "--out", str(tmp_path), "--work", str(tmp_path)])
    table = [r for r in rows if r["part"] == "table"]
    assert [r["engine"] for r in table] == list(bench.ENGINES)
    for r in table:
        assert r["n"] == 20_000 and r["dataset_bytes"] > 0 and r["hard_file_bytes"] > 0
        assert all(v >= 0 for v in r["seconds"].values()) and r["peak_rss_bytes"] > 0
    # the out-of-core and the in-memory engines found the same hard rows
    assert table[0]["hard"] == table[2]["hard"] > 0
    tasks = [r for r in rows if r["part"] == "task"]
    assert [(r["task"], r["kind"]) for r in tasks] == [("multiclass", "multiclass"), ("regression", "regression")]
    assert all(r["n"] == 20_000 and r["peak_rss_bytes"] > 0 for r in tasks)
    assert tasks[1]["hard"] == 2_000  # hard_fraction=0.1, exactly
    sampler = [r for r in rows if r["part"] == "sampler"]
    assert [r["rank"] for r in sampler] == [0, 1] and sum(r["draws"] for r in sampler) == 50_000
    saved = json.loads((tmp_path / "bench_big_quick.json").read_text())
    assert len(saved["rows"]) == len(rows)
    report = (tmp_path / "bench_big_quick.md").read_text()
    assert "| 20,000 | duckdb |" in report and "| 20,000 | multiclass | multiclass |" in report
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith("bench_big-")] == []  # big files cleaned up


def test_make_dataset_is_a_score_table(tmp_path: Path) -> None:
    bench = load_benchmark("bench_big")
    folder = bench.make_dataset(tmp_path / "s", 250, rows_per_file=100)
    assert len(list(folder.iterdir())) == 3
    table = pd.read_parquet(folder)
    assert list(table.columns) == list(SCORE_COLUMNS)
    assert table["index"].tolist() == list(range(250))
    assert ((table["label_prob"] >= 0.5) == (table["pred"] == table["label"])).all()
    assert hm.open_scores(folder).settings == {"num_classes": 2}


def test_bench_streamed_quick(tmp_path: Path) -> None:
    bench = load_benchmark("bench_streamed")
    rows = bench.main(["--quick", "--out", str(tmp_path)])
    assert [r["n"] for r in rows] == [3000, 9000]
    assert [r["rows"] for r in rows] == [3000, 9000] and [r["files"] for r in rows] == [2, 5]
    assert all(r["peak_rss"] > 0 and r["rss_anon_end"] > 0 for r in rows)
    assert "| 9,000 | 5 |" in (tmp_path / "bench_streamed_quick.md").read_text()


@pytest.mark.parametrize("task", ["multiclass", "regression"])
def test_make_task_dataset_steps_equal_in_memory(tmp_path: Path, task: str) -> None:
    """The task benchmark's tables are real score tables: its out-of-core steps equal the in-memory ones."""
    bench = load_benchmark("bench_big")
    folder = bench.make_task_dataset(tmp_path / "s", 300, task, rows_per_file=120)
    table = pd.concat([hm.read_parquet(f) for f in sorted(folder.iterdir())], ignore_index=True)
    table.attrs = hm.read_parquet(sorted(folder.iterdir())[0]).attrs
    assert table["index"].tolist() == list(range(300))
    ds = hm.open_scores(folder)
    kwargs = {} if task == "multiclass" else {"hard_fraction": 0.1}
    expected, got = hm.split(table, **kwargs), ds.split(**kwargs)
    assert "group" not in expected.columns  # no positive class: easy/hard only, both ways
    assert got.summary().kind == hm.summary(expected).kind == task
    assert got.counts()["hard"] == int((expected["difficulty"] == "hard").sum())
    out = bench.task_child(task, folder, tmp_path)
    assert out["hard"] == got.counts()["hard"]
    by = {} if task == "multiclass" else {"by": "loss"}
    weights = hm.sample_weights(expected if task == "multiclass" else table, **by).numpy()
    np.testing.assert_allclose(np.load(tmp_path / "w.npy"), weights, rtol=1e-6)
