"""HardMiner.observe and the online mode (rescore_every=None); ObservedScores' staleness rule; the miner's state."""

from __future__ import annotations

import io
import math

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from conftest import NUM_FEATURES, make_dataset, make_model
from reference import DEVICES
from torch import nn
from torch.utils.data import DataLoader, Dataset

import hardmine as hm
from hardmine.feedback.miner import HardMiner as _HardMiner
from hardmine.feedback.online import ObservedScores, decay_toward_mean


def HardMiner(*args, **kwargs):  # noqa: N802 - stands in for the class
    """These tests mine from epoch 0: the miner without its warm-up epoch (the default since issue 13 is 1)."""
    kwargs.setdefault("warmup_epochs", 0)
    return _HardMiner(*args, **kwargs)


def _logits_for(label_prob: torch.Tensor, labels: torch.Tensor, classes: int = 2) -> torch.Tensor:
    """Logits whose softmax gives each sample's label exactly ``label_prob`` (the rest spread evenly)."""
    rest = (1 - label_prob) / (classes - 1)
    probs = rest[:, None].expand(-1, classes).clone()
    probs[torch.arange(len(labels)), labels] = label_prob
    return probs.log()


# --------------------------------------------------------------------------- the draws follow the observed scores


def test_observed_hard_samples_are_drawn_as_the_weights_say() -> None:
    n = 200
    ds = make_dataset(n, 2, seed=0)
    labels = ds.tensors[1]
    miner = HardMiner(
        make_model(2), DataLoader(ds, batch_size=50), rescore_every=None, balance=None, num_samples=40_000, seed=3
    )
    hard = torch.zeros(n, dtype=torch.bool)
    hard[:50] = True
    label_prob = torch.where(hard, 0.2, 0.9)
    miner.observe(torch.arange(n), _logits_for(label_prob, labels), labels)
    for _batch in miner:  # epoch 0: built from the observations above, no scoring pass; the miner counts draws
        pass
    assert miner.score_calls == 0
    table = miner.table
    assert (table["difficulty"] == "hard").to_numpy().tolist() == hard.tolist()
    expected = hm.sample_weights(
        hm.split(table.drop(columns=["weight", "loss_weight", "drawn"]), 0.5), floor=0.05, balance=None
    )
    np.testing.assert_allclose(table["weight"].to_numpy(), expected.numpy(), rtol=1e-6)
    per_hard = miner.draws[hard].double().mean()
    per_easy = miner.draws[~hard].double().mean()
    # weights 1 (hard) and 1/4 (easy): a hard sample is drawn 4 times as often; 40,000 draws, fixed seed
    assert float(per_hard / per_easy) == pytest.approx(4.0, rel=0.06)
    assert float(per_hard) == pytest.approx(40_000 * 1 / (50 + 150 / 4), rel=0.05)


def test_online_mode_runs_no_model_and_uniform_until_observed() -> None:
    ds = make_dataset(32, 3, seed=1)
    model = make_model(3, seed=1)
    calls = []
    model.register_forward_hook(lambda *_: calls.append(1))
    miner = HardMiner(model, DataLoader(ds, batch_size=8), rescore_every=None, indices=True, progress=False)
    for _idx, _x, _y in miner:
        pass
    assert miner.table is None and not calls and miner.score_calls == 0
    assert torch.equal(miner.sampler.weights, torch.ones(32, dtype=torch.float64))
    for idx, x, y in miner:
        miner.observe(idx, model(x), y)
    for _ in miner:
        pass
    assert len(calls) == 4 and miner.score_calls == 0  # only the loop's own forward passes
    assert miner.history["epoch"].tolist() == [2] and miner.history["observed"].tolist() == [
        int(miner.table["seen"].sum())
    ]


