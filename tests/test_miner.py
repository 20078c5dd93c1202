import math

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, TensorDataset

import hardmine as hm
import hardmine.feedback.miner
from hardmine.analysis.dynamics import Dynamics
from hardmine.analysis.labels import issue_indices, label_issues
from hardmine.analysis.splitting import split
from hardmine.feedback.losses import weighted_loss
from hardmine.feedback.miner import HardMiner, ShareBatchSampler, importance_weights
from hardmine.scoring.engine import score

N = 128

# The rare positives of these tiny tasks are the hard set, which hm.sample_weights rightly warns about (tested once).
pytestmark = pytest.mark.filterwarnings("ignore::hardmine.feedback.weighting.HardSetCollapseWarning")


def _data(n: int = N, seed: int = 0, classes: int = 2) -> TensorDataset:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 4, generator=g)
    y = (
        (x[:, 0] + 0.5 * torch.randn(n, generator=g) > 1.0).long()
        if classes == 2
        else torch.randint(0, classes, (n,), generator=g)
    )
    return TensorDataset(x, y)


def _model(classes: int = 2) -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Dropout(0.2), nn.Linear(16, classes))


def _loader(ds=None, batch_size: int = 16, **kw) -> DataLoader:
    return DataLoader(_data() if ds is None else ds, batch_size=batch_size, shuffle=True, **kw)


def _run(miner: HardMiner, epochs: int, model: nn.Module | None = None) -> list[list]:
    """Iterate `epochs` epochs, training `model` with SGD when given; returns the batches of every epoch."""
    opt = torch.optim.SGD(model.parameters(), lr=0.1) if model is not None else None
    out = []
    for _ in range(epochs):
        batches = []
        for batch in miner:
            batches.append(batch)
            if opt is not None:
                logits = model(batch[0])
                loss = (
                    weighted_loss(logits, batch[1], batch[2])
                    if len(batch) == 3
                    else nn.functional.cross_entropy(logits, batch[1])
                )
                opt.zero_grad()
                loss.backward()
                opt.step()
        out.append(batches)
    return out


def _always_negative() -> nn.Module:
    """Says "negative" for every input: the hard set is exactly the rare positives."""
    model = nn.Linear(4, 2)
    with torch.no_grad():
        model.weight.zero_()
        model.bias.copy_(torch.tensor([3.0, 0.0]))
    return model


# ---------------------------------------------------------------- schedule
@pytest.mark.parametrize(
    ("every", "warmup", "epochs", "expected"),
    [
        (1, 0, 4, [0, 1, 2, 3]),
        (2, 0, 5, [0, 2, 4]),
        (2, 1, 6, [1, 3, 5]),
        (3, 2, 6, [2, 5]),
    ],
)
def test_rescores_on_schedule(count_scores, every, warmup, epochs, expected):
    model = _model()
    miner = HardMiner(model, _loader(), rescore_every=every, warmup_epochs=warmup, progress=False)
    _run(miner, epochs, model)
    assert len(count_scores.calls) == len(expected) == miner.score_calls
    assert miner.history["epoch"].tolist() == expected
    assert miner.epoch == epochs - 1


def test_rescores_on_callable_schedule(count_scores):
    model = _model()
    miner = HardMiner(model, _loader(), rescore_every=lambda e: e in (0, 3), warmup_epochs=0, progress=False)
    _run(miner, 5, model)
    assert miner.history["epoch"].tolist() == [0, 3]
    assert len(count_scores.calls) == 2


def test_callable_schedule_scores_first_mining_epoch_anyway(count_scores):
    miner = HardMiner(_model(), _loader(), rescore_every=lambda e: False, warmup_epochs=1, progress=False)
    _run(miner, 3)
    assert miner.history["epoch"].tolist() == [1]


def test_warmup_and_uniform_phases_draw_every_sample_once(count_scores):
    miner = HardMiner(_model(), _loader(), warmup_epochs=2, uniform_after=4, hard_weight=10.0, progress=False)
    phases, per_epoch = [], []
    for _ in range(6):
        before = miner.draws.clone()
        for _batch in miner:
            pass
        phases.append(miner.phase)
        per_epoch.append(miner.draws - before)
    assert phases == ["warmup", "warmup", "mine", "mine", "uniform", "uniform"]
    assert miner.history["epoch"].tolist() == [2, 3]
    for e in (0, 1, 4, 5):
        torch.testing.assert_close(per_epoch[e], torch.ones(N, dtype=torch.int64))
    for e in (2, 3):
        assert int(per_epoch[e].sum()) == N and int(per_epoch[e].max()) > 1  # weighted draws repeat samples


def test_len_is_constant_and_matches_batches():
    for drop_last in (False, True):
        loader = DataLoader(_data(n=100), batch_size=16, drop_last=drop_last)
        miner = HardMiner(_model(), loader, warmup_epochs=1, uniform_after=2, progress=False)
        lengths = [len(b) for b in _run(miner, 3)]
        assert lengths == [len(loader)] * 3 == [len(miner)] * 3


# ---------------------------------------------------------------- the model is left as it was
def test_scoring_leaves_the_model_as_it_was():
    model = _model()
    model.train()
    model[3].eval()  # a submodule in its own mode must get it back
    flags = [m.training for m in model.modules()]
    state = {k: v.clone() for k, v in model.state_dict().items()}
    miner = HardMiner(model, _loader(), progress=False)
    miner.rescore()
    assert [m.training for m in model.modules()] == flags
    for k, v in model.state_dict().items():
        torch.testing.assert_close(v, state[k], rtol=0, atol=0, msg=k)
    assert all(p.grad is None for p in model.parameters())
    model.eval()
    miner.rescore()
    assert not any(m.training for m in model.modules())


