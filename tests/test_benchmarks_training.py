import json

import pytest
import torch
from conftest import load_benchmark


def test_bench_training_quick_all_tasks(tmp_path, capsys):
    bench = load_benchmark("bench_training")
    results = bench.main(["--quick", "--task", "all", "--out", str(tmp_path)])
    assert list(results) == list(bench.TASKS) == ["rare", "balanced", "longtail", "noisy"]
    out = capsys.readouterr().out
    for task, result in results.items():
        methods = [m for m in bench.METHODS if task == "rare" or m != "hardminer+share"]
        assert "hardminer-nobalance" in methods
        assert list(result["summary"]) == list(result["runs"]) == methods, task
        saved = json.loads((tmp_path / f"bench_training_{task}_quick.json").read_text())
        assert saved["task"] == task
        assert saved["summary"] == result["summary"]
        assert saved["machine"] and "torch" in saved["machine"]
        metrics = ["precision", "recall", "f1"] if task == "rare" else ["accuracy", "balanced_accuracy"]
        main = "f1" if task == "rare" else "balanced_accuracy"
        ref = "balanced" if task in ("rare", "longtail") else "uniform"
        assert (saved["metrics"], saved["main_metric"], saved["reference"]) == (metrics, main, ref)
        for method, runs in saved["runs"].items():
            assert len(runs) == 2, (task, method)
            for run in runs:
                assert set(run) == set(metrics)
                assert all(0.0 <= run[k] <= 1.0 for k in metrics), (task, method, run)
        for method, row in saved["summary"].items():
            assert all(0.0 <= row[f"{k}_mean"] <= 1.0 for k in metrics), (task, method, row)
            diffs = [r[main] - b[main] for r, b in zip(saved["runs"][method], saved["runs"][ref], strict=True)]
            assert row[f"{main}_minus_{ref}_mean"] == pytest.approx(sum(diffs) / 2)
            assert row[f"{main}_wins_over_{ref}"] == sum(d > 0 for d in diffs)
        assert saved["summary"][ref][f"{main}_minus_{ref}_mean"] == 0.0
        table = (tmp_path / f"bench_training_{task}_quick.md").read_text()
        assert table in out
        lines = table.splitlines()
        assert lines[0].startswith(f"Task {task}: ") and "2 seeds 100..101" in lines[0] and "2 epochs" in lines[0]
        assert ("hardminer+share is not run" in lines[0]) == (task != "rare")
        if task == "rare":
            header = "| method | precision | recall | F1 | F1 − balanced (paired) | seeds beating balanced | s / run |"
        else:
            header = f"| method | accuracy | bal. acc | bal. acc − {ref} (paired) | seeds beating {ref} | s / run |"
        assert lines[2] == header
        assert [line.split(" | ")[0] for line in lines[4:]] == [f"| {m}" for m in methods]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        f"bench_training_{t}_quick.{ext}" for t in bench.TASKS for ext in ("json", "md")
    )


def test_rare_positive_data_keeps_the_rate():
    bench = load_benchmark("bench_training")
    train, test = bench.make_data(0, digit=8, rate=0.03)
    pos = int(train.tensors[1].sum())
    assert pos / len(train) == pytest.approx(0.03, abs=0.003)
    assert int(test.tensors[1].sum()) / len(test) == pytest.approx(0.1, abs=0.03)  # natural rate of one digit


def test_multiclass_tasks_change_only_the_training_set():
    bench = load_benchmark("bench_training")
    base_train, base_test, _ = bench.make_multiclass_data("balanced", 0)
    assert (len(base_train), len(base_test)) == (898, 899)
    assert sorted(set(base_train.tensors[1].tolist())) == list(range(10))

    tail_train, tail_test, _ = bench.make_multiclass_data("longtail", 0)
    assert torch.equal(tail_test.tensors[1], base_test.tensors[1])
    full = torch.bincount(base_train.tensors[1], minlength=10).tolist()
    kept = torch.bincount(tail_train.tensors[1], minlength=10).tolist()
    assert kept == [max(3, round(n * 0.6**c)) for c, n in enumerate(full)]

    noisy_train, noisy_test, facts = bench.make_multiclass_data("noisy", 0)
    assert torch.equal(noisy_test.tensors[1], base_test.tensors[1])
    assert torch.equal(noisy_train.tensors[0], base_train.tensors[0])
    wrong = int((noisy_train.tensors[1] != base_train.tensors[1]).sum())
    assert facts == {"train_relabelled": round(0.2 * 898), "train_wrong": wrong}
    assert 0.15 * 898 < wrong <= 0.2 * 898  # a tenth of the random labels land on the true class
    again, _, _ = bench.make_multiclass_data("noisy", 0)
    assert torch.equal(again.tensors[1], noisy_train.tensors[1])  # seeded
