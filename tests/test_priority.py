"""PrioritySampler: rank-based probabilities against a hand-written reference, draws that follow them, exclusion,
unseen samples, refreshes within an epoch, staleness, warm-up, ranks, state and argument errors."""

from __future__ import annotations

import io
import math

import pytest
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

import hardmine as hm
from hardmine.feedback.priority import PrioritySampler


def _reference(loss: list[float | None], pressure: float, excluded: set[int] = frozenset()) -> list[float]:
    """Per-sample loop: rank the observed, kept samples by loss (largest first), weight ``pressure ** (-r / (K - 1))``
    (samples with equal losses: the mean weight of the ranks they share), unseen kept samples weight 1, excluded 0;
    normalise."""
    kept = [i for i, v in enumerate(loss) if v is not None and i not in excluded]
    kept.sort(key=lambda i: -loss[i])
    k = len(kept)
    weight = [0.0] * len(loss)
    for i in kept:
        ranks = [r for r, j in enumerate(kept) if loss[j] == loss[i]]
        weight[i] = sum(pressure ** (-r / max(k - 1, 1)) for r in ranks) / len(ranks)
    for i, v in enumerate(loss):
        if v is None and i not in excluded:
            weight[i] = 1.0
    total = sum(weight)
    return [w / total for w in weight]


def _observed(n: int = 200, *, seed: int = 0, **kwargs) -> tuple[PrioritySampler, torch.Tensor]:
    losses = torch.empty(n).exponential_(generator=torch.Generator().manual_seed(seed))
    sampler = PrioritySampler(n, **kwargs)
    sampler.observe(torch.arange(n), losses)
    return sampler, losses


def test_probabilities_equal_the_per_sample_reference() -> None:
    sampler, losses = _observed(200, pressure=50.0)
    expected = torch.tensor(_reference(losses.tolist(), 50.0), dtype=torch.float64)
    p = sampler.probabilities()
    assert p.dtype == torch.float64 and p.shape == (200,)
    assert torch.allclose(p, expected, rtol=1e-12, atol=0)
    assert float(p.max() / p.min()) == pytest.approx(50.0)  # the hardest is `pressure` times the easiest
    assert int(p.argmax()) == int(losses.argmax()) and int(p.argmin()) == int(losses.argmin())


def test_pressure_one_draws_the_kept_uniformly_and_equal_losses_equally() -> None:
    sampler = PrioritySampler(5, pressure=1.0, warmup_epochs=0)
    sampler.observe(torch.arange(5), torch.tensor([1.0, 1.0, 2.0, 0.0, 1.0]))
    assert torch.allclose(sampler.probabilities(), torch.full((5,), 0.2, dtype=torch.float64))
    ties = PrioritySampler(4, pressure=8.0, warmup_epochs=0)
    ties.observe(torch.arange(4), torch.tensor([1.0, 1.0, 1.0, 1.0]))
    assert torch.allclose(ties.probabilities(), torch.full((4,), 0.25, dtype=torch.float64))  # no order, no bias
    losses = [0.5, 2.0, 0.5, 3.0, 2.0, 2.0, 0.1, 0.5]  # ties at the top, in the middle and with an unseen sample
    mixed = PrioritySampler(9, pressure=8.0, warmup_epochs=0)
    mixed.observe(torch.arange(8), torch.tensor(losses))
    expected = torch.tensor(_reference([*losses, None], 8.0), dtype=torch.float64)
    assert torch.allclose(mixed.probabilities(), expected, rtol=1e-12, atol=0)
    p = mixed.probabilities()
    assert p[1] == p[4] == p[5] and p[0] == p[2] == p[7] and p[3] == p[8]  # unseen: rank 0's weight, 1


def test_draws_follow_the_probabilities() -> None:
    n, draws = 50, 200_000
    sampler, losses = _observed(n, pressure=20.0, draws=draws, warmup_epochs=0, seed=3)
    p = sampler.probabilities()
    counts = torch.bincount(torch.tensor(list(sampler)), minlength=n).double()
    assert counts.sum() == draws
    expected = p * draws
    chi2 = float(((counts - expected) ** 2 / expected).sum())
    assert chi2 < 90.0  # chi-square, 49 degrees of freedom: p < 1e-3 above 85.4 ... with a fixed seed
    hard = losses >= losses.median()
    assert counts[hard].sum() / draws == pytest.approx(float(p[hard].sum()), abs=0.005)
    assert float(p[hard].sum()) > 0.8  # and the hard half gets most of the draws at this pressure