# ---------------------------------------------------------------- hard samples are drawn more
def test_hard_samples_are_drawn_more():
    miner = HardMiner(
        _model(),
        _loader(),
        threshold=0.5,
        hard_weight=4.0,
        num_samples=40 * N,
        seed=1,
        balance=None,
        warmup_epochs=0,
        progress=False,
    )
    _run(miner, 1)
    table = miner.table
    hard = table["difficulty"] == "hard"
    assert 0 < hard.sum() < N
    drawn = table["drawn"].to_numpy()
    assert drawn.sum() == 40 * N
    # draws follow the sampling weights: per-sample mean draws over the weight is the same for hard and easy
    w = table["weight"].to_numpy()
    expected = 40 * N * w / w.sum()
    assert abs(drawn[hard].sum() / expected[hard].sum() - 1) < 0.05
    assert abs(drawn[~hard].sum() / expected[~hard].sum() - 1) < 0.05
    assert drawn[hard].mean() > 2.5 * drawn[~hard].mean()
    row = miner.history.iloc[-1]
    assert row["drawn_per_hard"] == pytest.approx(drawn[hard].mean())
    assert row["drawn_per_easy"] == pytest.approx(drawn[~hard].mean())


def test_default_balances_the_classes_and_favours_hard_samples_within_each():
    ds = _data()
    labels = ds.tensors[1].numpy()
    assert 0.1 < labels.mean() < 0.4  # a minority positive class
    miner = HardMiner(_model(), _loader(ds), threshold=0.6, num_samples=60 * N, seed=2, warmup_epochs=0, progress=False)
    assert miner.balance == "label"
    _run(miner, 1)
    table = miner.table
    w = table["weight"].to_numpy()
    hard = (table["difficulty"] == "hard").to_numpy()
    label = table["label"].to_numpy()
    # Every class carries the same total weight; inside a class a hard sample weighs hard_weight / easy_weight.
    assert w[label == 0].sum() == pytest.approx(w[label == 1].sum(), rel=1e-6)
    for c in (0, 1):
        assert (hard & (label == c)).any() and (~hard & (label == c)).any()
        np.testing.assert_allclose(w[hard & (label == c)], w[~hard & (label == c)].max() * 4.0, rtol=1e-6)
    # The draws follow: each class about half of the 60 N draws (binomial sd about 44), the hard ones 4x per class.
    drawn = table["drawn"].to_numpy()
    assert abs(drawn[label == 1].sum() - 30 * N) < 5 * math.sqrt(60 * N * 0.25)
    for c in (0, 1):
        in_c = label == c
        assert drawn[hard & in_c].mean() > 3 * drawn[~hard & in_c].mean()
    # The same weights as hm.sample_weights gives with balance="label".
    from hardmine.feedback.weighting import weights

    np.testing.assert_allclose(w, weights(table, hard_weight=4.0, easy_weight=1.0, balance="label").numpy(), rtol=1e-6)


def test_balance_polarity_for_a_multiclass_task_with_a_positive_class():
    ds = _data(classes=4, seed=3)
    miner = HardMiner(_model(4), _loader(ds), positive=2, balance="polarity", progress=False)
    table = miner.rescore()
    w = table["weight"].to_numpy()
    pos = (table["polarity"] == "positive").to_numpy()
    assert pos.sum() < N / 2
    assert w[pos].sum() == pytest.approx(w[~pos].sum(), rel=1e-6)


def test_loss_mode_with_balance_gives_class_balanced_loss_weights():
    ds = _data()
    miner = HardMiner(_model(), _loader(ds), apply="loss", threshold=0.6, progress=False)
    table = miner.rescore()
    lw = table["loss_weight"].to_numpy().astype(np.float64)
    label = table["label"].to_numpy()
    assert lw.mean() == pytest.approx(1.0, rel=1e-6)
    assert lw[label == 0].sum() == pytest.approx(lw[label == 1].sum(), rel=1e-5)
    assert (table["weight"] == 1.0).all()


@pytest.mark.filterwarnings("error::hardmine.feedback.weighting.HardSetCollapseWarning")
def test_default_balance_does_not_collapse_onto_the_rare_class():
    model = _always_negative()
    table = HardMiner(model, _loader(), threshold=0.7, progress=False).rescore()
    assert (table["difficulty"] == "hard").sum() == (table["label"] == 1).sum()
    w = table["weight"].to_numpy()
    assert w[table["label"] == 1].sum() == pytest.approx(w[table["label"] == 0].sum(), rel=1e-6)


def test_suspect_under_the_default_balance_weighs_as_an_easy_sample_of_its_class():
    model = _linear()
    miner = _planted_miner(model, None, exclude_label_issues=[MISLABELLED], warmup_epochs=0, balance="label")
    table = miner.rescore()
    label1 = table["label"] == 1
    easy1 = table.loc[label1 & (table["difficulty"] == "easy") & ~table["suspect"], "weight"]
    assert table.loc[MISLABELLED, "label"] == 1 and table.loc[MISLABELLED, "difficulty"] == "hard"
    assert table.loc[MISLABELLED, "weight"] == pytest.approx(easy1.iloc[0])
    assert table.loc[BOUNDARY, "weight"] == pytest.approx(4 * easy1.iloc[0])
    w = table["weight"]
    assert w[label1].sum() == pytest.approx(w[~label1].sum(), rel=1e-6)


