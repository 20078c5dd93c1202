import json
import re
import shutil
import subprocess

import pytest
import torch
from conftest import BENCHMARKS, load_benchmark
from reference import needs_cuda
from torch.utils.data import DataLoader, TensorDataset


@pytest.fixture(autouse=True)
def _benchmarks_on_path(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCHMARKS))  # the script imports its sibling _common, as `python benchmarks/x.py`


def test_bench_selection_quick(tmp_path, capsys):
    bench = load_benchmark("bench_selection")
    results = bench.main(["--quick", "--out", str(tmp_path), "--methods", *bench.METHODS])
    saved = json.loads((tmp_path / "bench_selection_quick.json").read_text())
    assert saved["machine"] and "torch" in saved["machine"] and saved["setup"] == results["setup"]
    summary = saved["rows"]["0.0"]["summary"]
    assert list(summary) == list(bench.METHODS)
    assert summary["uniform"]["final_minus_uniform"] == 0.0 and summary["uniform"]["steps_ratio_median"] == 1.0
    for method, row in summary.items():
        assert 0.0 <= row["final_mean"] <= 1.0 and row["seeds"] == 2, method
        curves = saved["rows"]["0.0"]["runs"][method]
        for curve in curves:
            steps = [p[0] for p in curve]
            cpu = [p[1] for p in curve]
            assert steps[0] == 0 and steps[-1] == 16 and steps == sorted(steps), method  # 1,000 / 64 = 16 steps
            assert cpu == sorted(cpu) and cpu[-1] > 0, method
        assert row["final_mean"] == pytest.approx(sum(c[-1][2] for c in curves) / 2)
    table = (tmp_path / "bench_selection_quick.md").read_text()
    assert table.splitlines()[0].startswith("Label noise 0%: 1,000 training samples")
    assert "Machine:" in table and "| rho-loss |" in table
    assert table.split("\n\nMachine:")[0] in capsys.readouterr().out
    merged = bench.main(
        ["--merge", str(tmp_path / "bench_selection_quick.json"), "--out", str(tmp_path), "--stem", "m"]
    )
    assert merged["noise"] == saved["rows"]
    assert (tmp_path / "m.md").read_text().split("\n\nMachine:")[0] == table.split("\n\nMachine:")[0]


def test_data_is_deterministic_and_noise_exact():
    bench = load_benchmark("bench_selection")
    a, b = bench.make_images(500, 50), bench.make_images(500, 50)
    for key in a:
        assert torch.equal(a[key], b[key]), key
    assert a["x_train"].shape == (500, 1, 12, 12) and a["x_test"].shape == (540 * 4, 1, 12, 12)
    noisy = bench.add_noise(a["y_train"], 0.4, torch.Generator().manual_seed(0))
    assert int((noisy != a["y_train"]).sum()) == 200  # exactly 40 % wrong, none moved onto its own class
    assert sorted(set(noisy.tolist())) == list(range(10))


def test_a_difficulty_mixture_transforms_a_share_more_strongly_and_leaves_the_rest_as_they_were():
    bench = load_benchmark("bench_selection")
    plain = bench.make_images(2000, 50, test_variants=6)
    assert "hard_train" not in plain
    mixed = bench.make_images(2000, 50, test_variants=6, hard_share=0.3)
    for part in ("train", "test"):
        hard = mixed[f"hard_{part}"]
        assert hard.shape == plain[f"y_{part}"].shape and hard.dtype == torch.bool
        assert abs(hard.float().mean().item() - 0.3) < 0.05  # the share, drawn at random
        x, x0 = mixed[f"x_{part}"], plain[f"x_{part}"]
        assert torch.equal(x[~hard], x0[~hard])  # the others: the default task's images, bit for bit
        assert torch.equal(mixed[f"y_{part}"], plain[f"y_{part}"])
        changed = (x[hard] - x0[hard]).flatten(1).abs().amax(1)
        assert bool((changed > 0).all())
        # Twice the pixel noise: the background's spread (the canvas's corner, outside every digit) doubles.
        corner = x[:, 0, 0, 0]
        assert corner[hard].std().item() / corner[~hard].std().item() == pytest.approx(2.0, rel=0.15)
    assert torch.equal(bench.make_images(500, 20, hard_share=0.0)["x_train"], bench.make_images(500, 20)["x_train"])
    with pytest.raises(ValueError, match="hard_share"):
        bench.make_images(500, 20, hard_share=1.5)


def test_a_mixture_run_measures_its_hard_test_images_and_the_others_apart(tmp_path):
    bench = load_benchmark("bench_selection")
    data = bench.make_images(640, 20, hard_share=0.3)
    common = {"noise": 0.0, "seed": 0, "epochs": 1, "eval_every": 4, "keep": 0.25, "il_epochs": 1}
    out = bench.run("uniform", data, **common)
    hard, easy = data["hard_test"], ~data["hard_test"]
    assert len(out["curve_hard"]) == len(out["curve_easy"]) == len(out["curve"]) > 2
    for whole, h, e in zip(out["curve"], out["curve_hard"], out["curve_easy"], strict=True):
        assert whole[:2] == h[:2] == e[:2]  # the same evaluations
        right = h[2] * int(hard.sum()) + e[2] * int(easy.sum())
        assert right == pytest.approx(whole[2] * len(hard))  # the parts' correct answers make the whole's
    model_right = bench.correct(bench.make_model(0), data["x_test"], data["y_test"])
    assert out["curve_hard"][0][2] == int(model_right[hard].sum()) / int(hard.sum())  # step 0: the initial model
    assert "curve_hard" not in bench.run("uniform", bench.make_images(640, 20), **common)

    argv = ["--quick", "--hard-share", "0.3", "--methods", "uniform", "ohem", "--out", str(tmp_path)]
    bench.main([*argv, "--stem", "a"])
    bench.main([*argv, "--stem", "b", "--first-seed", "2"])
    rows = json.loads((tmp_path / "a.json").read_text())["rows"]["0.0"]
    finals = {m: [c[-1][2] for c in cs] for m, cs in rows["runs_hard"].items()}
    table = (tmp_path / "a.md").read_text()
    assert "| method | hard | − uniform | others | − uniform |" in table
    diffs = [100 * (a - b) for a, b in zip(finals["ohem"], finals["uniform"], strict=True)]
    expected = f"| ohem | {sum(finals['ohem']) / 2:.4f} | {sum(diffs) / 2:+.2f} ("
    assert expected in table
    pooled = bench.concat_seeds([tmp_path / "a.json", tmp_path / "b.json"], tmp_path, "ab")["noise"]["0.0"]
    b = json.loads((tmp_path / "b.json").read_text())["rows"]["0.0"]
    assert pooled["runs_easy"]["ohem"] == rows["runs_easy"]["ohem"] + b["runs_easy"]["ohem"]
    assert "| method | hard |" in (tmp_path / "ab.md").read_text()


