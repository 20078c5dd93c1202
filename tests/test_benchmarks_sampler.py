import json

import pytest
from conftest import load_benchmark


def test_bench_sampler_quick_in_process(tmp_path, capsys):
    bench = load_benchmark("bench_sampler")
    out = tmp_path / "sampler.json"
    assert bench.main(["--quick", "--in-process", "--sizes", "2000", "--threads", "1", "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    rows = {(r["sampler"], r["mode"], r["how"]): r for r in result["rows"]}
    assert set(rows) == {
        (s, m, h)
        for s, m in [("hardmine", "replacement"), ("torch", "replacement"), ("hardmine", "cover")]
        for h in ("iterate", "tensor")
    }
    assert all(r["seconds"] > 0 and r["peak_mb"] > 0 for r in rows.values())
    assert "| 2e+03 | iterate |" in result["markdown"]
    assert "speed-up" in capsys.readouterr().out


@pytest.mark.slow
def test_bench_sampler_child_process_reports_memory():
    bench = load_benchmark("bench_sampler")
    got = bench._run("hardmine", 1000, "tensor", "replacement", 1, timeout=120)
    assert got["seconds"] > 0 and got["peak_mb"] > got["extra_mb"] >= 0