def test_history_counts_match_table():
    model = _model()
    miner = HardMiner(model, _loader(), threshold=0.7, warmup_epochs=0, progress=False)
    _run(miner, 3, model)
    hist = miner.history
    assert len(hist) == 3
    last, table = hist.iloc[-1], miner.table
    for g in ("hard_positive", "easy_positive", "hard_negative", "easy_negative"):
        assert last[g] == int((table["group"] == g).sum())
    assert last["hard"] == last["hard_positive"] + last["hard_negative"]
    assert last["hard_fraction"] == pytest.approx((table["difficulty"] == "hard").mean())
    assert last["mean_label_prob"] == pytest.approx(table["label_prob"].mean(), rel=1e-6)
    assert last["accuracy"] == pytest.approx((table["pred"] == table["label"]).mean())
    # the earlier rows got their draw counts when the next scoring closed their period
    assert (hist["hard"] > 0).all()
    assert not hist[["drawn_per_hard", "drawn_per_easy"]].isna().any().any()
    assert (hist["drawn_per_hard"] > hist["drawn_per_easy"]).all()


# ---------------------------------------------------------------- apply modes and yielded weights
def test_sample_mode_yields_plain_batches():
    miner = HardMiner(_model(), _loader(), progress=False)
    batch = next(iter(miner))
    assert isinstance(batch, list) and len(batch) == 2


def _correcting_miner(mode: str, num: int, **kw) -> HardMiner:
    """A miner that samples ``num`` draws per epoch in ``mode`` and importance-corrects the loss (threshold 0.6)."""
    return HardMiner(
        _model(),
        _loader(),
        apply="sample+correct",
        sampler_mode=mode,
        num_samples=num,
        threshold=0.6,
        progress=False,
        **kw,
    )


@pytest.mark.parametrize("mode", ["replacement", "cover"])
def test_importance_weights_are_one_over_n_p(mode):
    num = 3 * N if mode == "cover" else N
    miner = _correcting_miner(mode, num, warmup_epochs=0)
    w_seen = torch.zeros(N, dtype=torch.float32)
    for idx, _x, _y, w in _run(_correcting_miner(mode, num, warmup_epochs=0, indices=True), 1)[0]:
        w_seen[idx] = w
    _run(miner, 1)
    sw = torch.tensor(miner.table["weight"].to_numpy(), dtype=torch.float64)
    p = sw / sw.sum()
    if mode == "replacement":
        expected = 1.0 / (N * p)
    else:  # every sample once plus (num - N) weighted draws: expected draws 1 + (num - N) p
        expected = num / (N * (1.0 + (num - N) * p))
    torch.testing.assert_close(
        torch.tensor(miner.table["loss_weight"].to_numpy(), dtype=torch.float64), expected, rtol=1e-6, atol=0
    )
    seen = w_seen > 0
    torch.testing.assert_close(w_seen[seen].double(), expected[seen], rtol=1e-6, atol=0)


@pytest.mark.parametrize("mode", ["replacement", "cover"])
def test_importance_weighted_loss_is_unbiased(mode):
    # E[sum over an epoch's draws of w_i * loss_i] / draws == mean loss over the dataset, for any fixed losses.
    num = 2 * N
    miner = _correcting_miner(mode, num, hard_weight=8.0, indices=True)
    miner.rescore()
    table = miner.table
    hard = torch.from_numpy((table["difficulty"] == "hard").to_numpy(copy=True))
    lw = torch.tensor(table["loss_weight"].to_numpy(), dtype=torch.float64)
    # losses that are larger on the hard samples, as real losses are
    losses = torch.rand(N, generator=torch.Generator().manual_seed(3), dtype=torch.float64) + 3.0 * hard
    corrected, plain = [], []
    for epoch in range(400):  # the sampler's draw of each epoch, exactly what iterating the miner yields
        idx = miner.sampler.indices(epoch)
        corrected.append(float((lw[idx] * losses[idx]).sum()) / num)
        plain.append(float(losses[idx].sum()) / num)

    def mean_and_se(v):
        m = sum(v) / len(v)
        return m, (sum((e - m) ** 2 for e in v) / (len(v) - 1) / len(v)) ** 0.5

    truth = float(losses.mean())
    m, se = mean_and_se(corrected)
    assert abs(m - truth) < 4 * se
    # without the correction the weighted draw over-counts the hard samples' losses
    m, se = mean_and_se(plain)
    assert m - truth > 10 * se


def test_loss_mode_draws_uniformly_and_yields_weights():
    miner = HardMiner(
        _model(),
        _loader(),
        apply="loss",
        threshold=0.6,
        hard_weight=4.0,
        indices=True,
        balance=None,
        warmup_epochs=0,
        progress=False,
    )
    batches = _run(miner, 1)[0]
    torch.testing.assert_close(miner.draws, torch.ones(N, dtype=torch.int64))
    table = miner.table
    lw = torch.tensor(table["loss_weight"].to_numpy())
    assert float(lw.double().mean()) == pytest.approx(1.0, rel=1e-6)
    hard = torch.from_numpy((table["difficulty"] == "hard").to_numpy(copy=True))
    assert 0 < int(hard.sum()) < N
    assert float(lw[hard].min()) > float(lw[~hard].max())
    assert (table["weight"] == 1.0).all()
    for idx, x, _y, w in batches:
        torch.testing.assert_close(w, lw[idx])
        torch.testing.assert_close(x, miner.loader.dataset.tensors[0][idx])


def test_weights_are_ones_in_uniform_epochs():
    miner = HardMiner(_model(), _loader(), apply="loss", warmup_epochs=1, progress=False)
    for *_, w in _run(miner, 1)[0]:
        torch.testing.assert_close(w, torch.ones_like(w))