def test_pruning_runs_its_epochs_in_fewer_steps():
    bench = load_benchmark("bench_selection")
    data = bench.make_images(640, 20)  # 10 batches per full epoch
    common = {"noise": 0.4, "seed": 0, "epochs": 4, "eval_every": 7, "keep": 0.25, "il_epochs": 1}
    full = bench.run("uniform", data, **common)["curve"]
    for method in ("pruning", "pruning-filter"):
        curve = bench.run(method, data, **common)["curve"]
        steps = [p[0] for p in curve]
        assert steps == sorted(steps) and steps[-1] < full[-1][0] == 40, method  # 4 epochs, pruned ones shorter
        assert steps[-1] % 7 != 0 and steps[-2] % 7 == 0, method  # the final evaluation is added at the end
    plain = bench.run("pruning", data, **common)["curve"][-1][0]
    filtered = bench.run("pruning-filter", data, **common)["curve"][-1][0]
    assert filtered < plain  # exclusion leaves out 20 % more


def test_priority_takes_uniforms_steps_and_its_options():
    bench = load_benchmark("bench_selection")
    data = bench.make_images(640, 20)  # 10 batches per epoch
    common = {"noise": 0.4, "seed": 0, "epochs": 3, "eval_every": 7, "keep": 0.25, "il_epochs": 1}
    full = bench.run("uniform", data, **common)["curve"]
    for options in ({}, {"pressure": 10.0, "exclude": 0.4}, {"exclude": "auto", "num_classes": 10}):
        curve = bench.run("priority", data, **common, options=options)["curve"]
        assert [p[0] for p in curve] == [p[0] for p in full] and curve[-1][0] == 30, options
    assert bench._parse_options("pressure=10,exclude=auto,num_classes=10") == {
        "pressure": 10,
        "exclude": "auto",
        "num_classes": 10,
    }


def test_merge_puts_methods_side_by_side_and_keeps_the_first_files_reference(tmp_path):
    bench = load_benchmark("bench_selection")

    def saved(name, noises, methods, final):
        rows = {}
        for noise in noises:
            runs = {m: [{"curve": [[0, 0.0, 0.1], [10, 1.0, final[m] - 0.01], [20, 2.0, final[m]]]}] for m in methods}
            rows[str(noise)] = {
                "summary": bench.summarise(runs),
                "runs": {m: [r["curve"] for r in runs[m]] for m in runs},
            }
        (tmp_path / f"{name}.json").write_text(json.dumps({"setup": name, "rows": rows}))
        return tmp_path / f"{name}.json"

    five = saved("five", [0.4, 0.0], ["uniform", "pruning", "focal"], {"uniform": 0.9, "pruning": 0.8, "focal": 0.7})
    two = saved("two", [0.0], ["uniform", "selective-backprop"], {"uniform": 0.5, "selective-backprop": 0.6})
    merged = bench.main(["--merge", str(five), str(two), "--out", str(tmp_path), "--stem", "m"])["noise"]
    assert list(merged) == ["0.0", "0.4"]  # ascending noise
    assert list(merged["0.0"]["summary"]) == ["uniform", "selective-backprop", "focal", "pruning"]  # METHODS order
    assert merged["0.0"]["summary"]["uniform"]["final_mean"] == 0.9  # the first file's reference wins
    assert merged["0.0"]["summary"]["selective-backprop"]["final_minus_uniform"] == pytest.approx(0.1)  # vs its own
    assert merged["0.0"]["setup"] == "five" and list(merged["0.4"]["summary"]) == ["uniform", "focal", "pruning"]


def test_budget_schedule_and_learning_rate_change_the_run():
    bench = load_benchmark("bench_selection")
    data = bench.make_images(640, 20)  # 10 batches per epoch
    common = {"noise": 0.0, "seed": 0, "epochs": 4, "eval_every": 5, "keep": 0.25, "il_epochs": 1}
    full = bench.run("uniform", data, **common)["curve"]
    again = bench.run("uniform", data, **common)["curve"]
    assert [p[2] for p in again] == [p[2] for p in full]  # the same seed gives the same curve
    for method in ("uniform", "priority"):
        half = bench.run(method, data, **common, budget=0.5)["curve"]
        assert half[-1][0] == 20 and [p[0] for p in half] == [0, 5, 10, 15, 20], method
    cosine = bench.run("uniform", data, **common, schedule="cosine")["curve"]
    faster = bench.run("uniform", data, **common, lr=4e-3)["curve"]
    assert [p[0] for p in cosine] == [p[0] for p in full]
    assert [p[2] for p in cosine] != [p[2] for p in full] and [p[2] for p in faster] != [p[2] for p in full]


def test_oracle_excludes_exactly_the_flipped_labels():
    bench = load_benchmark("bench_selection")
    wrong = torch.tensor([False, True, False, True, False])
    sampler = bench.OracleExclusion(5, wrong=wrong, warmup_epochs=0, pressure=10.0)
    sampler.observe(torch.arange(4), torch.tensor([0.1, 0.2, 5.0, 9.0]))  # sample 4 unseen
    p = sampler.probabilities()
    assert p[1] == 0 and p[3] == 0 and bool((p[[0, 2, 4]] > 0).all())
    assert p[2] == p[4] and p[2] / p[0] == pytest.approx(10.0)  # ranks among the kept: 2 first, then 0
    assert bench._base("priority:pressure=10@0.5") == "priority" and bench._base("uniform@0.75") == "uniform"


def test_method_at_a_budget_is_its_own_row(tmp_path):
    bench = load_benchmark("bench_selection")
    bench.main(["--quick", "--out", str(tmp_path), "--schedule", "cosine", "--methods", "uniform@0.5", "priority"])
    saved = json.loads((tmp_path / "bench_selection_quick.json").read_text())
    rows = saved["rows"]["0.0"]
    assert list(rows["summary"]) == ["uniform", "uniform@0.5", "priority"]
    assert rows["runs"]["uniform@0.5"][0][-1][0] == 8 and rows["runs"]["uniform"][0][-1][0] == 16
    assert "(cosine to 0)" in saved["setup"]


def test_concat_seeds_pools_the_runs_of_methods_every_file_ran(tmp_path):
    bench = load_benchmark("bench_selection")

    def saved(name, seeds, finals):  # finals: method -> one final accuracy per seed
        runs = {m: [[[0, 0.0, 0.1], [10, 1.0, f - 0.01], [20, 2.0, f]] for f in fs] for m, fs in finals.items()}
        setup = f"30 samples, {len(seeds)} seeds {seeds[0]}..{seeds[-1]}, keep 0.25."
        rows = {"0.0": {"runs": runs, "setup": setup}, "0.4": {"runs": runs, "setup": setup}}
        (tmp_path / f"{name}.json").write_text(json.dumps({"setup": setup, "rows": rows}))
        return tmp_path / f"{name}.json"

    a = saved("a", [0, 1], {"uniform": [0.90, 0.80], "priority": [0.95, 0.85], "focal": [0.5, 0.5]})
    b = saved("b", [2], {"uniform": [0.70], "priority": [0.60]})
    got = bench.main(["--concat-seeds", str(a), str(b), "--out", str(tmp_path), "--stem", "c"])["noise"]
    row = got["0.0"]
    assert list(row["summary"]) == ["uniform", "priority"]  # focal is not in b: left out
    assert len(row["runs"]["priority"]) == 3 and row["runs"]["priority"][2][-1][2] == 0.60  # a's seeds, then b's
    s = row["summary"]["priority"]
    assert s["final_mean"] == pytest.approx((0.95 + 0.85 + 0.60) / 3)
    assert s["final_minus_uniform"] == pytest.approx((0.05 + 0.05 - 0.10) / 3)  # each seed against its own uniform
    assert s["reached"] == 2 and s["seeds"] == 3
    assert row["setup"] == "30 samples, 3 seeds (2 seeds 0..1 + 1 seeds 2..2), keep 0.25."
    assert "3 seeds (2 seeds 0..1 + 1 seeds 2..2)" in (tmp_path / "c.md").read_text()
    b_only_focal = saved("d", [3], {"focal": [0.5]})
    with pytest.raises(ValueError, match="uniform"):
        bench.concat_seeds([a, b_only_focal], tmp_path, "e")


