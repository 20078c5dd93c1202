import json

import pytest
from conftest import load_benchmark


def test_quick_run_writes_results(tmp_path, capsys):
    bench = load_benchmark("bench_label_issues")
    result = bench.main(["--quick", "--out", str(tmp_path)])
    saved = json.loads((tmp_path / "label_issues_quick.json").read_text())
    assert saved["meta"]["quick"] is True
    assert (tmp_path / "label_issues_quick.md").read_text().startswith("# Label-issue benchmark")
    assert "| hardmine dynamics: aum |" in capsys.readouterr().out
    agg = result["aggregate"]["0.1"]
    assert agg["n_flipped"] == 30
    for name, r in agg["rankings"].items():
        assert 0.0 <= r["auroc"]["mean"] <= 1.0, name
        assert 0.0 <= r["precision_at_k"]["mean"] <= 1.0, name
    assert agg["rankings"]["hardmine dynamics: aum"]["flagged"]["mean"] >= 0
    assert set(agg["retrain"]) >= {"no removal", "oracle (remove the flipped)"}
    assert agg["retrain"]["oracle (remove the flipped)"]["removed"] == 30
    mem = agg["memorise"]
    assert 0.0 <= mem["_train_accuracy_on_noisy_labels"]["value"]["mean"] <= 1.0
    assert set(mem) == {
        "_train_accuracy_on_noisy_labels",
        "hardmine dynamics: aum",
        "hardmine dynamics: mean label_prob",
        "in-sample label_prob (final model)",
    }
    assert "Memorisation run (4 epochs" in (tmp_path / "label_issues_quick.md").read_text()
    if bench.CLEANLAB is not None:
        # cleanlab's default label quality is the self-confidence: the same ranking as hardmine's on the same probs.
        ours = agg["rankings"]["hardmine cv: self_confidence"]
        theirs = agg["rankings"]["cleanlab get_label_quality_scores"]
        assert ours["auroc"]["mean"] == pytest.approx(theirs["auroc"]["mean"], abs=1e-9)
    else:
        assert "not installed" in saved["meta"]["cleanlab_note"]