def test_with_weights_override_and_dict_batches():
    class DictDS(Dataset):
        def __init__(self):
            self.base = _data()

        def __len__(self):
            return len(self.base)

        def __getitem__(self, i):
            x, y = self.base[i]
            return {"x": x, "y": y}

    miner = HardMiner(_model(), DataLoader(DictDS(), batch_size=16), with_weights=True, progress=False)
    batch = next(iter(miner))
    assert set(batch) == {"x", "y", "weight"}
    torch.testing.assert_close(batch["weight"], torch.ones(16))


def test_indices_match_samples():
    ds = _data()
    miner = HardMiner(_model(), _loader(ds), indices=True, progress=False)
    for idx, x, y in _run(miner, 2)[1]:
        torch.testing.assert_close(x, ds.tensors[0][idx])
        torch.testing.assert_close(y, ds.tensors[1][idx])


# ---------------------------------------------------------------- batches with guaranteed shares
def test_positive_and_hard_shares_in_every_batch():
    ds = _data()
    pos = ds.tensors[1] == 1
    assert 0 < int(pos.sum()) < N // 4
    miner = HardMiner(
        _model(), _loader(ds), positive_share=0.25, hard_share=0.25, threshold=0.7, indices=True, progress=False
    )
    batches = _run(miner, 2)[1]
    assert len(batches) == len(miner) == math.ceil(N / 16)
    hard = torch.from_numpy((miner.table["difficulty"] == "hard").to_numpy(copy=True))
    for idx, _x, y, *_ in batches:
        assert idx.numel() == 16
        assert int((y == 1).sum()) >= 4
        assert int(hard[idx].sum()) >= 4


def test_share_sampler_expected_draws_and_correction():
    w = torch.ones(50, dtype=torch.float64)
    pos = torch.arange(50) < 5
    s = ShareBatchSampler(w, batch_size=10, num_batches=400, positive=pos, positive_share=0.3, seed=0)
    counts = torch.zeros(50, dtype=torch.float64)
    for batch in s:
        assert sum(i < 5 for i in batch) >= 3
        counts += torch.bincount(torch.tensor(batch), minlength=50)
    expected = s.expected_draws()
    torch.testing.assert_close(expected.sum(), torch.tensor(4000.0, dtype=torch.float64))
    torch.testing.assert_close(expected[:5], torch.full((5,), 400 * 3 / 5 + 400 * 7 / 50, dtype=torch.float64))
    torch.testing.assert_close(
        counts[:5].sum() / expected[:5].sum(), torch.tensor(1.0, dtype=torch.float64), rtol=0.05, atol=0
    )
    iw = importance_weights(w, expected_draws=expected, num_draws=4000)
    torch.testing.assert_close((iw * expected).sum() / 4000, torch.tensor(1.0, dtype=torch.float64))


def test_share_sampler_uniform_is_a_permutation():
    s = ShareBatchSampler(torch.ones(30), batch_size=10, num_batches=3)
    assert sorted(i for b in s for i in b) == list(range(30))


# ---------------------------------------------------------------- multi-class and checkpoints
def test_multiclass_without_positive_splits_easy_hard_only():
    # Behaviour changed on purpose (issue 14): no class is made positive behind the user's back.
    ds = _data(classes=4)
    miner = HardMiner(_model(classes=4), _loader(ds), threshold=0.3, warmup_epochs=0, progress=False)
    _run(miner, 1)
    assert "polarity" not in miner.table.columns and "group" not in miner.table.columns
    assert ((miner.table["difficulty"] == "hard") == (miner.table["label_prob"] < 0.3)).all()
    s = hm.summary(miner.table)
    acc = float((miner.table["pred"] == miner.table["label"]).mean())
    assert s.kind == "multiclass" and s.metrics["accuracy"] == pytest.approx(acc)
    miner = HardMiner(_model(classes=4), _loader(ds), threshold=0.3, positive=2, warmup_epochs=0, progress=False)
    _run(miner, 1)
    assert ((miner.table["polarity"] == "positive") == (miner.table["label"] == 2)).all()


def test_a_positive_class_the_model_lacks_raises_naming_the_classes():
    # Issue 11: HardMiner(positive=7) on a 4-class task gave zero positives without a word.
    miner = HardMiner(
        _model(classes=4), _loader(_data(classes=4)), threshold=0.3, positive=7, warmup_epochs=0, progress=False
    )
    with pytest.raises(ValueError, match=r"\[7\] is not among its classes \[0, 1, 2, 3\] nor the model classes 0..3"):
        _run(miner, 1)


def test_state_dict_round_trip():
    model = _model()
    miner = HardMiner(model, _loader(), apply="sample+correct", progress=False, indices=True)
    _run(miner, 2, None)
    state = miner.state_dict()
    other = HardMiner(model, _loader(), apply="sample+correct", progress=False, indices=True)
    other.load_state_dict(state)
    assert other.epoch == miner.epoch == 1
    pd.testing.assert_frame_equal(other.table, miner.table)
    pd.testing.assert_frame_equal(other.history, miner.history)
    a, b = _run(miner, 1)[0], _run(other, 1)[0]
    for x, y in zip(a, b, strict=True):
        for u, v in zip(x, y, strict=True):
            torch.testing.assert_close(u, v)
    with pytest.raises(ValueError, match="lacks"):
        other.load_state_dict({"draws": miner.draws})