def test_merge_keeps_a_merged_files_summaries_and_concat_refuses_it(tmp_path):
    bench = load_benchmark("bench_selection")
    curve = [[0, 0.0, 0.1], [10, 1.0, 0.8], [20, 2.0, 0.9]]
    runs = {"uniform": [curve], "focal": [curve]}
    current = bench.summarise({m: [{"curve": c} for c in cs] for m, cs in runs.items()})
    current["focal"] = {**current["focal"], "cpu_ratio_median": 0.5}  # as if measured against another batch
    outdated = {m: {"final_mean": 0.0} for m in runs}  # an old file's summary without today's columns
    for name, summary in (("kept", current), ("old", outdated)):
        row = {"summary": summary, "runs": runs, "setup": name}
        (tmp_path / f"{name}.json").write_text(json.dumps({"setup": name, "rows": {"0.0": row}}))
    kept = bench.merge([tmp_path / "kept.json"], tmp_path, "k")["noise"]["0.0"]["summary"]
    assert kept["focal"]["cpu_ratio_median"] == 0.5
    rebuilt = bench.merge([tmp_path / "old.json"], tmp_path, "o")["noise"]["0.0"]["summary"]
    assert rebuilt["focal"]["final_mean"] == 0.9 and rebuilt["focal"]["cpu_ratio_median"] == 1.0
    assert json.loads((tmp_path / "k.json").read_text())["merged"] is True
    with pytest.raises(ValueError, match="--merge"):
        bench.concat_seeds([tmp_path / "k.json", tmp_path / "kept.json"], tmp_path, "c")


def test_elr_option_trains_uniform_and_priority_on_the_regularized_loss():
    bench = load_benchmark("bench_selection")
    data = bench.make_images(640, 20)
    common = {"noise": 0.4, "seed": 0, "epochs": 2, "eval_every": 5, "keep": 0.25, "il_epochs": 1}
    plain = bench.run("uniform", data, **common)["curve"]
    elr = bench.run("uniform", data, **common, options={"elr": 0.9})["curve"]
    assert [p[0] for p in elr] == [p[0] for p in plain]  # the same steps, and the same first evaluation (untrained)
    assert elr[0][2] == plain[0][2] and [p[2] for p in elr[1:]] != [p[2] for p in plain[1:]]  # a different loss
    priority = bench.run("priority", data, **common, options={"pressure": 10.0, "exclude": 0.4, "elr": 0.9})["curve"]
    assert priority[-1][0] == 20
    with pytest.raises(ValueError, match="elr option is for uniform and priority"):
        bench.run("focal", data, **common, options={"elr": 0.9})


def test_priority_keep_option_selects_from_candidate_batches_the_sampler_draws(monkeypatch):
    bench = load_benchmark("bench_selection")
    data = bench.make_images(640, 20)  # 10 batches of 64 per epoch, 5 of 128
    common = {"noise": 0.0, "seed": 0, "epochs": 3, "eval_every": 7, "keep": 0.25, "il_epochs": 1}
    full = bench.run("uniform", data, **common)["curve"]
    calls = []
    real = bench.hm.select_batch

    def recording(model, x, y, keep, **kw):
        pos, fresh = real(model, x, y, keep, **kw)
        calls.append((len(y), keep, pos, fresh))
        return pos, fresh

    monkeypatch.setattr(bench.hm, "select_batch", recording)
    curve = bench.run("priority", data, **common, options={"keep": 0.5})["curve"]
    assert [p[0] for p in curve] == [p[0] for p in full]  # the same 30 gradient steps, on 64 samples each
    assert len(calls) == 30 and all(b == 128 and k == 64 for b, k, _, _ in calls)  # 640 = 5 candidate batches
    for _, _, pos, fresh in calls:  # the 64 largest fresh losses of the 128 candidates
        assert sorted(pos.tolist()) == sorted(fresh.topk(64).indices.tolist())


def _record_per_sample_loss_grads(bench, monkeypatch):
    """Patch the benchmark's cross-entropy: every step's per-sample losses and d loss / d them, in a list."""
    grads = []
    real = bench.F.cross_entropy

    def recording(logits, y, *args, **kw):
        out = real(logits, y, *args, **kw)
        if kw.get("reduction") == "none" and out.requires_grad:
            losses = out.detach()
            out.register_hook(lambda g: grads.append((losses, g)))
        return out

    monkeypatch.setattr(bench.F, "cross_entropy", recording)
    return grads


def test_priority_top_option_trains_on_the_largest_losses_of_larger_batches(monkeypatch):
    bench = load_benchmark("bench_selection")
    data = bench.make_images(640, 20)  # 8 batches of 80 per epoch
    common = {"noise": 0.0, "seed": 0, "epochs": 3, "eval_every": 7, "keep": 0.25, "il_epochs": 1}
    full = bench.run("uniform", data, **common)["curve"]
    grads = _record_per_sample_loss_grads(bench, monkeypatch)
    curve = bench.run("priority", data, **common, options={"top": 0.8})["curve"]
    assert [p[0] for p in curve] == [p[0] for p in full]  # the same 30 gradient steps
    assert len(grads) == 30 and all(len(losses) == 80 for losses, _ in grads)
    for losses, g in grads:  # d loss / d per-sample loss: 1/64 for the 64 largest of the 80, 0 for the rest
        expected = torch.zeros(80)
        expected[losses.topk(64).indices] = 1 / 64
        assert torch.allclose(g, expected)
    with pytest.raises(ValueError, match="not both"):
        bench.run("priority", data, **common, options={"top": 0.8, "keep": 0.5})
    with pytest.raises(ValueError, match="does not combine with elr"):
        bench.run("priority", data, **common, options={"top": 0.8, "elr": 0.9})