def test_exclusion_never_draws_the_top_losses() -> None:
    sampler, losses = _observed(100, pressure=10.0, exclude=0.2, draws=5000, warmup_epochs=0)
    top = set(torch.topk(losses, 20).indices.tolist())
    expected = torch.tensor(_reference(losses.tolist(), 10.0, top), dtype=torch.float64)
    assert torch.allclose(sampler.probabilities(), expected, rtol=1e-12, atol=0)
    drawn = set(list(sampler))
    assert not drawn & top
    assert len(drawn) > 60  # the rest are drawn


def test_exclusion_of_decayed_partly_seen_losses_with_ties_equals_the_reference() -> None:
    n, pressure, exclude = 300, 30.0, 0.25
    g = torch.Generator().manual_seed(5)
    sampler = PrioritySampler(n, pressure=pressure, exclude=exclude, warmup_epochs=0, half_life=1.0)
    latest: dict[int, tuple[float, int]] = {}  # sample -> (its latest loss, the epoch it was observed in)
    first = torch.randperm(n, generator=g)[:240]
    again = first[torch.randperm(240, generator=g)[:100]]
    for epoch, idx in ((0, first), (1, again)):
        sampler.set_epoch(epoch)
        losses = torch.empty(len(idx)).exponential_(generator=g).mul_(4).round_().div_(4)  # many ties
        sampler.observe(idx, losses)
        latest.update({int(i): (float(v), epoch) for i, v in zip(idx, losses, strict=True)})
    # At epoch 3: an age of 3 - 1 - epoch, each loss decayed halfway to the mean of the seen ones per epoch of age.
    mean = sum(v for v, _ in latest.values()) / len(latest)
    decayed: list[float | None] = [None] * n
    for i, (v, epoch) in latest.items():
        decayed[i] = mean + (v - mean) * 0.5 ** (3 - 1 - epoch)
    by_loss = sorted(latest, key=lambda i: (-decayed[i], i))  # ties: the lower index first, as the sampler ranks
    excluded = set(by_loss[: round(exclude * len(latest))])
    expected = torch.tensor(_reference(decayed, pressure, excluded), dtype=torch.float64)
    p = sampler.probabilities(epoch=3)
    assert torch.allclose(p, expected, rtol=1e-5, atol=1e-12)
    assert set(torch.nonzero(p == 0).flatten().tolist()) == excluded


def test_a_subclass_that_decides_the_exclusion_itself_is_followed() -> None:
    class FirstFive(PrioritySampler):  # as the benchmark's oracle does: exclusion told, not measured
        def _excluded(self, loss: torch.Tensor, order: torch.Tensor | None = None) -> torch.Tensor:
            out = torch.zeros(self.num_samples, dtype=torch.bool)
            out[:5] = True
            return out & torch.isfinite(loss)

    sampler = FirstFive(20, pressure=10.0, exclude=0.5, warmup_epochs=0)
    losses = torch.arange(20, dtype=torch.float32)  # the largest losses are the last ten, not the first five
    sampler.observe(torch.arange(20), losses)
    p = sampler.probabilities()
    expected = torch.tensor(_reference(losses.tolist(), 10.0, set(range(5))), dtype=torch.float64)
    assert torch.allclose(p, expected, rtol=1e-12, atol=0)


def test_exclusion_by_area_under_the_margin() -> None:
    n = 30
    dyn = hm.Dynamics(n)
    logits = torch.zeros(n, 2)
    logits[:, 0] = torch.linspace(-3, 3, n)  # label 0: margin rises with the index, lowest AUM at index 0
    dyn.update(torch.arange(n), logits, torch.zeros(n, dtype=torch.int64))
    dyn.end_epoch()
    sampler = PrioritySampler(n, exclude=0.1, dynamics=dyn, warmup_epochs=0)
    sampler.observe(torch.arange(n), torch.arange(n, dtype=torch.float32))  # loss order opposite to the AUM's
    p = sampler.probabilities()
    assert torch.equal(p[:3], torch.zeros(3, dtype=torch.float64))  # the 3 lowest AUM, not the 3 largest losses
    assert bool((p[3:] > 0).all())