def test_a_loaded_state_wins_over_a_pass_stopped_early_and_a_set_epoch():
    model = _model()
    saved = HardMiner(model, _loader(), rescore_every=1, warmup_epochs=1, progress=False)
    for _ in range(3):
        _ = list(saved)
    state = saved.state_dict()  # after epoch 2: the next pass is epoch 3, a mining epoch with a scoring pass
    for prepare in (lambda m: next(iter(m)), lambda m: m.set_epoch(7), lambda m: None):
        other = HardMiner(model, _loader(), rescore_every=1, warmup_epochs=1, progress=False)
        prepare(other)  # a peek into epoch 0 (the warm-up), a pending epoch 7, or nothing
        other.load_state_dict(state)
        calls = other.score_calls
        _ = list(other)
        assert (other.epoch, other.phase, other.score_calls - calls) == (3, "mine", 1)


def test_a_refused_state_leaves_the_miner_as_it_was():
    model = _model()
    miner = HardMiner(model, _loader(), rescore_every=None, warmup_epochs=0, progress=False, indices=True)
    for idx, x, y in miner:
        miner.observe(idx, model(x).detach(), y)
    before = miner.state_dict()
    bad = {**before, "observed": {**before["observed"], "num_samples": 5}}
    with pytest.raises(ValueError, match="its observed scores are for 5"):
        miner.load_state_dict(bad)
    with pytest.raises(TypeError, match="`state` to be a HardMiner.state_dict\\(\\) mapping, got <class 'list'>"):
        miner.load_state_dict([])  # type: ignore[arg-type]
    after = miner.state_dict()
    assert after["next_epoch"] == before["next_epoch"] and torch.equal(after["draws"], before["draws"])


def test_importance_weights_function():
    torch.testing.assert_close(
        importance_weights(torch.tensor([1.0, 3.0])), torch.tensor([2.0, 2.0 / 3.0], dtype=torch.float64)
    )
    torch.testing.assert_close(
        importance_weights(torch.tensor([0.0, 1.0])), torch.tensor([0.0, 0.5], dtype=torch.float64)
    )
    with pytest.raises(ValueError, match="`num_draws`"):
        importance_weights(torch.ones(3), expected_draws=torch.ones(3))


# ---------------------------------------------------------------- errors
@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"apply": "both"}, "`apply` must be one of 'sample', 'loss', 'sample\\+correct', got 'both'"),
        ({"threshold": 0.5, "hard_fraction": 0.2}, "only one of `threshold` and `hard_fraction`"),
        ({"threshold": "median"}, "`threshold` must be a real number, 'per_class' or None, got 'median'"),
        ({"threshold": float("nan")}, "`threshold` must be a finite number, got nan"),
        ({"hard_fraction": 1.5}, "`hard_fraction` must be in \\[0, 1\\], got 1.5"),
        ({"hard_weight": -1.0}, "`hard_weight` must be >= 0, got -1.0"),
        ({"easy_weight": -1.0}, "`easy_weight` must be >= 0, got -1.0"),
        ({"floor": 2.0}, "`floor` must be in \\[0, 1\\], got 2.0"),
        ({"rescore_every": 0}, "`rescore_every` must be >= 1, got 0"),
        ({"warmup_epochs": -1}, "`warmup_epochs` must be >= 0, got -1"),
        ({"warmup_epochs": 3, "uniform_after": 2}, r"`uniform_after` must be >= 3, got 2 \(warmup_epochs=3"),
        ({"positive_share": 1.2}, "`positive_share` must be in \\[0, 1\\], got 1.2"),
        ({"positive_share": 0.6, "hard_share": 0.6}, "`positive_share \\+ hard_share` <= 1"),
        ({"positive_share": 0.25, "apply": "loss"}, "apply='loss'"),
        ({"apply": "sample+correct", "sampler_mode": "no_replacement"}, "'no_replacement'"),
        ({"by": "loss"}, "Column `loss` has no default threshold: pass `threshold=` or `hard_fraction=`"),
        ({"by": "no_such_column"}, "Column `no_such_column` has no default threshold"),  # failed an epoch in before
    ],
)
def test_bad_settings(kwargs, match):
    with pytest.raises(ValueError, match=match):
        HardMiner(_model(), _loader(), progress=False, **kwargs)


def test_bad_model_and_loader():
    with pytest.raises(TypeError, match="`model` to be a torch.nn.Module"):
        HardMiner(lambda x: x, _loader())
    ds = _data()
    from torch.utils.data import BatchSampler, SequentialSampler

    with pytest.raises(ValueError, match="custom batch_sampler"):
        HardMiner(_model(), DataLoader(ds, batch_sampler=BatchSampler(SequentialSampler(ds), 8, False)))


@pytest.mark.filterwarnings("always::hardmine.feedback.weighting.HardSetCollapseWarning")
def test_collapse_warning_once_per_miner():
    from hardmine.feedback.weighting import HardSetCollapseWarning

    model = _always_negative()
    miner = HardMiner(model, _loader(), threshold=0.7, balance=None, progress=False)
    with pytest.warns(HardSetCollapseWarning) as record:
        miner.rescore()
        miner.rescore()
    assert sum(issubclass(r.category, HardSetCollapseWarning) for r in record) == 1