def test_pruning_top_option_trains_on_the_weighted_largest_losses_of_larger_batches(monkeypatch):
    bench = load_benchmark("bench_selection")
    data = bench.make_images(640, 20)  # 8 batches of 80 per full epoch
    common = {"noise": 0.0, "seed": 0, "epochs": 3, "eval_every": 7, "keep": 0.25, "il_epochs": 1}
    grads = _record_per_sample_loss_grads(bench, monkeypatch)
    weights, real_weights = [], bench.hm.PruningSampler.loss_weights

    def recorded_weights(self, idx):
        w = real_weights(self, idx)
        weights.append(w.clone())
        return w

    monkeypatch.setattr(bench.hm.PruningSampler, "loss_weights", recorded_weights)
    steps = bench.run("pruning", data, **common, options={"top": 0.8})["curve"][-1][0]
    assert len(grads) == len(weights) == steps and all(len(losses) <= 80 for losses, _ in grads)
    assert [len(losses) for losses, _ in grads[:8]] == [80] * 8  # the first epoch is whole: 8 batches of 80
    assert 8 < steps < 24  # the pruned epochs are shorter
    assert any(bool((w > 1).any()) for w in weights)  # kept low-loss samples are weighted up
    for (losses, g), w in zip(grads, weights, strict=True):  # d loss / d per-sample loss: w / 64 on the 64 largest
        k = min(64, len(losses))
        expected = torch.zeros(len(losses))
        top = losses.topk(k).indices
        expected[top] = w[top] / k
        assert torch.allclose(g, expected)
    with pytest.raises(ValueError, match="pruning's top= trains on the plain cross-entropy; it does not combine"):
        bench.run("pruning", data, **common, options={"top": 0.8, "elr": 0.9})


def test_pruning_rescale_option_leaves_the_kept_low_loss_samples_at_weight_one(monkeypatch):
    bench = load_benchmark("bench_selection")
    data = bench.make_images(640, 20)  # 10 batches of 64 per full epoch
    common = {"noise": 0.0, "seed": 0, "epochs": 3, "eval_every": 7, "keep": 0.25, "il_epochs": 1}
    grads = _record_per_sample_loss_grads(bench, monkeypatch)
    rescaled = bench.run("pruning", data, **common)["curve"][-1][0]
    weighted = [g * len(g) for _, g in grads[:rescaled]]  # d mean(w * loss) / d loss * batch = w
    assert any(bool((w > 1.5).any()) for w in weighted)  # the default weights the kept low-loss samples up (2)
    del grads[:]
    steps = bench.run("pruning", data, **common, options={"rescale": 0})["curve"][-1][0]
    assert steps < 30 and len(grads) == steps  # still pruned: rescale changes the weights, not the pruning
    for _, g in grads:  # the plain mean: d loss / d per-sample loss is 1 / batch for every sample
        assert torch.allclose(g, torch.full_like(g, 1 / len(g)))


def test_pruning_rho_option_observes_the_loss_minus_the_irreducible_loss(monkeypatch):
    bench = load_benchmark("bench_selection")
    data = bench.make_images(640, 20)  # 10 batches of 64 per full epoch
    common = {"noise": 0.0, "seed": 0, "epochs": 3, "eval_every": 7, "keep": 0.25, "il_epochs": 1}
    seen = []
    real = bench.hm.PruningSampler.observe

    def recording(self, indices, losses, targets=None):
        seen.append((indices.clone(), losses.clone()))
        return real(self, indices, losses, targets)

    monkeypatch.setattr(bench.hm.PruningSampler, "observe", recording)
    plain_steps = bench.run("pruning", data, **common)["curve"][-1][0]
    plain = list(seen)  # its first 10: the warm-up epoch, every sample, the same batches and model in both runs
    del seen[:]
    rho_steps = bench.run("pruning", data, **common, options={"rho": 1})["curve"][-1][0]
    il_model = bench.train_il_model(data, data["y_hold"], 0, 1)  # the reference: the same model, scored by hand
    with torch.no_grad():
        il = bench.F.cross_entropy(il_model(data["x_train"]), data["y_train"], reduction="none")
    for (idx, loss), (idx_rho, reducible) in zip(plain[:10], seen[:10], strict=True):
        assert torch.equal(idx, idx_rho)
        assert torch.allclose(reducible, loss - il[idx], atol=1e-5)
    assert bool((torch.cat([r for _, r in seen]) < 0).any())  # reducible losses, not clamped
    assert rho_steps < 30 and plain_steps < 30  # both prune, and the reducible loss changes which samples
    drawn = [torch.cat([i for i, _ in run[10:]]).sort().values for run in (plain, seen)]
    assert not torch.equal(*drawn)
    del seen[:]
    bench.run("pruning", data, **common, options={"rho": 1, "floor": 0})
    for (idx, loss), (_, floored) in zip(plain[:10], seen[:10], strict=True):  # floor=0: negatives count as 0
        assert torch.allclose(floored, (loss - il[idx]).clamp_min(0), atol=1e-5)
    with pytest.raises(TypeError, match="floor"):  # without rho=1 it is no option of the pruning sampler's
        bench.run("pruning", data, **common, options={"floor": 0})


def test_importance_pruning_draws_by_the_loss_with_probabilities_that_sum_to_its_share():
    bench = load_benchmark("bench_selection")
    n = 2000
    loss = torch.linspace(0.0, 3.0, n) ** 3 / 9  # skewed: most losses small, as a trained model's are
    sampler = bench.ImportancePruning(n, importance=0.4, min_prob=0.05, anneal=0.0, epochs=30, seed=0)
    sampler.observe(torch.arange(n), loss)
    # the reference: c by a plain search on a fine grid, p_i = clamp(c * loss_i, 0.05, 1) summing to 0.4 * n
    grid = torch.logspace(-3, 3, 60001, dtype=torch.float64)
    sums = (loss.double()[None, :] * grid[:, None]).clamp(0.05, 1).sum(1)
    c = grid[(sums - 0.4 * n).abs().argmin()]
    prob = (loss.double() * c).clamp(0.05, 1)
    counts = torch.zeros(n)
    weight_sums = torch.zeros(n)
    for epoch in range(1, 30):  # epoch 0 is the warm-up (everything, weight 1); 29 pruned epochs of the 30
        order, weights = sampler.plan(epoch)
        assert torch.equal(order.sort().values, (weights > 0).nonzero()[:, 0])
        drawn = weights > 0
        assert torch.allclose(weights[drawn].double(), 1 / prob[drawn], rtol=1e-3)  # 1 / p of the reference
        counts += drawn
        weight_sums += weights
    assert counts.sum() / 29 == pytest.approx(0.4 * n, rel=0.02)  # the expected share of the epoch
    high = prob == 1
    assert bool(high.any()) and bool((counts[high] == 29).all())  # p = 1: the largest losses in every epoch
    low = prob < 0.2
    assert counts[low].sum() / (29 * prob[low].sum()) == pytest.approx(1.0, rel=0.05)  # drawn as often as p says
    assert weight_sums.sum() / 29 == pytest.approx(n, rel=0.05)  # unbiased: the weights add up to the full data
    assert torch.equal(sampler.plan(30)[1], torch.ones(n))  # past the pruned epochs: everything, weight 1
    first = list(bench.ImportancePruning(n, importance=0.4, anneal=0.0, epochs=30))
    assert sorted(first) == list(range(n))  # the warm-up epoch draws every sample once
    with pytest.raises(ValueError, match="importance"):
        bench.ImportancePruning(n, importance=0.0)
    with pytest.raises(ValueError, match="min_prob"):
        bench.ImportancePruning(n, importance=0.4, min_prob=0.5)


