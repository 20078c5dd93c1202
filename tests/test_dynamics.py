import io
import os
import socket
import tempfile

import numpy as np
import pandas as pd
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from reference import DEVICES, needs_cuda
from torch.utils.data import DataLoader, TensorDataset

from hardmine.analysis.dynamics import REGIONS, SUMMARY_COLUMNS, Dynamics, dynamics_regions
from hardmine.analysis.labels import label_issues
from hardmine.core.data import with_indices

DTYPES = [torch.float16, torch.bfloat16, torch.float32, torch.float64]


def _schedule(n, c, epochs, seed, *, binary=False, dtype=torch.float32):
    """Per-epoch update batches: random order, some samples skipped, some seen twice, random logits."""
    g = torch.Generator().manual_seed(seed)
    plan = []
    for _ in range(epochs):
        order = torch.randperm(n, generator=g)
        keep = order[torch.rand(n, generator=g) > 0.2]
        dup = keep[: max(1, len(keep) // 5)]
        idx = torch.cat([keep, dup])
        shape = (len(idx),) if binary else (len(idx), c)
        logits = (3 * torch.randn(shape, generator=g)).to(dtype)
        labels = (torch.arange(n) % (2 if binary else c))[idx]  # a sample's label is fixed
        batches = [(idx[i : i + 7], logits[i : i + 7], labels[i : i + 7]) for i in range(0, len(idx), 7)]
        plan.append(batches)
    return plan


def _reference(plan, n):
    """A plain per-sample loop over the full history."""
    per_epoch = []  # list of dict sample -> (lp, margin, correct_frac, runner_up)
    for batches in plan:
        acc = {}
        for idx, logits, labels in batches:
            z = logits.double()
            if z.ndim == 1:
                z = torch.stack([torch.zeros_like(z), z], 1)
            for row in range(len(idx)):
                i, y = int(idx[row]), int(labels[row])
                p = torch.softmax(z[row], 0)
                others = [(float(z[row, k]), k) for k in range(z.shape[1]) if k != y]
                best = max(v for v, _ in others)
                ru = [k for v, k in others if v == best][0]
                acc.setdefault(i, []).append(
                    (float(p[y]), float(z[row, y]) - best, float(int(z[row].argmax()) == y), ru)
                )
        per_epoch.append(
            {
                i: (
                    np.mean([u[0] for u in us]),
                    np.mean([u[1] for u in us]),
                    np.mean([u[2] for u in us]),
                    max(u[3] for u in us),
                )
                for i, us in acc.items()
            }
        )
    rows = []
    for i in range(n):
        vals = [e[i] for e in per_epoch if i in e]
        if not vals:
            rows.append((np.nan, np.nan, np.nan, np.nan, 0, False, 0, -1))
            continue
        lps = np.array([v[0] for v in vals])
        correct = [v[2] > 0.5 for v in vals]
        forgetting = sum(1 for a, b in zip(correct, correct[1:], strict=False) if a and not b)
        rows.append(
            (
                lps.mean(),
                lps.std(),
                np.mean([v[2] for v in vals]),
                np.mean([v[1] for v in vals]),
                forgetting,
                any(correct),
                len(vals),
                vals[-1][3],
            )
        )
    ref = pd.DataFrame(
        rows,
        columns="mean_label_prob variability correctness aum forgetting learned epochs runner_up".split(),
    )
    return ref, per_epoch


def _run(plan, n, **kwargs):
    dyn = Dynamics(num_samples=n, **kwargs)
    for batches in plan:
        for idx, logits, labels in batches:
            dyn.update(idx, logits, labels)
        dyn.end_epoch()
    return dyn


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("binary", [False, True], ids=["multiclass", "binary"])
def test_statistics_match_reference(dtype, binary):
    n, c, epochs = 23, 4, 5
    plan = _schedule(n, c, epochs, seed=1, binary=binary, dtype=dtype)
    dyn = _run(plan, n, keep_history=True)
    ref, per_epoch = _reference(plan, n)
    table = dyn.summary()
    assert list(table.columns) == list(SUMMARY_COLUMNS)
    assert table["index"].tolist() == list(range(n))
    tol = {"rtol": 1e-5, "atol": 1e-5}
    for col in ("mean_label_prob", "variability", "correctness", "aum"):
        np.testing.assert_allclose(table[col].to_numpy(np.float64), ref[col].to_numpy(), **tol, err_msg=col)
    for col in ("forgetting", "learned", "epochs", "runner_up"):
        np.testing.assert_array_equal(table[col].to_numpy(), ref[col].to_numpy(), err_msg=col)
    seen = ref["epochs"].to_numpy() > 0
    labels = np.arange(n) % (2 if binary else c)
    np.testing.assert_array_equal(table["label"].to_numpy(), np.where(seen, labels, -1))
    assert table["forgetting"].sum() > 0

    hist = dyn.history()
    assert hist["label_prob"].shape == (epochs, n)
    for e, vals in enumerate(per_epoch):
        for i in range(n):
            if i in vals:
                assert hist["label_prob"][e, i].item() == pytest.approx(vals[i][0], abs=1e-5)
                assert hist["aum_margin"][e, i].item() == pytest.approx(vals[i][1], abs=1e-5)
                assert hist["correct"][e, i].item() == pytest.approx(vals[i][2], abs=1e-9)
            else:
                assert torch.isnan(hist["label_prob"][e, i])
    # The statistics equal the same statistics computed from the kept history.
    lp = hist["label_prob"].numpy()
    np.testing.assert_allclose(table["mean_label_prob"], np.nanmean(lp, 0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(table["variability"], np.nanstd(lp, 0), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(table["aum"], np.nanmean(hist["aum_margin"].numpy(), 0), rtol=1e-5, atol=1e-5)


def test_unseen_samples_are_nan_and_do_not_count_epochs():
    dyn = Dynamics(num_samples=4)
    dyn.update(torch.tensor([0, 1]), torch.tensor([[3.0, 0.0], [0.0, 3.0]]), torch.tensor([0, 0]))
    dyn.end_epoch()
    dyn.update(torch.tensor([0]), torch.tensor([[-3.0, 0.0]]), torch.tensor([0]))
    dyn.end_epoch()
    t = dyn.summary()
    assert t["epochs"].tolist() == [2, 1, 0, 0]
    assert t["forgetting"].tolist() == [1, 0, 0, 0]
    assert t["learned"].tolist() == [True, False, False, False]
    assert t["aum"].tolist()[:2] == [0.0, -3.0]
    assert t[["mean_label_prob", "variability", "correctness", "aum"]].iloc[2:].isna().all().all()
    assert t["label"].tolist() == [0, 0, -1, -1]
    assert t["runner_up"].tolist() == [1, 1, -1, -1]
    assert dyn.num_epochs == 2


@settings(deadline=None, max_examples=15)
@given(batch=st.integers(1, 30), seed=st.integers(0, 1000))
def test_batch_partition_does_not_matter(batch, seed):
    g = torch.Generator().manual_seed(seed)
    n, c = 17, 3
    idx = torch.randperm(n, generator=g)
    logits = torch.randn(n, c, generator=g, dtype=torch.float64)
    labels = torch.randint(0, c, (n,), generator=g)
    one, many = Dynamics(num_samples=n), Dynamics(num_samples=n)
    one.update(idx, logits, labels)
    for i in range(0, n, batch):
        many.update(idx[i : i + batch], logits[i : i + batch], labels[i : i + batch])
    one.end_epoch()
    many.end_epoch()
    pd.testing.assert_frame_equal(one.summary(), many.summary(), rtol=1e-12, atol=1e-12)


class _EpochModel(torch.nn.Module):
    """A fixed model whose logits move with the epoch, so that the dynamics are not constant."""

    def __init__(self):
        super().__init__()
        self.lin = torch.nn.Linear(3, 4)
        with torch.no_grad():
            self.lin.weight.copy_(torch.linspace(-1, 1, 12).reshape(4, 3))
            self.lin.bias.zero_()
        self.epoch = 0

    def forward(self, x):
        return self.lin(x) * (1 + self.epoch) + torch.sin(x.sum(1, keepdim=True) * (self.epoch + 1))


def test_shuffled_loader_gives_same_summary_as_unshuffled():
    g = torch.Generator().manual_seed(0)
    ds = TensorDataset(torch.randn(50, 3, generator=g), torch.randint(0, 4, (50,), generator=g))
    model = _EpochModel()
    tables = []
    for shuffle in (False, True):
        loader = DataLoader(ds, batch_size=8, shuffle=shuffle, generator=torch.Generator().manual_seed(3))
        dyn = Dynamics(num_samples=len(ds))
        for epoch in range(4):
            model.epoch = epoch
            for idx, x, y in with_indices(loader):
                dyn.update(idx, model(x).detach(), y)
            dyn.end_epoch()
        tables.append(dyn.summary())
    pd.testing.assert_frame_equal(tables[0], tables[1], rtol=1e-6, atol=1e-6)
    assert tables[0]["epochs"].eq(4).all()
    assert tables[0]["variability"].gt(0).any()


def test_state_round_trip_mid_epoch():
    n, c = 19, 3
    plan = _schedule(n, c, 4, seed=7)
    full = _run(plan, n, keep_history=True)
    first = Dynamics(num_samples=n, keep_history=True)
    for batches in plan[:2]:
        for b in batches:
            first.update(*b)
        first.end_epoch()
    half = len(plan[2]) // 2
    for b in plan[2][:half]:
        first.update(*b)
    buf = io.BytesIO()
    torch.save(first.state_dict(), buf)
    buf.seek(0)
    resumed = Dynamics(num_samples=n)
    resumed.load_state_dict(torch.load(buf, weights_only=True))
    assert resumed.keep_history and resumed.num_epochs == 2
    for b in plan[2][half:]:
        resumed.update(*b)
    resumed.end_epoch()
    for b in plan[3]:
        resumed.update(*b)
    resumed.end_epoch()
    pd.testing.assert_frame_equal(full.summary(), resumed.summary())
    for k, v in full.history().items():
        torch.testing.assert_close(v, resumed.history()[k], equal_nan=True)


def test_state_of_unused_object_round_trips():
    dyn = Dynamics(num_samples=3)
    other = Dynamics(num_samples=3)
    other.load_state_dict(dyn.state_dict())
    assert other.summary()["epochs"].tolist() == [0, 0, 0]


def test_regions_constructed_case():
    # easy: always confident; ambiguous: flips between 0.9 and 0.1; hard: always wrong; unseen: no region.
    dyn = Dynamics(num_samples=4)
    for epoch in range(6):
        big = 5.0 if epoch % 2 == 0 else -5.0
        logits = torch.tensor([[5.0, 0.0], [big, 0.0], [-5.0, 0.0]])
        dyn.update(torch.tensor([0, 1, 2]), logits, torch.tensor([0, 0, 0]))
        dyn.end_epoch()
    table = dyn.regions()
    assert table["region"].tolist()[:3] == ["easy-to-learn", "ambiguous", "hard-to-learn"]
    assert pd.isna(table["region"].iloc[3])
    assert list(table["region"].cat.categories) == list(REGIONS)
    # Thresholds are parameters: at the largest allowed variability threshold (0.5) nothing is ambiguous, and a
    # mean label probability threshold of 0 makes the hard sample easy.
    t2 = dyn.regions(mean_label_prob_threshold=0.0, variability_threshold=0.5)
    assert t2["region"].tolist()[:3] == ["easy-to-learn", "easy-to-learn", "easy-to-learn"]
    assert t2.attrs["hardmine"]["mean_label_prob_threshold"] == 0.0
    # The old argument name still works for one release, with a warning.
    with pytest.warns(DeprecationWarning, match=r"`confidence_threshold=` of Dynamics.regions is deprecated"):
        t3 = dyn.regions(confidence_threshold=0.0, variability_threshold=0.5)
    assert t3["region"].tolist() == t2["region"].tolist()
    assert t3.attrs["hardmine"]["confidence_threshold"] == 0.0  # the old key, still written for one release


def test_regions_errors():
    t = pd.DataFrame({"mean_label_prob": [0.5], "variability": [0.1]})
    with pytest.raises(ValueError, match=r"`mean_label_prob_threshold` must be in \[0, 1\], got 1.5"):
        dynamics_regions(t, mean_label_prob_threshold=1.5)
    with pytest.raises(ValueError, match=r"`variability_threshold` must be in \[0, 0.5\], got -0.1"):
        dynamics_regions(t, variability_threshold=-0.1)
    with pytest.raises(ValueError, match="`variability` column"):
        dynamics_regions(t[["mean_label_prob"]])
    with pytest.raises(TypeError, match="got both `mean_label_prob_threshold` and its old name `confidence_threshold`"):
        dynamics_regions(t, mean_label_prob_threshold=0.5, confidence_threshold=0.5)
    with pytest.raises(TypeError, match="DataFrame"):
        dynamics_regions(t.to_numpy())


def test_planted_mislabeled_sample_ranked_first():
    g = torch.Generator().manual_seed(0)
    n = 200
    y_true = torch.arange(n) % 2
    x = torch.randn(n, 2, generator=g) * 0.7 + (y_true[:, None] * 2 - 1) * 2.0
    y = y_true.clone()
    planted = 37
    y[planted] = 1 - y[planted]
    model = torch.nn.Linear(2, 2)
    with torch.no_grad():  # not the global RNG: the result must not depend on which tests ran before
        model.weight.copy_(torch.randn(2, 2, generator=g) * 0.1)
        model.bias.zero_()
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    loader = DataLoader(TensorDataset(x, y), batch_size=32, shuffle=True, generator=torch.Generator().manual_seed(1))
    dyn = Dynamics(num_samples=n)
    for _ in range(15):
        for idx, xb, yb in with_indices(loader):
            logits = model(xb)
            loss = torch.nn.functional.cross_entropy(logits, yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
            dyn.update(idx, logits, yb)
        dyn.end_epoch()
    issues = label_issues(dyn)
    assert issues["index"].iloc[0] == planted
    assert issues["suggested_label"].iloc[0] == int(y_true[planted])
    assert bool(issues["is_issue"].iloc[0])
    assert dyn.regions()["region"].iloc[planted] == "hard-to-learn"
    table = dyn.summary()
    assert table["aum"].idxmin() == planted


def test_update_errors():
    dyn = Dynamics(num_samples=3)
    with pytest.raises(ValueError, match=r"indices.*\[0, 3\).*\[5\]"):
        dyn.update(torch.tensor([0, 5]), torch.zeros(2, 2), torch.tensor([0, 1]))
    with pytest.raises(TypeError, match="integer tensor"):
        dyn.update(torch.tensor([0.0, 1.0]), torch.zeros(2, 2), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="same number of samples"):
        dyn.update(torch.tensor([0, 1]), torch.zeros(3, 2), torch.tensor([0, 1, 1]))
    with pytest.raises(TypeError, match="torch.Tensor"):
        dyn.update(torch.tensor([0]), [[0.0, 1.0]], torch.tensor([0]))
    with pytest.raises(TypeError, match="`labels` to be a torch.Tensor"):
        dyn.update(torch.tensor([0]), torch.zeros(1, 2), [0])
    with pytest.raises(ValueError, match=r"one class index per sample \(2\)"):
        dyn.update(torch.tensor([0, 1]), torch.zeros(2, 2), torch.tensor([0, 1, 1]))


def test_bad_labels_and_nonfinite_logits_reported_at_end_epoch():
    dyn = Dynamics(num_samples=3)
    dyn.update(
        torch.tensor([0, 1, 2]), torch.tensor([[0.0, 1.0], [float("nan"), 0.0], [0.0, 0.0]]), torch.tensor([0, 0, 7])
    )
    with pytest.raises(ValueError, match=r"samples \[2\] had labels.*samples \[1\] had non-finite"):
        dyn.end_epoch()
    assert dyn.num_epochs == 0
    dyn.update(torch.tensor([0]), torch.tensor([[0.0, 1.0]]), torch.tensor([1]))
    dyn.end_epoch()
    assert dyn.summary()["epochs"].tolist() == [1, 0, 0]


def test_constructor_and_state_errors():
    with pytest.raises(ValueError, match="num_samples"):
        Dynamics(num_samples=0)
    with pytest.raises(ValueError, match="`ids`"):
        Dynamics(num_samples=2, ids=["a"])
    with pytest.raises(ValueError, match="keep_history=True"):
        Dynamics(num_samples=2).history()
    with pytest.raises(ValueError, match="num_samples=2"):
        Dynamics(num_samples=2).load_state_dict(Dynamics(num_samples=3).state_dict())
    with pytest.raises(ValueError, match="Dynamics.state_dict"):
        Dynamics(num_samples=2).load_state_dict({"foo": 1})


def test_ids_and_device_option():
    dyn = Dynamics(num_samples=2, ids=["a.png", "b.png"], device="cpu")
    dyn.update(torch.tensor([1, 0]), torch.tensor([[1.0, 0.0], [0.0, 1.0]]), torch.tensor([0, 0]))
    dyn.end_epoch()
    t = dyn.summary()
    assert t["id"].tolist() == ["a.png", "b.png"]
    assert t["aum"].tolist() == [-1.0, 1.0]


@needs_cuda
def test_cuda_matches_cpu():
    n, c = 23, 4
    plan = _schedule(n, c, 3, seed=2)
    cpu = _run(plan, n)
    gpu = Dynamics(num_samples=n)
    for batches in plan:
        for idx, logits, labels in batches:
            gpu.update(idx.cuda(), logits.cuda(), labels.cuda())
        gpu.end_epoch()
    assert gpu.device.type == "cuda"
    pd.testing.assert_frame_equal(cpu.summary(), gpu.summary(), rtol=1e-5, atol=1e-5)


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _dist_worker(rank, world, port, out_dir):
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    try:
        plan = _schedule(23, 4, 3, seed=5)
        dyn = Dynamics(num_samples=23)
        for batches in plan:
            for b, (idx, logits, labels) in enumerate(batches):
                if b % world == rank:  # each rank sees its share of the batches
                    dyn.update(idx, logits, labels)
            dyn.end_epoch()
        dyn.summary().to_pickle(os.path.join(out_dir, f"rank{rank}.pkl"))
        dist.barrier()  # no rank leaves gloo while another still works: that can abort the other at exit
    finally:
        dist.destroy_process_group()


@pytest.mark.slow
@pytest.mark.distributed
def test_distributed_reduce_every_rank_sees_every_sample():
    import torch.multiprocessing as mp

    with tempfile.TemporaryDirectory() as out_dir:
        mp.spawn(_dist_worker, args=(2, _free_port(), out_dir), nprocs=2, join=True)
        ref = _run(_schedule(23, 4, 3, seed=5), 23).summary()
        for rank in range(2):
            got = pd.read_pickle(os.path.join(out_dir, f"rank{rank}.pkl"))
            pd.testing.assert_frame_equal(ref, got, rtol=1e-6, atol=1e-6)


def test_add_dynamics_joins_on_index_and_splits_by_every_column():
    from hardmine.analysis.dynamics import HARDNESS_COLUMNS, add_dynamics
    from hardmine.analysis.splitting import split

    dyn = _run(_schedule(12, 3, 3, seed=4), 12)
    summary = dyn.summary()
    seen = summary.loc[summary["epochs"] > 0, "index"].to_numpy()[::-1]
    scores = pd.DataFrame(
        {
            "index": seen,
            "label": summary.set_index("index").loc[seen, "label"].to_numpy(),
            "confidence": np.linspace(0.2, 0.9, len(seen), dtype=np.float32),
        }
    )
    table = add_dynamics(scores, dyn)
    assert list(table.columns) == ["index", "label", "confidence", *HARDNESS_COLUMNS]
    ref = summary.set_index("index").loc[seen]
    np.testing.assert_array_equal(table["aum"], ref["aum"])
    np.testing.assert_array_equal(table["mean_label_prob"], ref["mean_label_prob"])  # not the score's confidence
    np.testing.assert_array_equal(table["confidence"], scores["confidence"])
    np.testing.assert_array_equal(table["forgetting"], ref["forgetting"])
    for col in HARDNESS_COLUMNS:
        out = split(table, by=col, hard_fraction=0.5, positive=0)
        hard = out["difficulty"] == "hard"
        values = table[col].to_numpy(np.float64)
        if col in ("variability", "forgetting"):  # higher is harder
            assert values[hard].min() >= values[~hard].max(), col
        else:
            assert values[hard].max() <= values[~hard].min(), col


def test_add_dynamics_errors():
    from hardmine.analysis.dynamics import add_dynamics

    dyn = Dynamics(num_samples=2)
    with pytest.raises(ValueError, match="Expected `columns`"):
        add_dynamics(pd.DataFrame({"index": [0]}), dyn, columns=["loss"])
    with pytest.raises(ValueError, match="already in `scores`"):
        add_dynamics(pd.DataFrame({"index": [0], "aum": [1.0]}), dyn, columns=["aum"])
    with pytest.raises(ValueError, match="`index` column"):
        add_dynamics(pd.DataFrame({"label": [0]}), dyn)
    with pytest.raises(ValueError, match=r"\[0, 2\).*\[5\]"):
        add_dynamics(pd.DataFrame({"index": [0, 5]}), dyn)
    with pytest.raises(TypeError, match="DataFrame"):
        add_dynamics([0, 1], dyn)


def test_repr_says_what_it_holds():
    dyn = Dynamics(num_samples=5)
    assert repr(dyn) == "Dynamics(num_samples=5, epochs=0, device=None (set by the first update), keep_history=False)"
    for _ in range(2):
        dyn.update(torch.tensor([0, 2, 4]), torch.randn(3, 4), torch.tensor([0, 1, 2]))
        dyn.end_epoch()
    dyn.update(torch.tensor([1]), torch.randn(1, 4), torch.tensor([3]))
    assert repr(dyn) == (
        "Dynamics(num_samples=5, epochs=2, seen=3, updated_this_epoch=1, device='cpu', keep_history=False)"
    )


def test_an_old_summary_with_a_confidence_column_is_read_with_a_warning():
    """Summaries written before 0.4.0 name the mean label probability `confidence`: read for one more release."""
    new = pd.DataFrame({"mean_label_prob": [0.95, 0.5, 0.1], "variability": [0.02, 0.3, 0.05]})
    old = new.rename(columns={"mean_label_prob": "confidence"})
    with pytest.warns(DeprecationWarning, match=r"`confidence` column is named `mean_label_prob`"):
        regions = dynamics_regions(old)
    assert regions["region"].tolist() == dynamics_regions(new)["region"].tolist()
    assert regions["region"].tolist() == ["easy-to-learn", "ambiguous", "hard-to-learn"]


def test_arguments_that_would_fail_later_or_silently_are_refused_up_front() -> None:
    with pytest.raises(TypeError, match="`ids` to be a sequence of one id per sample, but got <class 'int'>"):
        Dynamics(3, ids=5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="`device` to be a torch device such as 'cpu' or 'cuda', got 'nope'"):
        Dynamics(3, device="nope")
    dyn = Dynamics(4)
    with pytest.raises(ValueError, match=r"`logits` of shape \(B, C\), \(B,\) or \(B, 1\), but got shape \(\)"):
        dyn.update(torch.tensor([0]), torch.tensor(1.0), torch.tensor([0]))
    dyn.update(torch.tensor([0, 1]), torch.zeros(2, 2), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="with 2 classes as in the earlier updates, but got 5"):
        dyn.update(torch.tensor([2]), torch.zeros(1, 5), torch.tensor([3]))  # margins of 2 and 5 classes mixed
    with pytest.raises(TypeError, match="`sync` must be"):
        dyn.end_epoch(sync="x")  # type: ignore[arg-type]
    dyn.end_epoch()
    assert dyn.summary()["epochs"].tolist() == [1, 1, 0, 0]  # the refused update recorded nothing


@pytest.mark.parametrize("device", DEVICES)
def test_a_loaded_state_moves_to_the_device_of_the_next_update(device) -> None:
    saved = Dynamics(3)
    saved.update(torch.tensor([0, 1]), torch.tensor([[2.0, 0.0], [0.0, 1.0]]), torch.tensor([0, 0]))
    saved.end_epoch()
    resumed = Dynamics(3)  # a new process, no device set
    resumed.load_state_dict(saved.state_dict())
    resumed.update(torch.tensor([2], device=device), torch.tensor([[1.0, 0.0]], device=device),
                   torch.tensor([0], device=device))  # fmt: skip
    resumed.end_epoch()
    assert resumed.device.type == device
    assert resumed.summary()["aum"].tolist() == pytest.approx([2.0, -1.0, 1.0])