def test_weight_kwargs_and_momentum_go_to_hm_weights():
    from hardmine.feedback.weighting import weights

    model = _model()
    miner = HardMiner(model, _loader(), weight_kwargs={"by": "label_prob", "gamma": 2.0}, progress=False)
    table = miner.rescore()
    expected = weights(table, by="label_prob", gamma=2.0, floor=0.05, balance="label", dtype=torch.float64)
    torch.testing.assert_close(
        torch.tensor(table["weight"].to_numpy(), dtype=torch.float64), expected, rtol=1e-6, atol=0
    )

    miner = HardMiner(model, _loader(), threshold=0.6, momentum=0.5, progress=False)
    first = torch.tensor(miner.rescore()["weight"].to_numpy(), dtype=torch.float64)
    _run(HardMiner(model, _loader(), progress=False), 2, model)  # train a little so the split changes
    second = miner.rescore()
    expected = weights(
        second,
        hard_weight=4.0,
        easy_weight=1.0,
        floor=0.05,
        balance="label",
        previous=first,
        momentum=0.5,
        dtype=torch.float64,
    )
    torch.testing.assert_close(
        torch.tensor(second["weight"].to_numpy(), dtype=torch.float64), expected, rtol=1e-6, atol=0
    )
    plain = weights(second, hard_weight=4.0, easy_weight=1.0, floor=0.05, balance="label", dtype=torch.float64)
    assert not torch.allclose(expected, plain)


def test_bad_weight_options():
    with pytest.raises(ValueError, match="`momentum` must be in \\[0, 1\\), got 1.0"):
        HardMiner(_model(), _loader(), momentum=1.0)
    with pytest.raises(ValueError, match="`weight_kwargs` without \\['floor'\\]"):
        HardMiner(_model(), _loader(), weight_kwargs={"floor": 0.1})
    with pytest.raises(TypeError, match="`weight_kwargs` must be a mapping or None, got list"):
        HardMiner(_model(), _loader(), weight_kwargs=[("by", "loss")])
    with pytest.raises(ValueError, match="`balance` to be None or one of \\('label', 'polarity'\\), but got 'class'"):
        HardMiner(_model(), _loader(), balance="class")
    with pytest.raises(ValueError, match="`weight_kwargs` without \\['balance'\\]"):
        HardMiner(_model(), _loader(), weight_kwargs={"balance": "label"})


# ---------------------------------------------------------------- training dynamics and label-issue exclusion

MISLABELLED, BOUNDARY = 0, 1  # planted: a class-0 sample labelled 1; a correctly labelled class-1 sample near the line


def _planted(n: int = 64) -> TensorDataset:
    """Two well-separated blobs on x0 (class 0 at -2, class 1 at +2), one flipped label and one boundary sample."""
    g = torch.Generator().manual_seed(0)
    y = torch.arange(n) % 2
    x = 0.3 * torch.randn(n, 2, generator=g)
    x[:, 0] += torch.where(y == 1, 2.0, -2.0)
    x[MISLABELLED] = torch.tensor([-3.0, 0.0])
    y[MISLABELLED] = 1
    x[BOUNDARY] = torch.tensor([0.25, 0.0])
    return TensorDataset(x, y)


def _linear() -> nn.Module:
    """Logit of class 1 minus class 0 is 2 * x0: the true boundary, so the planted samples stay what they are."""
    model = nn.Linear(2, 2)
    with torch.no_grad():
        model.weight.copy_(torch.tensor([[-1.0, 0.0], [1.0, 0.0]]))
        model.bias.zero_()
    return model