def test_learnt_pruning_skips_only_learnt_samples_as_many_as_its_share_allows():
    bench = load_benchmark("bench_selection")
    n = 1000
    loss = torch.linspace(0.0, 0.04, n)  # label probabilities from 1 down to 0.96: a quarter above 0.99
    learnt = loss < -torch.log(torch.tensor(0.99))  # the reference pool, by hand
    m = int(learnt.sum())
    sampler = bench.LearntPruning(n, learnt=0.99, share=0.5, anneal=0.0, epochs=10, seed=0)
    sampler.observe(torch.arange(n), loss)
    order, weights = sampler.plan(1)
    assert bool((weights[~learnt] == 1).all())  # no unlearnt sample is skipped or weighted
    assert int((weights[learnt] == 0).sum()) == m  # fewer learnt than half the data: every one of them skipped
    assert order.numel() == n - m
    sampler = bench.LearntPruning(n, learnt=0.99, share=0.9, anneal=0.0, epochs=10, seed=0)
    sampler.observe(torch.arange(n), loss)
    order, weights = sampler.plan(1)
    assert order.numel() == 900 and bool((weights[~learnt] == 1).all())  # 100 of the pool skipped: 0.9 of the data
    kept = learnt & (weights > 0)
    assert int(kept.sum()) == m - 100 and torch.allclose(weights[kept], torch.full((m - 100,), m / (m - 100)))
    assert weights[learnt].sum() == pytest.approx(m)  # the pool's weights add up to the pool
    assert torch.equal(sampler.plan(10)[1], torch.ones(n))  # past the pruned epochs: everything, weight 1
    with pytest.raises(ValueError, match="learnt"):
        bench.LearntPruning(n, learnt=1.0, share=0.5)
    with pytest.raises(ValueError, match="share"):
        bench.LearntPruning(n, learnt=0.99, share=0.0)


def _record_plans(monkeypatch, cls):
    """The epochs ``cls.plan`` is called for, in order, recorded from now on."""
    epochs = []
    real = cls.plan

    def recording(self, epoch):
        epochs.append(epoch)
        return real(self, epoch)

    monkeypatch.setattr(cls, "plan", recording)
    return epochs


def test_pruning_importance_and_learnt_options_run_their_samplers(monkeypatch):
    bench = load_benchmark("bench_selection")
    data = bench.make_images(640, 20)  # 10 batches of 64 per full epoch
    common = {"noise": 0.0, "seed": 0, "epochs": 4, "eval_every": 7, "keep": 0.25, "il_epochs": 1}
    importance = _record_plans(monkeypatch, bench.ImportancePruning)
    learnt = _record_plans(monkeypatch, bench.LearntPruning)
    steps = bench.run("pruning", data, **common, options={"importance": 0.3, "anneal": 0})["curve"][-1][0]
    assert importance == [0, 1, 2, 3] and not learnt
    assert 10 + 3 * 2 <= steps < 10 + 3 * 5  # three epochs of about 0.3 of 10 batches
    bench.run("pruning", data, **common, options={"learnt": 0.9, "share": 0.5, "anneal": 0})
    assert learnt == [0, 1, 2, 3] and importance == [0, 1, 2, 3]


def test_batch_option_trains_uniform_and_pruning_on_larger_batches_within_the_same_step_budget(monkeypatch):
    bench = load_benchmark("bench_selection")
    data = bench.make_images(640, 20)  # 10 batches of 64 per full epoch, 8 of 80
    common = {"noise": 0.0, "seed": 0, "epochs": 3, "eval_every": 7, "keep": 0.25, "il_epochs": 1}
    rows: list[int] = []
    real = bench.F.cross_entropy

    def recording(logits, y, *args, **kw):  # the training steps' batches: the loss that will be backpropagated
        if torch.is_grad_enabled() and logits.requires_grad:
            rows.append(len(y))
        return real(logits, y, *args, **kw)

    monkeypatch.setattr(bench.F, "cross_entropy", recording)
    curve = bench.run("uniform", data, **common, options={"batch": 80})["curve"]
    assert curve[-1][0] == 30 and rows == [80] * 30  # the budget stays 3 epochs of batches of 64, each step on 80
    rows.clear()
    half = bench.run("uniform", data, **common, budget=0.5, options={"batch": 80})["curve"]
    assert half[-1][0] == 15 and rows == [80] * 15
    rows.clear()
    taken = bench.run("pruning", data, **common, options={"batch": 80, "anneal": 0})["curve"][-1][0]
    assert rows[:8] == [80] * 8 and sum(rows[:8]) == 640  # the first epoch draws everything, in batches of 80
    assert len(rows) == taken and max(rows) == 80 and 8 < taken < 24  # the pruned epochs are shorter
    for method, options in (
        ("priority", {"batch": 80}),
        ("selective-backprop", {"batch": 80}),
        ("pruning", {"batch": 80, "top": 0.8}),
    ):
        with pytest.raises(ValueError, match="The batch option is for uniform and pruning"):
            bench.run(method, data, **common, options=options)
    with pytest.raises(ValueError, match="batch must be a positive number of samples, got 0"):
        bench.run("uniform", data, **common, options={"batch": 0})


def test_lr_option_sets_a_methods_own_rate():
    bench = load_benchmark("bench_selection")
    data = bench.make_images(640, 20)
    common = {"noise": 0.0, "seed": 0, "epochs": 2, "eval_every": 5, "keep": 0.25, "il_epochs": 1}
    for method in ("uniform", "pruning"):
        default = [p[2] for p in bench.run(method, data, **common)["curve"]]
        faster = [p[2] for p in bench.run(method, data, **common, lr=6e-3)["curve"]]
        as_option = [p[2] for p in bench.run(method, data, **common, options={"lr": 6e-3})["curve"]]
        assert as_option == faster != default, method
    parsed = bench._parse_options("lr=6e-3,prune=0.6")
    assert parsed == {"lr": 6e-3, "prune": 0.6}


def test_merge_and_concat_name_the_machine_of_the_runs_not_their_own(tmp_path):
    bench = load_benchmark("bench_selection")
    curve = [[0, 0.0, 0.1], [10, 1.0, 0.8], [20, 2.0, 0.9]]
    runs = {"uniform": [curve], "focal": [curve]}
    where = {"device": "cpu", "cpu": "X", "cores": 64, "torch_threads": 1, "torch": "t", "python": "p", "platform": "q"}
    for name in ("a", "b"):
        row = {"runs": runs, "setup": f"1 seeds {0 if name == 'a' else 1}..{0 if name == 'a' else 1}"}
        (tmp_path / f"{name}.json").write_text(json.dumps({"setup": name, "machine": where, "rows": {"0.0": row}}))
    torch_threads = torch.get_num_threads()
    torch.set_num_threads(2)  # the combining process's setting must not leak into the file
    try:
        bench.concat_seeds([tmp_path / "a.json", tmp_path / "b.json"], tmp_path, "c")
        bench.merge([tmp_path / "c.json", tmp_path / "a.json"], tmp_path, "m")
    finally:
        torch.set_num_threads(torch_threads)
    for stem in ("c", "m"):
        assert json.loads((tmp_path / f"{stem}.json").read_text())["machine"] == where, stem
        assert "Machine: cpu: 64 cores (X), 1 torch thread, torch t" in (tmp_path / f"{stem}.md").read_text(), stem
    other = {**where, "cores": 2}
    (tmp_path / "o.json").write_text(json.dumps({"setup": "o", "machine": other, "rows": {"0.0": {"runs": runs}}}))
    with pytest.raises(ValueError, match="one machine"):
        bench.merge([tmp_path / "a.json", tmp_path / "o.json"], tmp_path, "x")
    with pytest.raises(ValueError, match="one machine"):
        bench.concat_seeds([tmp_path / "a.json", tmp_path / "o.json"], tmp_path, "x")


