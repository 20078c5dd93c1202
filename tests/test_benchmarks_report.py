import json

from conftest import load_benchmark


def test_quick_run_writes_results(tmp_path):
    bench = load_benchmark("bench_report")
    result = bench.main(["--quick", "--out", str(tmp_path), "--no-browser"])
    saved = json.loads((tmp_path / "bench_report_quick.json").read_text())
    assert saved["quick"] is True and saved["browser"] is False
    (row,) = saved["rows"]
    assert row["rows"] == 2000 and row["thumbnails"] == 2000 and row["html_mb"] > 0
    assert result["rows"][0]["build_s"] > 0
    md = (tmp_path / "bench_report_quick.md").read_text()
    assert md.startswith("# Interactive report benchmark") and "| 2,000 | 2,000 |" in md and "Machine:" in md