def test_unseen_samples_are_drawn_as_the_hardest() -> None:
    sampler = PrioritySampler(6, pressure=100.0, warmup_epochs=0)
    sampler.observe(torch.tensor([0, 1, 2]), torch.tensor([0.1, 5.0, 1.0]))
    expected = torch.tensor(_reference([0.1, 5.0, 1.0, None, None, None], 100.0), dtype=torch.float64)
    p = sampler.probabilities()
    assert torch.allclose(p, expected)
    assert p[3] == p[1] == p.max()
    nothing = PrioritySampler(4, warmup_epochs=0)
    assert torch.allclose(nothing.probabilities(), torch.full((4,), 0.25, dtype=torch.float64))


def test_warm_up_draws_everything_once_then_the_epoch_is_draws_long() -> None:
    sampler = PrioritySampler(37, draws=50, seed=1)
    assert len(sampler) == 37
    first = list(sampler)
    assert sorted(first) == list(range(37))
    assert len(sampler) == 50 and sampler.epoch == 0  # the finished pass: the next epoch has 50 draws
    sampler.observe(torch.tensor(first), torch.rand(37))
    second = list(sampler)
    assert len(second) == 50 and sampler.epoch == 1
    sampler.set_epoch(0)
    assert sorted(list(sampler)) == list(range(37))  # set_epoch goes back to the warm-up


def test_losses_observed_during_an_epoch_steer_its_later_draws() -> None:
    n = 100
    sampler = PrioritySampler(n, pressure=1000.0, refresh=50, draws=100, warmup_epochs=0, seed=0)
    sampler.observe(torch.arange(n), torch.ones(n))
    sampler.observe(torch.arange(10), torch.full((10,), 9.0))  # samples 0..9 are the hardest
    it = iter(sampler)
    first = [next(it) for _ in range(50)]  # expected share of 0..9: 0.58
    assert sum(i < 10 for i in first) >= 20
    sampler.observe(torch.arange(10), torch.zeros(10))  # ... now learned (the easiest),
    sampler.observe(torch.arange(90, 100), torch.full((10,), 9.0))  # and 90..99 are the hardest
    rest = list(it)
    assert len(rest) == 50
    assert sum(i >= 90 for i in rest) >= 20 and sum(i < 10 for i in rest) <= 2


def test_same_seed_same_draws_and_epochs_differ() -> None:
    a, _ = _observed(80, draws=200, warmup_epochs=0, seed=5)
    b, _ = _observed(80, draws=200, warmup_epochs=0, seed=5)
    assert list(a) == list(b)
    a.set_epoch(1)
    b.set_epoch(2)
    assert list(a) != list(b)


def test_a_stale_easy_loss_decays_toward_the_mean() -> None:
    sampler = PrioritySampler(3, pressure=10.0, half_life=1.0, warmup_epochs=0)
    sampler.observe(torch.tensor([0, 1]), torch.tensor([0.0, 2.0]))  # epoch 0
    sampler.set_epoch(1)
    sampler.observe(torch.tensor([2]), torch.tensor([0.3]))
    # at epoch 3: samples 0 and 1 aged 2 epochs (a quarter of the way left to the mean), sample 2 aged 1 (a half)
    mean = (0.0 + 2.0 + 0.3) / 3
    decayed = [mean + (0.0 - mean) / 4, mean + (2.0 - mean) / 4, mean + (0.3 - mean) / 2]
    assert decayed[0] > decayed[2]  # the old easy sample now ranks above the fresher, once harder one
    expected = torch.tensor(_reference(decayed, 10.0), dtype=torch.float64)
    assert torch.allclose(sampler.probabilities(epoch=3), expected)