def test_fused_loss_weights_the_candidates_it_leaves_out_by_rest():
    bench = load_benchmark("bench_selection")
    g = torch.Generator().manual_seed(0)
    losses, weights = torch.rand(10, generator=g) * 3, torch.rand(10, generator=g) + 0.5
    hardest = sorted(range(10), key=lambda i: -float(losses[i]))[:6]
    for rest in (0.0, 0.3, 1.0):
        for w in (None, weights):
            x = losses.clone().requires_grad_()
            got = bench.fused_loss(x, 6, rest=rest, weights=w)
            lw = [1.0 if i in hardest else rest for i in range(10)]
            sw = [1.0] * 10 if w is None else w.tolist()
            if rest == 0.0:  # the mean of the 6 hardest alone, as before rest= existed
                want = sum(float(losses[i]) * sw[i] for i in hardest) / 6
            else:
                want = sum(float(losses[i]) * lw[i] * sw[i] for i in range(10)) / sum(lw)
            assert float(got.detach()) == pytest.approx(want, rel=1e-6), (rest, w is None)
            got.backward()
            assert ((x.grad != 0).nonzero()[:, 0].tolist() == sorted(hardest)) == (rest == 0.0)
    assert float(bench.fused_loss(losses, 6, rest=1.0)) == pytest.approx(float(losses.mean()), rel=1e-6)


def test_rest_zero_is_top_alone_and_rest_needs_top():
    bench = load_benchmark("bench_selection")
    data = bench.make_images(640, 20)
    common = {"noise": 0.0, "seed": 2, "epochs": 3, "eval_every": 5, "keep": 0.25, "il_epochs": 1}
    top = bench.run("priority", data, **common, options={"top": 0.8})["curve"]
    zero = bench.run("priority", data, **common, options={"top": 0.8, "rest": 0.0})["curve"]
    every = bench.run("priority", data, **common, options={"top": 0.8, "rest": 1.0})["curve"]
    assert [p[::2] for p in zero] == [p[::2] for p in top] and [p[::2] for p in every] != [p[::2] for p in top]
    for method, options in (
        ("priority", {"rest": 0.5}),
        ("uniform", {"rest": 0.5}),
        ("priority", {"top": 0.8, "rest": 2}),
    ):
        with pytest.raises(ValueError, match="rest= is a weight in"):
            bench.run(method, data, **common, options=options)


@pytest.mark.parametrize("method", ["uniform", "priority:top=0.8"])
def test_evaluating_more_often_observes_the_same_run(method):
    """bench_selection_fresh_grid67 re-ran seeds with --eval-every 67: an evaluation must not change the training."""
    bench = load_benchmark("bench_selection")
    data = bench.make_images(640, 20)
    name, _, opts = method.partition(":")
    options = {"top": 0.8} if opts else None
    common = {"noise": 0.0, "seed": 3, "epochs": 3, "keep": 0.25, "il_epochs": 1}
    coarse = bench.run(name, data, **common, eval_every=6, options=options)["curve"]
    fine = bench.run(name, data, **common, eval_every=2, options=options)["curve"]
    at = {step: acc for step, _, acc in fine}
    assert len(fine) > len(coarse) >= 4
    assert [acc for step, _, acc in coarse] == [at[step] for step, _, _ in coarse]  # identical where both evaluate


def test_the_setup_line_names_an_evaluation_interval_other_than_the_default():
    bench = load_benchmark("bench_selection")
    args = bench.argparse.Namespace(
        train_size=30_000, lr=bench.LR, schedule="constant", epochs=8, keep=0.25, il_epochs=8, eval_every=235
    )
    assert "evaluated every" not in bench._setup(args, [0, 1])
    args.eval_every = 67
    assert "3,752 gradient steps, evaluated every 67 steps, 2 seeds" in bench._setup(args, [0, 1])


def test_width_widens_the_trained_cnn_and_the_setup_line_says_so(tmp_path, monkeypatch):
    bench = load_benchmark("bench_selection")
    wide = bench.make_model(0, 3)
    convs = [m for m in wide if isinstance(m, bench.nn.Conv2d)]
    assert [(c.in_channels, c.out_channels) for c in convs] == [(1, 48), (48, 96)]
    assert wide[-1].in_features == 96 * 3 * 3 and wide(torch.zeros(2, 1, 12, 12)).shape == (2, 10)
    trained = []
    real = bench.make_model
    monkeypatch.setattr(bench, "make_model", lambda seed, width=1: trained.append(width) or real(seed, width))
    data = bench.make_images(640, 20)
    common = {"noise": 0.0, "seed": 0, "epochs": 1, "eval_every": 5, "keep": 0.25, "il_epochs": 1}
    narrow = bench.run("uniform", data, **common)["curve"]
    widened = bench.run("uniform", data, **common, width=2)["curve"]
    assert [p[0] for p in widened] == [p[0] for p in narrow] and widened != narrow  # the same steps, another model
    bench.run("pruning", data, **common, width=2, options={"rho": 1})
    assert trained == [1, 2, 2, 1]  # the trained CNN is widened, the irreducible-loss model is not
    bench.main(["--quick", "--width", "2", "--methods", "uniform", "--out", str(tmp_path), "--stem", "w"])
    setup = json.loads((tmp_path / "w.json").read_text())["setup"]
    assert "CNN 2x as wide (channels 32 and 64), Adam" in setup
    args = bench.argparse.Namespace(
        train_size=30_000, lr=bench.LR, schedule="constant", epochs=8, keep=0.25, il_epochs=8, eval_every=235
    )
    assert "small CNN, Adam" in bench._setup(args, [0])  # files made before the option read as before
    with pytest.raises(SystemExit):
        bench.main(["--quick", "--width", "0", "--out", str(tmp_path)])


def test_hard_share_reaches_the_images_and_the_setup_line_says_so(tmp_path, monkeypatch):
    bench = load_benchmark("bench_selection")
    shares = []
    real = bench.make_images
    monkeypatch.setattr(bench, "make_images", lambda *a: shares.append(a[3]) or real(*a))
    bench.main(["--quick", "--hard-share", "0.3", "--methods", "uniform", "--out", str(tmp_path), "--stem", "h"])
    assert shares == [0.3]
    setup = json.loads((tmp_path / "h.json").read_text())["setup"]
    assert "(12x12 affine digits, 30% of every set 2x as strongly), small CNN" in setup
    args = bench.argparse.Namespace(
        train_size=30_000, lr=bench.LR, schedule="constant", epochs=8, keep=0.25, il_epochs=8, eval_every=235
    )
    assert "(12x12 affine digits), small CNN" in bench._setup(args, [0])  # files made before the option
    for bad in ("-0.1", "1.5"):
        with pytest.raises(SystemExit):
            bench.main(["--quick", "--hard-share", bad, "--out", str(tmp_path)])
    assert shares == [0.3]  # refused before any image is made


