"""Smoke run of benchmarks/bench_resume.py: every step ran and the result files name the machine."""

import json

import pytest
from conftest import load_benchmark


@pytest.mark.slow
def test_bench_resume_quick_writes_results(tmp_path):
    bench = load_benchmark("bench_resume")
    rows = bench.main(["--quick", "--out", str(tmp_path)])
    steps = [r["step"] for r in rows]
    assert steps == [
        "scan folder (verify + decode each file)",
        "score, no checkpoint",
        "score, checkpoint every 1 batch(es)",
        "score, checkpoint every 10 batch(es)",
        "fingerprint: hash of the model weights",
        "one checkpoint save (rows + meta.json)",
        "resume after half the batches",
    ]
    assert all(r["seconds"] > 0 for r in rows)
    saved = json.loads((tmp_path / "bench_resume_quick.json").read_text())
    assert saved["rows"] == rows and saved["images"] == 64 and saved["arch"] == "resnet18"
    assert saved["machine"]["torch"] and saved["machine_line"].startswith("cpu: ")
    text = (tmp_path / "bench_resume_quick.md").read_text()
    assert text.startswith("64 digit PNGs, resnet18 at 32x32")
    assert f"Machine: {saved['machine_line']}" in text
