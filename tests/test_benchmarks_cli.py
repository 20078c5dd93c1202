"""Smoke run of benchmarks/bench_cli.py: every command ran and the result files name the machine."""

import json

from conftest import load_benchmark


def test_bench_cli_quick_writes_results(tmp_path):
    bench = load_benchmark("bench_cli")
    rows = bench.main(["--quick", "--out", str(tmp_path)])
    assert [r["command"] for r in rows] == [
        "python -c pass (the interpreter alone)",
        "hardmine --help",
        "hardmine --version",
        "hardmine score --help",
        "hardmine completion bash",
    ]
    assert all(r["seconds"] > 0 and r["fastest"] == r["seconds"] and r["runs"] == 1 for r in rows)
    saved = json.loads((tmp_path / "bench_cli_quick.json").read_text())
    assert saved["rows"] == rows and saved["repeats"] == 1 and 1 <= saved["cores"] <= 2
    text = (tmp_path / "bench_cli_quick.md").read_text()
    assert "| `hardmine --help` |" in text and f"Machine: {saved['machine_line']}" in text