def test_a_larger_test_set_starts_with_the_default_one():
    bench = load_benchmark("bench_selection")
    default, larger = bench.make_images(500, 50), bench.make_images(500, 50, test_variants=6)
    assert larger["x_test"].shape == (540 * 6, 1, 12, 12) and bench.BASE_TEST_SIZE == 540 * 4
    assert torch.equal(larger["x_test"][: 540 * 4], default["x_test"])  # the default 2,160 images come first
    assert torch.equal(larger["y_test"], default["y_test"][:540].repeat(6))  # more variants of the same originals
    assert not torch.equal(larger["x_test"][540 * 4 : 540 * 5], default["x_test"][:540])  # new variants, not copies
    for key in ("x_train", "y_train", "x_hold", "y_hold"):
        assert torch.equal(larger[key], default[key]), key
    with pytest.raises(ValueError, match="test_variants"):
        bench.make_images(500, 50, test_variants=3)


@pytest.mark.parametrize("method", ["uniform", "priority:top=0.8"])
def test_a_larger_test_set_measures_the_same_run_on_both(method):
    bench = load_benchmark("bench_selection")
    name, _, opts = method.partition(":")
    options = {"top": 0.8} if opts else None
    common = {"noise": 0.2, "seed": 1, "epochs": 2, "eval_every": 4, "keep": 0.25, "il_epochs": 1, "options": options}
    default = bench.run(name, bench.make_images(640, 20), **common)
    larger = bench.run(name, bench.make_images(640, 20, test_variants=5), **common)
    assert "curve_base" not in default
    assert [p[2] for p in larger["curve_base"]] == [p[2] for p in default["curve"]]  # the same run, the same images
    assert [p[:2] for p in larger["curve_base"]] == [p[:2] for p in larger["curve"]]  # one evaluation, two yardsticks
    assert [p[2] for p in larger["curve"]] != [p[2] for p in default["curve"]]


def test_the_larger_test_sets_runs_are_also_summarised_on_the_default_one(tmp_path):
    bench = load_benchmark("bench_selection")
    common = ["--quick", "--test-variants", "5", "--methods", "uniform", "focal", "--out", str(tmp_path)]
    bench.main([*common, "--stem", "a"])
    bench.main([*common, "--stem", "b", "--first-seed", "2"])
    row = json.loads((tmp_path / "a.json").read_text())["rows"]["0.0"]
    assert "on 2,700 test images (5 variants of each original)" in row["setup"]
    expected = bench.summarise({m: [{"curve": c} for c in cs] for m, cs in row["runs_base"].items()})
    assert row["summary_base"] == expected and row["summary_base"] != row["summary"]
    table = (tmp_path / "a.md").read_text()
    assert table.count("| focal |") == 2 and "measured on the first 2,160 test images alone" in table
    pooled = bench.concat_seeds([tmp_path / "a.json", tmp_path / "b.json"], tmp_path, "c")["noise"]["0.0"]
    assert len(pooled["runs_base"]["focal"]) == 4 and pooled["summary_base"]["focal"]["seeds"] == 4
    merged = bench.merge([tmp_path / "c.json"], tmp_path, "m")["noise"]["0.0"]
    assert merged["summary_base"] == pooled["summary_base"]
    assert (tmp_path / "m.md").read_text().count("| focal |") == 2
    plain = bench.main(["--quick", "--methods", "uniform", "--out", str(tmp_path), "--stem", "p"])["noise"]["0.0"]
    assert "runs_base" not in plain and "test images" not in plain["setup"]
    both = bench.merge([tmp_path / "c.json", tmp_path / "p.json"], tmp_path, "x")["noise"]["0.0"]
    assert "runs_base" not in both  # not every file measured the default test set apart


def test_wsd_schedule_keeps_the_rate_then_decays_it_linearly_over_the_last_fifth():
    bench = load_benchmark("bench_selection")
    total, lr = 40, 2e-3
    expected = [lr if s < 32 else lr * (40 - s) / 8 for s in range(total)]  # the last 8 steps: 8/8, 7/8, ..., 1/8
    assert [bench.scheduled_lr("wsd", lr, s, total) for s in range(total)] == pytest.approx(expected)
    assert bench.scheduled_lr("constant", lr, 39, total) == lr
    assert bench.scheduled_lr("cosine", lr, 20, total) == pytest.approx(lr / 2)
    with pytest.raises(ValueError, match="schedule"):
        bench.scheduled_lr("step", lr, 0, total)
    data = bench.make_images(640, 20)  # 10 batches per epoch: 40 steps in 4 epochs, the cooldown from step 32 on
    common = {"noise": 0.0, "seed": 0, "epochs": 4, "eval_every": 4, "keep": 0.25, "il_epochs": 1}
    constant = bench.run("uniform", data, **common)["curve"]
    wsd = bench.run("uniform", data, **common, schedule="wsd")["curve"]
    assert [p[2] for p in wsd[:9]] == [p[2] for p in constant[:9]]  # steps 0 to 32: the same run
    assert [p[2] for p in wsd[9:]] != [p[2] for p in constant[9:]]  # steps 36 and 40: the decayed rate


def test_cool_option_lowers_prioritys_pressure_with_the_wsd_cooldown(monkeypatch):
    bench = load_benchmark("bench_selection")
    data = bench.make_images(640, 20)  # 10 batches per epoch: 40 steps in 4 epochs, the cooldown from step 32 on
    common = {"noise": 0.0, "seed": 0, "epochs": 4, "eval_every": 40, "keep": 0.25, "il_epochs": 1}
    seen: list[float] = []
    observe = bench.hm.PrioritySampler.observe

    def spy(self, *args, **kwargs):
        seen.append(self.pressure)
        return observe(self, *args, **kwargs)

    monkeypatch.setattr(bench.hm.PrioritySampler, "observe", spy)
    bench.run("priority", data, **common, schedule="wsd", options={"cool": 1, "pressure": 100.0})
    expected = [100.0 ** bench.scheduled_lr("wsd", 1.0, s, 40) for s in range(40)]  # pressure ** (rate / lr)
    assert seen == pytest.approx(expected)
    assert seen[:32] == [100.0] * 32 and seen[-1] == pytest.approx(100.0**0.125)
    for method, schedule in (("uniform", "wsd"), ("priority", "cosine")):
        with pytest.raises(ValueError, match="cool option"):
            bench.run(method, data, **common, schedule=schedule, options={"cool": 1})


