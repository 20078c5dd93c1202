import json

import pytest
from conftest import load_benchmark


def test_bench_training_quick(tmp_path, capsys):
    bench = load_benchmark("bench_training")
    result = bench.main(["--quick", "--out", str(tmp_path)])
    assert set(result["summary"]) == set(bench.METHODS)
    saved = json.loads((tmp_path / "bench_training_quick.json").read_text())
    assert saved["summary"] == result["summary"]
    for method, runs in result["runs"].items():
        assert len(runs) == 2, method
        for run in runs:
            assert all(0.0 <= run[k] <= 1.0 for k in ("precision", "recall", "f1")), (method, run)
    assert result["summary"]["balanced"]["f1_minus_balanced_mean"] == 0.0
    table = (tmp_path / "bench_training_quick.md").read_text()
    assert table.count("\n| ") == len(bench.METHODS) + 1
    assert "hardminer+share" in capsys.readouterr().out


def test_rare_positive_data_keeps_the_rate():
    bench = load_benchmark("bench_training")
    train, test = bench.make_data(0, digit=8, rate=0.03)
    pos = int(train.tensors[1].sum())
    assert pos / len(train) == pytest.approx(0.03, abs=0.003)
    assert int(test.tensors[1].sum()) / len(test) == pytest.approx(0.1, abs=0.03)  # natural rate of one digit