def _train(miner: HardMiner, model: nn.Module, dyn, epochs: int, lr: float = 0.01) -> None:
    """The user's loop: train, record the dynamics with the indices the miner yields, close each epoch."""
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    for _ in range(epochs):
        for idx, xb, yb in miner:
            logits = model(xb)
            if dyn is not None:
                dyn.update(idx, logits, yb)
            loss = nn.functional.cross_entropy(logits, yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
        if dyn is not None:
            dyn.end_epoch()


def _planted_miner(model, dyn, **kw) -> HardMiner:
    ds = _planted()
    kw = {"threshold": 0.8, "warmup_epochs": 1, "indices": True, "progress": False, "balance": None, **kw}
    return HardMiner(model, DataLoader(ds, batch_size=16, shuffle=True), dynamics=dyn, **kw)


def test_suspected_label_issue_is_not_upweighted_but_boundary_sample_is():
    model = _linear()
    dyn = Dynamics(num_samples=64)
    miner = _planted_miner(model, dyn, exclude_label_issues=True, num_samples=64 * 50)
    _train(miner, model, dyn, epochs=3)  # warm-up (every sample once), then two mining epochs, each re-scored
    table = miner.table
    hist = miner.history
    # The flagged set is AUM < 0 of the dynamics as they were at the last scoring (one epoch before the end).
    assert hist["suspect_method"].tolist() == ["aum", "aum"]
    assert hist["dynamics_epochs"].tolist() == [1, 2]
    assert table.index[table["suspect"]].tolist() == [MISLABELLED]
    assert hist["suspects"].tolist() == [1, 1]
    # Both planted samples are hard by label_prob; only the boundary one keeps the hard weight.
    assert table.loc[MISLABELLED, "difficulty"] == "hard" and table.loc[BOUNDARY, "difficulty"] == "hard"
    assert table.loc[BOUNDARY, "weight"] == pytest.approx(1.0)
    assert table.loc[MISLABELLED, "weight"] == pytest.approx(0.25)  # easy_weight / hard_weight
    easy = table[(table["difficulty"] == "easy") & ~table["suspect"]]
    assert (easy["weight"] == table.loc[MISLABELLED, "weight"]).all()
    # Expected draws per epoch (i.i.d. draws): the suspect's equal an easy sample's, a quarter of the boundary's.
    expected = table["weight"] / table["weight"].sum() * miner.num_samples
    assert expected[MISLABELLED] == pytest.approx(expected[easy.index[0]])
    assert expected[MISLABELLED] == pytest.approx(expected[BOUNDARY] / 4)
    # And in the draws of the last epoch (3200 draws; about 47 vs 188 expected).
    assert table.loc[MISLABELLED, "drawn"] < 100 < 130 < table.loc[BOUNDARY, "drawn"]
    assert hist["drawn_per_suspect"].iloc[-1] == table.loc[MISLABELLED, "drawn"]
    assert hist["drawn_per_hard"].iloc[-1] > 2 * hist["drawn_per_easy"].iloc[-1]


def test_without_exclusion_the_mislabelled_sample_is_upweighted():
    model = _linear()
    dyn = Dynamics(num_samples=64)
    miner = _planted_miner(model, dyn)
    _train(miner, model, dyn, epochs=2)
    table = miner.table
    assert not table["suspect"].any() and miner.history["suspects"].tolist() == [0]
    assert miner.history["suspect_method"].tolist() == [None]
    assert table.loc[MISLABELLED, "weight"] == pytest.approx(1.0)
    # The dynamics columns join the table once an epoch is recorded.
    assert {"aum", "mean_label_prob", "variability", "correctness", "forgetting"} <= set(table.columns)


def test_suspects_match_label_issues_of_the_dynamics():
    model = _linear()
    dyn = Dynamics(num_samples=64)
    miner = _planted_miner(model, dyn, exclude_label_issues="aum")
    _train(miner, model, dyn, epochs=2)
    table = miner.rescore()
    expected = issue_indices(label_issues(dyn, method="aum"))
    assert np.flatnonzero(table["suspect"].to_numpy()).tolist() == expected.tolist() == [MISLABELLED]


def test_by_aum_uses_the_dynamics_column():
    model = _linear()
    dyn = Dynamics(num_samples=64)
    miner = _planted_miner(model, dyn, by="aum", threshold=1.5, exclude_label_issues="aum")
    _train(miner, model, dyn, epochs=2)
    table = miner.rescore()
    summary = dyn.summary()
    np.testing.assert_allclose(table["aum"].to_numpy(), summary["aum"].to_numpy())
    np.testing.assert_allclose(table["mean_label_prob"].to_numpy(), summary["mean_label_prob"].to_numpy())
    assert ((table["difficulty"] == "hard").to_numpy() == (summary["aum"].to_numpy() < 1.5)).all()
    assert table.attrs["hardmine"]["by"] == "aum"
    assert miner.history["by"].tolist() == ["aum", "aum"]
    assert "mean_aum" in miner.history.columns
    # AUM 0 .. 1.5: hard and drawn more; AUM < 0: hard too, but a suspected label issue, weighted as easy.
    hard_ok = (table["difficulty"] == "hard") & ~table["suspect"]
    assert hard_ok[BOUNDARY] and table.loc[BOUNDARY, "weight"] == pytest.approx(1.0)
    assert table.loc[MISLABELLED, "difficulty"] == "hard" and table.loc[MISLABELLED, "weight"] == pytest.approx(0.25)


def test_dynamics_by_falls_back_to_label_prob_until_every_sample_is_seen():
    model = _linear()
    dyn = Dynamics(num_samples=64)
    miner = _planted_miner(model, dyn, by="aum", threshold=1.5, warmup_epochs=0, exclude_label_issues="aum")
    table = miner.rescore()  # no epoch recorded yet: label_prob with its default threshold 0.5, nothing flagged
    reference = split(score(model, miner.loader, progress=False), by="label_prob")
    assert table["difficulty"].tolist() == reference["difficulty"].tolist()
    assert table.attrs["hardmine"]["by"] == "label_prob" and table.attrs["hardmine"]["threshold"] == 0.5
    assert "aum" not in table.columns and not table["suspect"].any()
    # An epoch that saw half the samples: the unseen ones have no AUM, so still label_prob (aum shown, NaN).
    half = torch.arange(0, 64, 2)
    x, y = miner.loader.dataset.tensors
    dyn.update(half, model(x[half]), y[half])
    dyn.end_epoch()
    table = miner.rescore()
    assert table.attrs["hardmine"]["by"] == "label_prob" and table["aum"].isna().sum() == 32
    assert table["suspect"].tolist() == [i == MISLABELLED for i in range(64)]  # seen, AUM < 0: flagged already
    # Every sample seen once: the AUM decides.
    dyn.update(torch.arange(64), model(x), y)
    dyn.end_epoch()
    table = miner.rescore()
    assert table.attrs["hardmine"]["by"] == "aum" and table.attrs["hardmine"]["threshold"] == 1.5
    assert miner.history["by"].tolist() == ["label_prob", "label_prob", "aum"]
    assert miner.history["dynamics_epochs"].tolist() == [0, 1, 2]


def test_confident_learning_without_dynamics():
    model = _linear()
    miner = _planted_miner(model, None, exclude_label_issues=True, warmup_epochs=0)
    table = miner.rescore()
    reference = issue_indices(
        label_issues(score(model, miner.loader, keep_probs=True, progress=False), method="confident_learning")
    )
    assert MISLABELLED in reference and BOUNDARY not in reference
    assert np.flatnonzero(table["suspect"].to_numpy()).tolist() == reference.tolist()
    assert not [c for c in table.columns if c.startswith("prob_")]  # scored with probs for CL only
    assert miner.history["suspect_method"].tolist() == ["confident_learning"]
    assert table.loc[MISLABELLED, "weight"] == pytest.approx(0.25)
    kept = _planted_miner(model, None, exclude_label_issues="confident_learning", score_kwargs={"keep_probs": True})
    assert "prob_1" in kept.rescore().columns


@pytest.mark.parametrize(
    "exclude",
    [[BOUNDARY], torch.tensor([BOUNDARY]), {BOUNDARY}, np.array([BOUNDARY]), lambda t: t.index[t["index"] == BOUNDARY]],
    ids=["list", "tensor", "set", "array", "callable"],
)
def test_fixed_or_callable_suspects_and_hard_share(exclude):
    model = _linear()
    miner = _planted_miner(model, None, exclude_label_issues=exclude, hard_share=0.5, warmup_epochs=0)
    table = miner.rescore()
    assert table.index[table["suspect"]].tolist() == [BOUNDARY]
    assert miner.history["suspect_method"].iloc[0] == ("custom" if callable(exclude) else "fixed")
    # A hard suspect gets no hard-share slots: only the mislabelled sample fills them.
    assert miner.sampler.hard.nonzero()[:, 0].tolist() == [MISLABELLED]
    draws = miner.sampler.expected_draws()
    assert draws[BOUNDARY] == pytest.approx(float(draws[2]))  # like an easy sample
    state = miner.state_dict()
    again = _planted_miner(model, None, exclude_label_issues=exclude, hard_share=0.5, warmup_epochs=0)
    again.load_state_dict(state)
    assert again.sampler.hard.nonzero()[:, 0].tolist() == [MISLABELLED]


def test_momentum_does_not_carry_a_new_suspects_hard_weight():
    calls = []

    def flag_boundary_from_second_scoring(table):
        calls.append(1)
        return [BOUNDARY] if len(calls) > 1 else []

    miner = _planted_miner(
        _linear(), None, exclude_label_issues=flag_boundary_from_second_scoring, momentum=0.5, warmup_epochs=0
    )
    assert miner.rescore().loc[BOUNDARY, "weight"] == pytest.approx(1.0)
    table = miner.rescore()  # smoothing alone would give 0.5 * 1 + 0.5 * 0.25 = 0.625
    assert table.loc[BOUNDARY, "weight"] == pytest.approx(0.25)
    assert table.loc[MISLABELLED, "weight"] == pytest.approx(1.0)


def test_suspect_with_score_weights_and_loss_mode():
    model = _linear()
    miner = _planted_miner(
        model, None, exclude_label_issues=[MISLABELLED], warmup_epochs=0, weight_kwargs={"by": "label_prob"}
    )
    table = miner.rescore()
    others = table.loc[~table["suspect"], "weight"]
    assert table.loc[MISLABELLED, "weight"] == pytest.approx(others.min())  # not the heaviest, as its score says
    loss = _planted_miner(model, None, exclude_label_issues=[MISLABELLED], warmup_epochs=0, apply="loss")
    table = loss.rescore()
    easy = table.loc[(table["difficulty"] == "easy"), "loss_weight"].iloc[0]
    assert table.loc[MISLABELLED, "loss_weight"] == pytest.approx(easy)
    assert table.loc[BOUNDARY, "loss_weight"] == pytest.approx(4 * easy)
    assert (table["weight"] == 1).all()


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"by": "aum"}, ValueError, "Expected argument `dynamics`"),
        ({"exclude_label_issues": "aum"}, ValueError, "Expected argument `dynamics` with exclude_label_issues='aum'"),
        ({"exclude_label_issues": "self_confidence"}, ValueError, "exclude_label_issues"),
        ({"exclude_label_issues": [64]}, ValueError, r"dataset indices in \[0, 64\), but got \[64\]"),
        ({"exclude_label_issues": [0.5]}, TypeError, "dataset indices"),
        ({"exclude_label_issues": 3}, TypeError, "dataset indices"),
        ({"dynamics": Dynamics(num_samples=10)}, ValueError, "loader's 64 samples"),
        ({"dynamics": "dyn"}, TypeError, "Dynamics or None"),
        (
            {"by": "variability", "threshold": None, "dynamics": Dynamics(num_samples=64)},
            ValueError,
            "no default threshold",
        ),
    ],
    ids=lambda v: str(v)[:40],
)
def test_bad_dynamics_and_exclusion_settings(kwargs, error, match):
    kwargs = dict(kwargs)
    dyn = kwargs.pop("dynamics", None)
    with pytest.raises(error, match=match):
        _planted_miner(_linear(), dyn, **kwargs)


