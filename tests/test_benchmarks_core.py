"""Smoke runs of the core benchmarks (bench_score, bench_table) at tiny sizes: they run and write their results.

Timings are not checked here (they live in the benchmark outputs); what is checked is that every configuration ran,
that the numbers are well-formed, and that the files were written.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import load_benchmark
from reference import needs_cuda
from torch.utils.data import DataLoader, TensorDataset

from hardmine.scoring.engine import score


def test_bench_score_quick(tmp_path: Path) -> None:
    bench = load_benchmark("bench_score")
    rows = bench.main(["--quick", "--case", "mlp", "--out", str(tmp_path)])
    assert [r["case"] for r in rows] == ["mlp"]
    row = rows[0]
    assert row["n"] == 32 and row["per_sample_n"] == 4
    for key in ("bare_per_s", "score_per_s", "per_sample_per_s", "score_vs_bare", "score_vs_per_sample"):
        assert math.isfinite(row[key]) and row[key] > 0, key
    assert row["score_vs_bare"] == pytest.approx(row["score_per_s"] / row["bare_per_s"])
    saved = json.loads((tmp_path / "bench_score_cpu_quick.json").read_text())
    assert saved["rows"][0]["case"] == "mlp"
    assert "| mlp | 32 |" in (tmp_path / "bench_score_cpu_quick.md").read_text()


@pytest.mark.parametrize("case", ["mlp_loss_fn", "mlp_regression"])
def test_bench_score_loss_fn_cases_quick(tmp_path: Path, case: str) -> None:
    bench = load_benchmark("bench_score")
    (row,) = bench.main(["--quick", "--case", case, "--out", str(tmp_path)])
    assert row["case"] == case and row["n"] == 32
    assert math.isfinite(row["score_vs_bare"]) and row["score_vs_bare"] > 0
    model, data = bench.make_case(case, 8)
    table = score(model, DataLoader(data, batch_size=4), loss_fn=bench.case_loss(case), progress=False)
    with torch.no_grad():
        expected = bench.case_loss(case)(model(data.tensors[0]), data.tensors[1])
    np.testing.assert_allclose(table["loss"], expected.reshape(8, -1).mean(1).numpy(), rtol=1e-5, atol=1e-7)


def test_bench_score_rejects_unknown_case() -> None:
    bench = load_benchmark("bench_score")
    with pytest.raises(ValueError, match="Expected argument `case`"):
        bench.make_case("vgg", 4)


def test_bench_table_quick(tmp_path: Path) -> None:
    bench = load_benchmark("bench_table")
    rows = bench.main(["--quick", "--out", str(tmp_path)])
    assert [r["step"] for r in rows] == list(bench.STEPS)
    by_step = {r["step"]: r for r in rows}
    # index, label, pred (int64) and five float32 measures are 44 bytes per row before the id column.
    assert by_step["build"]["table_bytes_per_row"] > 44
    assert by_step["csv"]["file_bytes"] > 0 and by_step["parquet"]["file_bytes"] > 0
    for r in rows:
        assert r["n"] == 20_000 and r["seconds"] >= 0 and r["peak_bytes"] >= r["before_bytes"] > 0
    assert len(json.loads((tmp_path / "bench_table_quick.json").read_text())["rows"]) == len(bench.STEPS)


def test_bench_table_scores_like_score() -> None:
    bench = load_benchmark("bench_table")
    table = bench.make_scores(100)
    assert list(table.columns) == [
        "index",
        "id",
        "label",
        "pred",
        "confidence",
        "label_prob",
        "margin",
        "entropy",
        "loss",
    ]
    assert table["index"].tolist() == list(range(100))
    assert ((table["label_prob"] >= 0.5) == (table["pred"] == table["label"])).all()


# --------------------------------------------------------------------------- the CUDA path the benchmark measures


def _cuda_case(n: int = 67) -> tuple[torch.nn.Module, TensorDataset]:
    g = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Conv2d(3, 8, 3, padding=1),
        torch.nn.BatchNorm2d(8),
        torch.nn.ReLU(),
        torch.nn.AdaptiveAvgPool2d(1),
        torch.nn.Flatten(),
        torch.nn.Linear(8, 5),
    )
    return model, TensorDataset(torch.randn(n, 3, 8, 8, generator=g), torch.randint(0, 5, (n,), generator=g))


@needs_cuda
def test_score_on_cuda_with_pinned_loader_equals_cpu() -> None:
    model, ds = _cuda_case()
    expected = score(model, DataLoader(ds, batch_size=16), progress=False)
    pinned = DataLoader(ds, batch_size=16, shuffle=True, pin_memory=True)
    got = score(model, pinned, device="cuda", progress=False, channels_last=True)  # non_blocking copies
    assert next(model.parameters()).device.type == "cpu"  # moved back
    pd.testing.assert_frame_equal(got, expected, check_exact=False, rtol=1e-4, atol=1e-5)


@needs_cuda
@pytest.mark.parametrize("amp", ["fp16", "bf16"])
def test_score_on_cuda_with_amp_is_close_to_float32(amp: str) -> None:
    model, ds = _cuda_case()
    model = model.cuda()
    loader = DataLoader(ds, batch_size=16, pin_memory=True)
    full = score(model, loader, progress=False)
    low = score(model, loader, progress=False, amp=amp)
    assert low["label_prob"].dtype == np.float32
    np.testing.assert_allclose(low["label_prob"], full["label_prob"], atol=0.05)
    assert (low["pred"] == full["pred"]).mean() > 0.9


@needs_cuda
def test_bench_score_quick_on_cuda(tmp_path: Path) -> None:
    bench = load_benchmark("bench_score")
    rows = bench.main(["--quick", "--device", "cuda", "--amp", "fp16", "--channels-last", "--out", str(tmp_path)])
    assert [r["case"] for r in rows] == ["resnet18", "mlp"]
    assert all(r["amp"] == "fp16" and r["score_per_s"] > 0 for r in rows)
    assert (tmp_path / "bench_score_cuda_quick.json").is_file()