def test_ranks_split_the_warm_up_and_draw_their_own_streams() -> None:
    shares = []
    for rank in range(3):
        s = PrioritySampler(10, num_replicas=3, rank=rank, seed=2, draws=30)
        shares.append(list(s))
        assert len(s) == 10  # after the warm-up: ceil(30 / 3) each
    flat = sum(shares, [])
    assert len(flat) == 12 and set(flat) == set(range(10))  # 10 padded to 12, disjoint up to the padding
    streams = []
    for rank in range(2):
        s = PrioritySampler(10, num_replicas=2, rank=rank, seed=2, draws=31, warmup_epochs=0)
        s.observe(torch.arange(10), torch.arange(10.0))
        streams.append(list(s))
    assert len(streams[0]) == len(streams[1]) == 16 and streams[0] != streams[1]
    with pytest.raises(ValueError, match=r"`rank` must be in \[0, num_replicas=2\), got 2"):
        list(PrioritySampler(10, num_replicas=2, rank=2))


def test_a_training_loop_with_indices_draws_the_hard_samples_more() -> None:
    torch.manual_seed(0)
    n = 300
    x = torch.randn(n, 2)
    y = (x[:, 0] > 0).long()
    y[:30] = 1 - y[:30]  # 30 samples the linear model cannot fit: they stay the largest losses
    data = TensorDataset(x, y)
    sampler = hm.PrioritySampler(data, pressure=100.0, seed=0)
    loader = hm.with_indices(DataLoader(data, batch_size=30, sampler=sampler))
    model = torch.nn.Linear(2, 2)
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    counts = torch.zeros(n)
    for epoch in range(4):
        sampler.set_epoch(epoch)
        for idx, xb, yb in loader:
            losses = F.cross_entropy(model(xb), yb, reduction="none")
            opt.zero_grad()
            losses.mean().backward()
            opt.step()
            sampler.observe(idx, losses.detach())
            if epoch:
                counts.index_add_(0, idx, torch.ones(len(idx)))
    assert counts.sum() == 3 * n
    # the 30 unfittable samples hold the top ranks: each about 4 times as likely as the rest at pressure 100
    assert counts[:30].mean() > 3 * counts[30:].mean()


def test_state_round_trip_draws_the_same_next_epoch() -> None:
    sampler = PrioritySampler(60, pressure=30.0, exclude=0.1, draws=90, seed=7)
    sampler.observe(torch.arange(60), torch.rand(60, generator=torch.Generator().manual_seed(1)))
    list(sampler)  # the warm-up epoch
    buffer = io.BytesIO()
    torch.save(sampler.state_dict(), buffer)
    buffer.seek(0)
    restored = PrioritySampler(60, pressure=30.0, exclude=0.1)
    restored.load_state_dict(torch.load(buffer, weights_only=True))
    assert restored.epoch == sampler.epoch and restored.seed == 7 and len(restored) == len(sampler) == 90
    assert torch.equal(restored.probabilities(), sampler.probabilities())
    assert list(restored) == list(sampler)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"pressure": 0.5}, ValueError, "`pressure` must be >= 1, got 0.5"),
        ({"pressure": "high"}, TypeError, "pressure"),
        ({"exclude": 1.0}, ValueError, "`exclude`"),
        ({"draws": 0}, ValueError, "`draws` must be >= 1, got 0"),
        ({"refresh": 2.5}, TypeError, "refresh"),
        ({"half_life": 0}, ValueError, "`half_life`"),
    ],
)
def test_bad_arguments(kwargs, error, match) -> None:
    with pytest.raises(error, match=match):
        PrioritySampler(10, **kwargs)


def test_bad_data_source_epoch_and_state() -> None:
    with pytest.raises(TypeError, match="`data_source` must be a dataset with a length or an int, got float"):
        PrioritySampler(2.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="`data_source` must be >= 1, got 0"):
        PrioritySampler(0)
    sampler = PrioritySampler(10)
    with pytest.raises(ValueError, match="`epoch` must be >= 0, got -1"):
        sampler.set_epoch(-1)
    with pytest.raises(ValueError, match="`epoch` must be >= 0, got -2"):
        sampler.probabilities(epoch=-2)
    with pytest.raises(TypeError, match="indices"):
        sampler.observe(torch.tensor([0.5]), torch.tensor([1.0]))
    with pytest.raises(ValueError, match=r"lacks \['draws'"):
        sampler.load_state_dict({k: v for k, v in sampler.state_dict().items() if k != "draws"})
    with pytest.raises(ValueError, match="`state` must be saved for 10 samples, got 11"):
        sampler.load_state_dict(PrioritySampler(11).state_dict())
    with pytest.raises(ValueError, match="must cover 10 samples"):
        PrioritySampler(10, dynamics=hm.Dynamics(11))