def test_observed_scores_equal_a_scoring_pass() -> None:
    ds = make_dataset(40, 3, seed=2)
    model = make_model(3, seed=2).eval()
    miner = HardMiner(model, DataLoader(ds, batch_size=16), rescore_every=None, indices=True)
    for idx, x, y in miner:
        with torch.no_grad():
            miner.observe(idx, model(x), y)
    observed = miner._observed.table(now=1)  # observed during epoch 0: age 0, no decay
    scored = hm.score(model, DataLoader(ds, batch_size=16), progress=False)
    seen = observed["seen"].to_numpy()
    for col in ("label_prob", "confidence", "margin", "entropy", "loss"):
        np.testing.assert_allclose(observed[col].to_numpy()[seen], scored[col].to_numpy()[seen], rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(observed["pred"].to_numpy()[seen], scored["pred"].to_numpy()[seen])
    np.testing.assert_array_equal(observed["label"].to_numpy()[seen], scored["label"].to_numpy()[seen])


def test_losses_alone() -> None:
    ds = make_dataset(16, 2, seed=3)
    model = make_model(2, seed=3)
    loader = DataLoader(ds, batch_size=8)
    miner = HardMiner(model, loader, rescore_every=None, indices=True)
    losses = torch.linspace(0.05, 3.0, 16)
    miner.observe(torch.arange(16), losses)
    with pytest.raises(ValueError, match="balance='label'.*observe\\(indices, logits, targets\\).*balance=None"):
        next(iter(miner))
    miner = HardMiner(model, loader, rescore_every=None, indices=True, balance=None, by="loss", hard_fraction=0.25)
    miner.observe(torch.arange(16), losses)
    next(iter(miner))
    table = miner.table
    np.testing.assert_allclose(table["label_prob"], np.exp(-losses.numpy()), rtol=1e-6)
    assert table["label"].tolist() == [-1] * 16
    assert (table["difficulty"] == "hard").tolist() == [False] * 12 + [True] * 4
    assert math.isnan(miner.history["accuracy"].iloc[0])


# --------------------------------------------------------------------------- staleness


def test_decay_toward_the_mean_by_age() -> None:
    obs = ObservedScores(5, half_life=2.0)
    losses = torch.tensor([0.0, 1.0, 2.0, 5.0])
    obs.observe(torch.tensor([0, 1]), losses[:2], stamp=0)
    obs.observe(torch.tensor([2, 3]), losses[2:], stamp=4)
    table = obs.table(now=5)  # ages 4 and 0
    mean = 2.0
    expected = [mean + (v - mean) * 0.5 ** (a / 2.0) for v, a in zip([0.0, 1.0, 2.0, 5.0], [4, 4, 0, 0], strict=True)]
    np.testing.assert_allclose(table["loss"].to_numpy()[:4], expected, rtol=1e-6)
    assert table["age"].tolist()[:4] == [4.0, 4.0, 0.0, 0.0]
    assert not table["seen"].iloc[4] and math.isnan(table["loss"].iloc[4]) and math.isnan(table["age"].iloc[4])
    # a newer observation replaces an older one and is fresh again
    obs.observe(torch.tensor([0]), torch.tensor([0.5]), stamp=4)
    assert obs.table(now=5)["age"].iloc[0] == 0.0
    undecayed = ObservedScores(5, half_life=None)
    undecayed.observe(torch.tensor([0, 1]), losses[:2], stamp=0)
    np.testing.assert_allclose(undecayed.table(now=9)["loss"].to_numpy()[:2], [0.0, 1.0])


def test_one_score_column_is_the_table_column() -> None:
    obs = ObservedScores(6, half_life=1.5)
    assert torch.isnan(obs.scores(now=0)).all() and obs.scores(now=0).shape == (6,)  # nothing observed yet
    labels = torch.tensor([0, 1, 1, 0])
    obs.observe(torch.tensor([0, 1]), _logits_for(torch.tensor([0.9, 0.2]), labels[:2]), labels[:2], stamp=0)
    obs.observe(torch.tensor([3, 4]), _logits_for(torch.tensor([0.6, 0.4]), labels[2:]), labels[2:], stamp=2)
    table = obs.table(now=4)
    for name in ("loss", "label_prob", "margin", "entropy", "confidence"):
        column = obs.scores(now=4, name=name)
        assert column.dtype == torch.float32
        np.testing.assert_array_equal(column.numpy(), table[name].to_numpy())
    expected_loss = -math.log(0.2)  # sample 1, by hand: mean of the 4 losses + its distance * 0.5 ** (age 3 / 1.5)
    mean = float(np.mean([-math.log(p) for p in (0.9, 0.2, 0.6, 0.4)]))
    assert float(obs.scores(now=4)[1]) == pytest.approx(mean + (expected_loss - mean) * 0.25, rel=1e-5)
    with pytest.raises(ValueError, match="`name` must be one of 'confidence'.*got 'aum'"):
        obs.scores(now=1, name="aum")


def test_decay_toward_mean_function() -> None:
    v = torch.tensor([1.0, 3.0, float("nan")])
    out = decay_toward_mean(v, torch.tensor([2.0, 0.0, 0.0]), half_life=2.0)
    np.testing.assert_allclose(out[:2].numpy(), [2 - 0.5, 3.0])
    assert math.isnan(out[2])


def test_unseen_samples_get_the_largest_weight_and_stale_easy_ones_rise() -> None:
    n = 40
    ds = make_dataset(n, 2, seed=4)
    labels = ds.tensors[1]
    miner = HardMiner(make_model(2), DataLoader(ds, batch_size=10), rescore_every=None, balance=None, half_life=1.0)
    label_prob = torch.full((n,), 0.95)
    label_prob[:5] = 0.1
    seen = torch.arange(30)
    miner.observe(seen, _logits_for(label_prob[seen], labels[seen]), labels[seen])
    next(iter(miner))
    w = miner.table["weight"].to_numpy()
    assert not miner.table["seen"].to_numpy()[30:].any()
    np.testing.assert_array_equal(w[30:], np.full(10, w.max()))
    assert w[:5].min() == w.max() and w[5:30].max() < w.max()
    fresh_easy = w[5]
    # The peek above started epoch 0 but did not end it (issue 13): the first full pass below finishes epoch 0, the
    # next two are epochs 1 and 2. Observed at epoch 0 and never again, the easy scores age by 2 and drift to the mean.
    for _ in range(3):
        for _batch in miner:
            pass
    t = miner.table
    assert miner.epoch == 2 and t["age"].iloc[5] == 2.0
    assert t["label_prob"].iloc[5] < 0.95 and t["weight"].iloc[5] >= fresh_easy


# --------------------------------------------------------------------------- dynamics, errors


def test_online_with_dynamics_and_aum_exclusion() -> None:
    n = 48
    ds = make_dataset(n, 3, seed=5)
    model = make_model(3, seed=5)
    dyn = hm.Dynamics(n)
    miner = HardMiner(
        model,
        DataLoader(ds, batch_size=12),
        rescore_every=None,
        dynamics=dyn,
        exclude_label_issues="aum",
        indices=True,
        threshold=0.5,
    )
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    for _ in range(2):
        for idx, x, y in miner:
            logits = model(x)
            F.cross_entropy(logits, y).backward()
            opt.step()
            opt.zero_grad()
            dyn.update(idx, logits.detach(), y)
            miner.observe(idx, logits.detach(), y)
        dyn.end_epoch()
    expected = set(hm.issue_indices(hm.label_issues(dyn.summary(), method="aum")).tolist())
    next(iter(miner))  # epoch 2 starts: the table is built from the observations and the dynamics so far
    table = miner.table
    assert miner.score_calls == 0 and miner.history["by"].tolist() == ["label_prob", "label_prob"]
    np.testing.assert_allclose(table["aum"], dyn.summary()["aum"], rtol=1e-6)
    suspects = table["suspect"].to_numpy()
    assert set(np.flatnonzero(suspects).tolist()) == expected and expected
    hard = (table["difficulty"] == "hard").to_numpy()
    easy_weight = table["weight"][~hard & ~suspects].groupby(table["label"]).max()
    checked = 0
    for i in np.flatnonzero(suspects):  # a suspect weighs no more than an easy sample of its class
        if table["label"].iloc[i] in easy_weight.index:
            assert table["weight"].iloc[i] <= easy_weight[table["label"].iloc[i]] + 1e-6
            checked += 1
    assert checked


def test_online_errors() -> None:
    ds = make_dataset(8, 2)
    loader = DataLoader(ds, batch_size=4)
    with pytest.raises(ValueError, match="positive_share`/`hard_share` with rescore_every=None"):
        HardMiner(make_model(2), loader, rescore_every=None, hard_share=0.25)
    with pytest.raises(ValueError, match="'confident_learning' with rescore_every=None"):
        HardMiner(make_model(2), loader, rescore_every=None, exclude_label_issues="confident_learning")
    with pytest.raises(ValueError, match=r"^`half_life` must be > 0, got"):
        HardMiner(make_model(2), loader, rescore_every=None, half_life=0)
    miner = HardMiner(make_model(2), loader, rescore_every=None)
    with pytest.raises(TypeError, match="`indices` to be an int tensor"):
        miner.observe(torch.zeros(2), torch.zeros(2))
    with pytest.raises(ValueError, match=r"per-sample `outputs` of shape \(2,\)"):
        miner.observe(torch.tensor([0, 1]), torch.zeros(2, 2))
    with pytest.raises(ValueError, match=r"`indices` in \[0, 8\), but got \[8\]"):
        miner.observe(torch.tensor([0, 8]), torch.zeros(2))
    with pytest.raises(ValueError, match=r"logits of shape \(2, C\)"):
        miner.observe(torch.tensor([0, 1]), torch.zeros(3, 2), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match=r"class indices in \[0, 2\), but the samples with dataset indices \[5\]"):
        miner.observe(torch.tensor([4, 5]), torch.zeros(2, 2), torch.tensor([1, 2]))
    miner.observe(torch.tensor([0, 1]), torch.zeros(2, 2), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="2 classes as before, but got 3"):
        miner.observe(torch.tensor([0, 1]), torch.zeros(2, 3), torch.tensor([0, 1]))


# --------------------------------------------------------------------------- state


def _reload(state: dict) -> dict:
    buffer = io.BytesIO()
    torch.save(state, buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=True)


def _train(miner: HardMiner, model: nn.Module, opt: torch.optim.Optimizer, epochs: int, observe: bool) -> list:
    drawn = []
    for _ in range(epochs):
        for idx, x, y, *_w in miner:
            logits = model(x)
            F.cross_entropy(logits, y).backward()
            opt.step()
            opt.zero_grad()
            if observe:
                miner.observe(idx, logits.detach(), y)
            drawn.append(idx.tolist())
    return drawn


@pytest.mark.parametrize(
    "options",
    [
        {"momentum": 0.5, "threshold": 0.6},
        {"momentum": 0.7, "apply": "sample+correct", "hard_fraction": 0.3},
        {"rescore_every": None, "momentum": 0.5},
        {"rescore_every": None, "half_life": 1.0, "apply": "loss"},
    ],
    ids=["momentum", "correct", "online", "online-loss"],
)
def test_state_round_trip_resumes_bit_identically(options) -> None:
    ds = make_dataset(60, 3, seed=6)
    observe = options.get("rescore_every", 1) is None

    def build() -> tuple[HardMiner, nn.Module, torch.optim.Optimizer]:
        model = make_model(3, seed=6)
        opt = torch.optim.SGD(model.parameters(), lr=0.2)
        miner = HardMiner(model, DataLoader(ds, batch_size=16), indices=True, seed=2, progress=False, **options)
        return miner, model, opt

    miner, model, opt = build()
    straight = _train(miner, model, opt, 5, observe)
    torch.manual_seed(0)

    first, model1, opt1 = build()
    head = _train(first, model1, opt1, 3, observe)
    rng = torch.get_rng_state()
    state = _reload({"miner": first.state_dict(), "model": model1.state_dict(), "opt": opt1.state_dict(), "rng": rng})
    resumed, model2, opt2 = build()
    torch.set_rng_state(state["rng"])  # the model's dropout draws from the global generator
    model2.load_state_dict(state["model"])
    opt2.load_state_dict(state["opt"])
    resumed.load_state_dict(state["miner"])
    pd.testing.assert_frame_equal(resumed.table, first.table)
    tail = _train(resumed, model2, opt2, 2, observe)
    assert head + tail == straight
    pd.testing.assert_frame_equal(resumed.table, miner.table)
    pd.testing.assert_frame_equal(resumed.history.drop(columns="seconds"), miner.history.drop(columns="seconds"))
    assert torch.equal(resumed.draws, miner.draws)


def test_state_dict_holds_plain_values_only() -> None:
    ds = make_dataset(20, 2, seed=7)
    miner = HardMiner(make_model(2), DataLoader(ds, batch_size=5), progress=False, momentum=0.5)
    for _ in range(2):
        for _batch in miner:
            pass
    allowed = (torch.Tensor, int, float, str, bool, type(None))

    def check(value: object, path: str) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                check(v, f"{path}.{k}")
        elif isinstance(value, list):
            for i, v in enumerate(value):
                check(v, f"{path}[{i}]")
        else:
            assert isinstance(value, allowed) and type(value).__module__ in ("builtins", "torch"), (path, type(value))

    state = miner.state_dict()
    check(state, "state")
    assert state["raw_weights"] is not None and state["observed"]["buffers"] is None


class Growing(Dataset):
    def __init__(self, n: int) -> None:
        self.x = torch.randn(100, NUM_FEATURES)
        self.y = torch.randint(0, 2, (100,))
        self.n = n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.x[i], self.y[i]


def test_a_dataset_that_grows_is_refused_at_the_epoch_start() -> None:
    ds = Growing(20)
    miner = HardMiner(make_model(2), DataLoader(ds, batch_size=5), progress=False)
    for _batch in miner:
        pass
    state = miner.state_dict()
    ds.n = 30
    with pytest.raises(ValueError, match="keep its 20 samples, but it now has 30"):
        next(iter(miner))
    with pytest.raises(ValueError, match="keep its 20 samples, but it now has 30"):
        miner.load_state_dict(state)
    bigger = HardMiner(make_model(2), DataLoader(ds, batch_size=5), progress=False)
    with pytest.raises(ValueError, match="a state for the loader's 30 samples, but it holds 20"):
        bigger.load_state_dict(state)


def test_observed_scores_state_round_trip() -> None:
    obs = ObservedScores(6, half_life=1.5)
    obs.observe(torch.tensor([1, 4]), torch.tensor([[1.0, 0.0], [0.0, 2.0]]), torch.tensor([0, 0]), stamp=2)
    again = ObservedScores(6, half_life=1.5)
    again.load_state_dict(_reload(obs.state_dict()))
    pd.testing.assert_frame_equal(again.table(now=4), obs.table(now=4))
    assert again.count == 2 and again.num_classes == 2
    with pytest.raises(ValueError, match="observed scores for 7 samples, but the state holds 6"):
        ObservedScores(7).load_state_dict(obs.state_dict())


def test_table_state_round_trip_keeps_dtypes() -> None:
    from hardmine.core._state import frame_from_state, frame_to_state

    frame = pd.DataFrame(
        {
            "index": np.arange(3),
            "id": ["a", "=b", "c"],
            "label": np.array([0, 1, 1], dtype=np.int64),
            "loss": np.array([0.1, np.nan, 2.5], dtype=np.float32),
            "group": pd.Categorical(["hard_positive", "easy_negative", "hard_positive"]),
            "suspect": [True, False, False],
        }
    )
    frame.attrs["hardmine"] = {"num_classes": np.int64(2), "threshold": (0.5, 0.6)}
    back = frame_from_state(_reload(frame_to_state(frame)))
    pd.testing.assert_frame_equal(back, frame)
    assert back.attrs["hardmine"] == {"num_classes": 2, "threshold": [0.5, 0.6]}


# --------------------------------------------------------------------------- suspects and non-finite observations


def _small_miner(**kwargs) -> tuple[_HardMiner, nn.Module]:
    g = torch.Generator().manual_seed(0)
    ds = torch.utils.data.TensorDataset(torch.randn(16, 3, generator=g), torch.arange(16) % 2)
    model = nn.Linear(3, 2)
    kwargs = {"rescore_every": None, "indices": True, "progress": False, **kwargs}
    return _HardMiner(model, DataLoader(ds, batch_size=4), **kwargs), model


def test_a_suspect_never_observed_weighs_no_more_than_the_lightest_observed_sample() -> None:
    miner, model = _small_miner(warmup_epochs=1, exclude_label_issues=[0, 1])
    for idx, x, y in miner:  # the warm-up epoch observes every sample but 0 and 1
        keep = idx >= 2
        miner.observe(idx[keep], model(x)[keep].detach(), y[keep])
    next(iter(miner))  # the first mining epoch builds the table
    table = miner.table
    assert table["suspect"].tolist() == [True, True] + [False] * 14  # the unobserved suspects are marked too
    observed = table.loc[table["seen"], "weight"]
    assert (table.loc[[0, 1], "weight"] <= observed[observed > 0].min()).all()  # not the largest, as unseen samples
    assert table.loc[[0, 1], "weight"].max() < observed.max()


def test_an_infinite_observed_loss_counts_as_the_largest_finite_one() -> None:
    miner, _ = _small_miner(warmup_epochs=0, balance=None, weight_kwargs={"by": "loss"})
    losses = torch.linspace(0.1, 1.6, 16)
    losses[3] = float("inf")
    for _ in range(2):
        for idx, _x, _y in miner:
            miner.observe(idx, losses[idx])
    table = miner.table
    assert table.loc[3, "loss"] == pytest.approx(1.6) and table.loc[3, "weight"] == table["weight"].max()
    assert table.loc[3, "weight"] == table.loc[15, "weight"]  # the same as the largest finite loss (1.6)


def test_a_nan_observed_on_an_accelerator_is_named_by_its_dataset_index() -> None:
    miner, _ = _small_miner(warmup_epochs=0, balance=None)
    for idx, _x, _y in miner:
        miner.observe(idx, torch.rand(len(idx)))
    miner._observed._buffers["loss"][5] = float("nan")  # what an unchecked GPU observation can leave behind
    with pytest.raises(ValueError, match=r"dataset indices \[5\] were observed with NaN"):
        next(iter(miner))


@pytest.mark.parametrize("device", DEVICES)
def test_a_loaded_state_moves_to_the_device_of_the_next_observation(device) -> None:
    saved = ObservedScores(4, half_life=None)
    saved.observe(torch.tensor([0, 1]), torch.tensor([1.0, 2.0]), stamp=0)
    resumed = ObservedScores(4, half_life=None)  # a new process: no buffers yet
    resumed.load_state_dict(saved.state_dict())
    assert resumed.device == torch.device("cpu")  # waiting on the CPU
    resumed.observe(torch.tensor([2], device=device), torch.tensor([3.0], device=device), stamp=1)
    assert resumed.device.type == device and resumed.count == 3
    assert resumed.scores(now=2)[:3].tolist() == [1.0, 2.0, 3.0]