def test_callable_returning_bad_indices_is_named():
    miner = _planted_miner(_linear(), None, exclude_label_issues=lambda t: [-1], warmup_epochs=0)
    with pytest.raises(ValueError, match=r"`exclude_label_issues\(table\)` to hold dataset indices"):
        miner.rescore()


@pytest.mark.parametrize(
    ("by", "options", "column", "hard_when_higher"),
    [
        ("mean_label_prob", {"threshold": None}, "mean_label_prob", False),  # split's default threshold 0.5
        ("variability", {"threshold": None, "hard_fraction": 0.25}, "variability", True),
    ],
)
def test_other_dynamics_columns(by, options, column, hard_when_higher):
    model = _linear()
    dyn = Dynamics(num_samples=64)
    miner = _planted_miner(model, dyn, by=by, **options)
    _train(miner, model, dyn, epochs=2, lr=0.5)
    table = miner.rescore()
    values = dyn.summary()[column].to_numpy()
    np.testing.assert_allclose(table[by].to_numpy(), values)
    hard = (table["difficulty"] == "hard").to_numpy()
    if "hard_fraction" in options:
        assert hard.sum() == 16
        if hard_when_higher:
            assert values[hard].min() >= values[~hard].max()
        else:
            assert values[hard].max() <= values[~hard].min()
    else:
        assert (hard == (values < 0.5)).all() and hard[MISLABELLED]
    assert miner.history["by"].tolist() == [by, by]