def test_repr() -> None:
    assert repr(PrioritySampler(10, exclude=0.2)) == (
        "PrioritySampler(num_samples=10, pressure=1000, exclude=0.2, draws=10, epoch=0)"
    )


def test_many_samples_draw_by_the_cdf() -> None:
    """Inverse-CDF draws: no category limit (torch.multinomial stops at 2**24); checked here at a smaller size."""
    n = 100_000
    sampler = PrioritySampler(n, pressure=100.0, draws=1000, warmup_epochs=0)
    sampler.observe(torch.arange(n), torch.arange(n, dtype=torch.float32))
    drawn = torch.tensor(list(sampler))
    assert drawn.min() >= 0 and drawn.max() < n
    p_top_half = float(sampler.probabilities()[n // 2 :].sum())
    assert float((drawn >= n // 2).double().mean()) == pytest.approx(p_top_half, abs=0.05)
    assert math.isclose(p_top_half, 10 / 11, rel_tol=1e-3)  # halves weigh 1 : 1/sqrt(100) of each other


# --------------------------------------------------------------------------- torch.distributed (2 gloo processes)

_WORLD, _N = 2, 41


def _loss_of(idx: torch.Tensor) -> torch.Tensor:
    """A fixed loss per sample, so that every observation is a function of the sample alone."""
    return (idx * 7 % 13).to(torch.float32) / 3


def _distributed_worker(rank: int, world: int, port: int, out_dir: str) -> None:
    import pickle
    from pathlib import Path

    import gloo
    import torch.distributed as dist

    gloo.init_gloo(rank, world, port)
    try:
        sampler = PrioritySampler(_N, pressure=10.0, exclude=0.1, draws=30, seed=4)
        warm = torch.tensor(list(sampler), dtype=torch.int64)
        sampler.observe(warm, _loss_of(warm))  # only this rank's share: merged when epoch 1 starts
        it = iter(sampler)
        first = next(it)  # the pass has started: the merge is done
        out = {"warm": warm, "p": sampler.probabilities(), "drawn": [first, *it]}
        (Path(out_dir) / f"rank{rank}.pkl").write_bytes(pickle.dumps(out))
        dist.barrier()
    finally:
        dist.destroy_process_group()


@pytest.mark.distributed
@pytest.mark.slow
def test_ranks_merge_their_losses_then_draw_their_own_shares(tmp_path) -> None:
    import pickle

    import gloo
    import torch.multiprocessing as mp

    if not gloo.available():
        pytest.skip("torch.distributed with gloo is not available")
    port = gloo.free_port()
    mp.start_processes(
        _distributed_worker, args=(_WORLD, port, str(tmp_path)), nprocs=_WORLD, join=True, start_method="spawn"
    )
    ranks = [pickle.loads((tmp_path / f"rank{r}.pkl").read_bytes()) for r in range(_WORLD)]
    warm = torch.cat([r["warm"] for r in ranks])
    assert len(ranks[0]["warm"]) == len(ranks[1]["warm"]) == 21 and set(warm.tolist()) == set(range(_N))
    single = PrioritySampler(_N, pressure=10.0, exclude=0.1, seed=4)  # one process that saw every loss
    single.observe(torch.arange(_N), _loss_of(torch.arange(_N)))
    for r in ranks:
        assert torch.allclose(r["p"], single.probabilities(epoch=1))
        assert len(r["drawn"]) == 15  # ceil(30 / 2)
    assert ranks[0]["drawn"] != ranks[1]["drawn"]  # each rank its own stream


# --------------------------------------------------------------------------- exclude="auto"


def test_auto_exclusion_leaves_out_the_labels_less_likely_than_chance() -> None:
    loss = [0.1, 2.0, 1.0, 5.0, None, 1.386]  # log(4) = 1.38629...: the last one is just below it
    sampler = PrioritySampler(6, pressure=10.0, exclude="auto", num_classes=4, warmup_epochs=0)
    seen = torch.tensor([0, 1, 2, 3, 5])
    sampler.observe(seen, torch.tensor([loss[i] for i in seen.tolist()]))
    expected = torch.tensor(_reference(loss, 10.0, {1, 3}), dtype=torch.float64)
    assert torch.allclose(sampler.probabilities(), expected)
    assert set(list(PrioritySampler(6, exclude="auto", num_classes=4).__iter__())) == set(range(6))  # warm-up: all


def test_auto_exclusion_takes_the_class_count_from_observed_logits() -> None:
    logits = torch.tensor([[4.0, 0.0, 0.0], [0.0, 4.0, 0.0], [0.2, 0.0, 0.0], [0.0, 0.0, 0.1]])
    targets = torch.tensor([0, 0, 0, 0])  # sample 1's label is unlikely (p ~ 0.02), 3's just below 1/3
    sampler = PrioritySampler(4, exclude="auto", warmup_epochs=0)
    sampler.observe(torch.arange(4), logits, targets)
    p = sampler.probabilities()
    probs = logits.softmax(1)[:, 0]
    assert torch.equal(p == 0, probs < 1 / 3)
    assert p[1] == 0 and p[3] == 0 and bool((p[[0, 2]] > 0).all())


def test_auto_exclusion_without_a_class_count_says_what_to_pass() -> None:
    sampler = PrioritySampler(4, exclude="auto", warmup_epochs=0)
    sampler.observe(torch.arange(4), torch.rand(4))
    with pytest.raises(ValueError, match="needs the number of classes: pass `num_classes=`"):
        sampler.probabilities()
    with pytest.raises(ValueError, match=r"`exclude` must be a fraction in \[0, 1\) or 'auto', got 'all'"):
        PrioritySampler(4, exclude="all")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="`num_classes` must be >= 2, got 1"):
        PrioritySampler(4, num_classes=1)


def test_auto_exclusion_by_area_under_the_margin_is_below_zero() -> None:
    n = 6
    dyn = hm.Dynamics(n)
    logits = torch.zeros(n, 2)
    logits[:, 0] = torch.tensor([-2.0, -0.5, 0.5, 1.0, 2.0, 3.0])  # margins of label 0
    dyn.update(torch.arange(n), logits, torch.zeros(n, dtype=torch.int64))
    dyn.end_epoch()
    sampler = PrioritySampler(n, exclude="auto", dynamics=dyn, warmup_epochs=0)
    sampler.observe(torch.arange(n), torch.ones(n))
    assert (sampler.probabilities() == 0).tolist() == [True, True, False, False, False, False]


def test_pruning_sampler_auto_exclusion() -> None:
    loss = torch.tensor([0.1, 2.0, 1.0, 5.0, 0.2, 0.3])
    sampler = hm.PruningSampler(6, prune=0.0, exclude="auto", num_classes=4, warmup_epochs=0)
    sampler.observe(torch.arange(6), loss)
    order, weights = sampler.plan(0)
    assert sorted(order.tolist()) == [0, 2, 4, 5]
    assert weights.tolist() == [1.0, 0.0, 1.0, 0.0, 1.0, 1.0]


@pytest.mark.parametrize("cls", [PrioritySampler, hm.PruningSampler])
def test_double_sharding_warns_under_a_distributed_sampler(monkeypatch, cls) -> None:
    import warnings

    import hardmine.core.distributed

    monkeypatch.setattr(hardmine.core.distributed, "get_world_size", lambda: 2)
    monkeypatch.setattr(hardmine.core.distributed, "get_rank", lambda: 1)
    inner = cls(10)

    class Wrapper(torch.utils.data.DistributedSampler):
        def __iter__(self):
            return iter(list(inner))

    wrapper = Wrapper(list(range(5)), num_replicas=2, rank=1)
    with pytest.warns(hm.DoubleShardingWarning, match=r"shards its epoch over 2 ranks .* about 1/4 of the epoch"):
        list(wrapper)
    pinned = cls(10, num_replicas=1, rank=0)  # the framework splits one draw: nothing to warn about

    class PinnedWrapper(torch.utils.data.DistributedSampler):
        def __iter__(self):
            return iter(list(pinned))

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert len(list(PinnedWrapper(list(range(5)), num_replicas=2, rank=1))) == 10