def test_cooldown_sets_the_share_of_the_run_the_wsd_rate_decays_over():
    bench = load_benchmark("bench_selection")
    total, lr = 40, 2e-3
    expected = [lr if s < 20 else lr * (40 - s) / 20 for s in range(total)]  # half the run: 20/20, 19/20, ..., 1/20
    assert [bench.scheduled_lr("wsd", lr, s, total, 0.5) for s in range(total)] == pytest.approx(expected)
    assert bench.scheduled_lr("wsd", lr, 0, total, 1.0) == lr and bench.scheduled_lr("wsd", lr, 1, total, 1.0) < lr
    args = dict(train_size=30_000, lr=4e-3, schedule="wsd", epochs=8, keep=0.25, il_epochs=8, eval_every=67)
    assert "over the last 40% of each run" in bench._setup(bench.argparse.Namespace(**args, cooldown=0.4), [0])
    assert "over the last 20% of each run" in bench._setup(bench.argparse.Namespace(**args), [0])
    for bad in (["--cooldown", "0"], ["--cooldown", "1.5"], ["--cooldown", "0.4", "--schedule", "cosine"]):
        with pytest.raises(SystemExit):
            bench.main(["--quick", *bad])


def test_pruning_follows_the_schedule_by_the_epochs_it_has_run(monkeypatch):
    bench = load_benchmark("bench_selection")
    data = bench.make_images(640, 20)  # 10 batches per full epoch, 4 epochs: the schedule spans 40 virtual steps
    common = {"noise": 0.0, "seed": 0, "epochs": 4, "eval_every": 7, "keep": 0.25, "il_epochs": 1}
    calls: list[tuple[int, int, float]] = []
    scheduled = bench.scheduled_lr

    def spy(schedule, lr, step, total_steps, cooldown=bench.COOLDOWN):
        calls.append((step, total_steps, cooldown))
        return scheduled(schedule, lr, step, total_steps, cooldown)

    monkeypatch.setattr(bench, "scheduled_lr", spy)
    taken = bench.run("pruning", data, **common, schedule="wsd", cooldown=0.5)["curve"][-1][0]
    steps = [c[0] for c in calls]
    assert len(calls) == taken < 40  # one rate a step, fewer steps than the epochs' budget
    assert {c[1:] for c in calls} == {(40, 0.5)}
    assert steps[:10] == list(range(10))  # the warm-up epoch draws everything: its steps are the schedule's
    assert steps == sorted(steps) and steps[-1] >= 37  # the pruned epochs stride faster; the last ends the schedule
    pruned = steps[10:]
    assert len(pruned) < 30 and len(set(pruned)) == len(pruned)
    calls.clear()
    bench.run("uniform", data, **common, schedule="wsd", cooldown=0.5)
    assert [c[0] for c in calls] == list(range(40))  # a method that takes every step follows the steps themselves


@pytest.mark.parametrize(
    ("method", "options"),
    [
        ("uniform", {}),
        ("balanced", {}),
        ("selective-backprop", {"method": "percentile"}),
        ("pruning", {"top": 0.8}),
        ("priority", {"top": 0.8}),
        ("priority", {"pressure": 10, "exclude": 0.4, "elr": 0.9}),
    ],
)
def test_indexed_batches_train_on_the_dataloaders_batches(method, options):
    """The GPU path's loader draws the DataLoader's batches: on the CPU both give the same curve, bit for bit."""
    bench = load_benchmark("bench_selection")
    data = bench.make_images(640, 20)
    common = {"noise": 0.2, "seed": 3, "epochs": 2, "eval_every": 4, "keep": 0.5, "il_epochs": 1}
    loaded = bench.run(method, data, options=dict(options), **common)["curve"]
    indexed = bench.run(method, data, options=dict(options), indexed=True, **common)["curve"]
    assert [(s, acc) for s, _, acc in indexed] == [(s, acc) for s, _, acc in loaded]
    assert len(loaded) >= 5 and len({acc for _, _, acc in loaded}) > 1  # evaluated along the way, and it learns


def test_indexed_batches_are_the_dataloaders_and_carry_their_indices():
    bench = load_benchmark("bench_selection")
    x, y = torch.arange(10.0)[:, None], torch.arange(10) % 3
    reference = DataLoader(TensorDataset(x, y), batch_size=4, shuffle=True, generator=torch.Generator().manual_seed(1))
    indexed = bench.IndexedBatches(x, y, 4, generator=torch.Generator().manual_seed(1), with_indices=True)
    assert len(indexed) == len(reference) == 3
    for _ in range(2):  # two passes: the second draws another order, as the DataLoader's does
        got = list(indexed)
        want = list(reference)
        for (idx, xb, yb), (xr, yr) in zip(got, want, strict=True):
            assert torch.equal(xb, xr) and torch.equal(yb, yr) and torch.equal(x[idx], xb)
    dropped = bench.IndexedBatches(x, y, 4, torch.utils.data.SequentialSampler(x), drop_last=True)
    assert [xb[:, 0].tolist() for xb, _ in dropped] == [[0, 1, 2, 3], [4, 5, 6, 7]]


def test_methods_with_a_dataloader_of_their_own_refuse_indexed_batches():
    bench = load_benchmark("bench_selection")
    data = bench.make_images(640, 20)
    common = {"noise": 0.0, "seed": 0, "epochs": 1, "eval_every": 4, "keep": 0.5, "il_epochs": 1, "indexed": True}
    for method, options in (("rho-loss", {}), ("hm-online", {}), ("pruning", {"rho": 1})):
        with pytest.raises(ValueError, match="trains or scores through a DataLoader of its own"):
            bench.run(method, data, options=options, **common)
    assert "rho-loss" not in bench.ACCELERATED and "priority" in bench.ACCELERATED


def test_the_gpu_script_runs_the_prepared_gpu_benchmark():
    """``.ci/gpu`` runs the command bench_selection's docstring prepares, on methods the GPU path accepts."""
    bench = load_benchmark("bench_selection")
    path = BENCHMARKS.parent / ".ci" / "gpu"
    if shutil.which("bash"):  # the script parses
        assert subprocess.run(["bash", "-n", str(path)], capture_output=True, text=True).stderr == ""
    script = path.read_text()
    call = re.search(r"benchmarks/bench_selection\.py (.*?) 2>&1", script, re.S)
    assert call is not None
    ci_args = call.group(1).replace("\\\n", " ").replace('"$out"', "$OUT").split()
    doc = re.search(r"python benchmarks/bench_selection\.py (--device cuda .*?\$OUT)", bench.__doc__, re.S)
    assert doc is not None
    assert ci_args == doc.group(1).replace("\\\n", " ").split()
    methods = ci_args[ci_args.index("--methods") + 1 : ci_args.index("--stem")]
    assert methods == ["uniform", "priority:top=0.8", "priority:top=0.667"]
    assert all(m.split(":")[0] in bench.ACCELERATED for m in methods)


@needs_cuda
def test_bench_selection_quick_on_cuda(tmp_path):
    bench = load_benchmark("bench_selection")
    bench.main(["--quick", "--device", "cuda", "--out", str(tmp_path), "--methods", "priority:top=0.8", "pruning"])
    saved = json.loads((tmp_path / "bench_selection_quick.json").read_text())
    assert saved["machine"]["gpu"] and saved["rows"]["0.0"]["setup"].startswith("on cuda")
    for method, curves in saved["rows"]["0.0"]["runs"].items():
        assert all(c[0][0] == 0 and c[-1][1] > 0 and 0.0 <= c[-1][2] <= 1.0 for c in curves), method
