"""PruningSampler: InfoBatch-style pruning of low stale losses (unbiased by the loss weights), exclusion of the top
losses or the lowest AUM, staleness and unseen samples, annealing, ranks, state and argument errors."""

from __future__ import annotations

import io
import math

import pytest
import torch
import torch.nn.functional as F
from reference import DEVICES
from torch.utils.data import DataLoader, TensorDataset

import hardmine as hm
from hardmine.feedback.pruning import PruningSampler


def _observed(n: int = 1000, *, seed: int = 0, **kwargs) -> tuple[PruningSampler, torch.Tensor]:
    """A sampler past its warm-up epoch that has observed one fixed loss per sample (exponential, seed ``seed``)."""
    losses = torch.empty(n).exponential_(generator=torch.Generator().manual_seed(seed))
    sampler = PruningSampler(n, **kwargs)
    sampler.observe(torch.arange(n), losses)
    return sampler, losses


def _epoch(sampler: PruningSampler, epoch: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The indices epoch ``epoch`` draws and their loss weights, as a training loop sees them."""
    sampler.set_epoch(epoch)
    idx = torch.tensor(list(sampler), dtype=torch.int64)
    return idx, sampler.loss_weights(idx)


# --------------------------------------------------------------------------- pruning


def test_pruning_drops_low_loss_samples_at_the_rate_and_stays_unbiased() -> None:
    n, prune, epochs = 1000, 0.6, 300
    sampler, losses = _observed(n, prune=prune)
    low = losses < losses.mean()
    m = int(low.sum())
    dropped_count = torch.zeros(n, dtype=torch.float64)
    estimates = []
    for epoch in range(1, epochs + 1):
        idx, w = _epoch(sampler, epoch)
        assert len(idx) == len(set(idx.tolist())) == len(sampler)  # every drawn sample once
        drawn = torch.zeros(n, dtype=torch.bool)
        drawn[idx] = True
        assert drawn[~low].all()  # a sample at or above the mean is never pruned ...
        assert int((~drawn).sum()) == round(prune * m)  # ... and exactly round(prune * m) below it are
        assert torch.equal(w[~low[idx]], torch.ones(int((~low).sum())))
        assert torch.allclose(w[low[idx]], torch.full((int(low[idx].sum()),), m / (m - round(prune * m))))
        assert float(w.double().sum()) == pytest.approx(n, abs=1e-3)  # the weights sum to N every epoch
        dropped_count += ~drawn
        estimates.append(float((w.double() * losses[idx].double()).sum()) / n)
    full_mean = float(losses.double().mean())
    assert sum(estimates) / epochs == pytest.approx(full_mean, rel=2e-3)  # unbiased: the weighted mean is the mean
    assert max(abs(e - full_mean) for e in estimates) > 1e-4  # (a real random draw, not the full data every time)
    rate = dropped_count[low] / epochs  # each below-mean sample is left out about `prune` of the epochs
    assert float(rate.mean()) == pytest.approx(round(prune * m) / m, abs=1e-12)
    sd = math.sqrt(prune * (1 - prune) / epochs)
    assert float((rate - prune).abs().max()) < 5 * sd


def test_warm_up_and_annealing_draw_everything_with_weight_one() -> None:
    sampler, _ = _observed(200, prune=0.5, epochs=8, warmup_epochs=2)  # anneal 0.125: epoch 7 is full
    lengths = []
    for epoch in range(8):
        idx, w = _epoch(sampler, epoch)
        lengths.append(len(idx))
        if epoch in (0, 1, 7):
            assert sorted(idx.tolist()) == list(range(200)) and torch.equal(w, torch.ones(200))
            assert not sampler.pruning_active()
        else:
            assert len(idx) < 200 and sampler.pruning_active()
    assert lengths[2:7] == [lengths[2]] * 5  # the same rounding every pruned epoch
    assert [PruningSampler(10, epochs=10).pruning_active(e) for e in range(10)] == [False] + [True] * 8 + [False]
    assert PruningSampler(10, epochs=10, anneal=0.0).pruning_active(9)
    assert not PruningSampler(10, prune=0.0).pruning_active(5)


def test_without_set_epoch_each_finished_pass_is_the_next_epoch() -> None:
    sampler, _ = _observed(100, prune=0.5, epochs=3, anneal=0.4, seed=1)
    assert len(sampler) == 100 and len(list(sampler)) == 100 and sampler.epoch == 0  # warm-up
    assert len(sampler) == 100 and sampler.epoch == 0  # read to its end: still the warm-up's length and epoch
    second = list(sampler)  # the next pass is the next epoch, planned as it starts
    assert sampler.epoch == 1 and len(second) == len(sampler) < 100  # it prunes
    third = list(sampler)
    assert sampler.epoch == 2 and len(third) == 100  # annealing
    reference, _ = _observed(100, prune=0.5, epochs=3, anneal=0.4, seed=1)
    assert _epoch(reference, 1)[0].tolist() == second


# --------------------------------------------------------------------------- exclusion, staleness, unseen samples


def test_exclusion_leaves_out_the_top_losses_also_when_annealing() -> None:
    n = 500
    sampler, losses = _observed(n, prune=0.0, exclude=0.1, epochs=4)
    top = set(torch.argsort(losses, descending=True)[:50].tolist())
    assert sorted(_epoch(sampler, 0)[0].tolist()) == list(range(n))  # warm-up: nothing excluded
    for epoch in (1, 3):  # 3 is the annealing epoch: pruning stops, the exclusion does not
        idx, w = _epoch(sampler, epoch)
        assert set(range(n)) - set(idx.tolist()) == top
        assert torch.equal(w, torch.ones(n - 50))
        assert torch.equal(sampler.loss_weights(torch.tensor(sorted(top))), torch.zeros(50))


def test_exclusion_then_pruning_of_the_rest() -> None:
    n = 400
    sampler, losses = _observed(n, prune=0.5, exclude=0.25)
    idx, w = _epoch(sampler, 1)
    order = torch.argsort(losses, descending=True)
    excluded, rest = order[:100], order[100:]
    assert not set(excluded.tolist()) & set(idx.tolist())
    below = rest[losses[rest] < losses[rest].mean()]  # the mean of the samples still in the draw
    assert len(idx) == 300 - round(0.5 * len(below))
    assert set(rest.tolist()) - set(below.tolist()) <= set(idx.tolist())
    assert float(w.double().sum()) == pytest.approx(300, abs=1e-3)


def test_exclusion_by_area_under_the_margin() -> None:
    n = 60
    labels = torch.arange(n) % 2
    margins = torch.linspace(-3, 3, n)[torch.randperm(n, generator=torch.Generator().manual_seed(0))]
    logits = torch.zeros(n, 2)
    logits[torch.arange(n), labels] = margins  # label logit minus the other: the margin
    dyn = hm.Dynamics(num_samples=n)
    dyn.update(torch.arange(n), logits, labels)
    dyn.end_epoch()
    sampler = PruningSampler(n, prune=0.0, exclude=0.2, dynamics=dyn)
    sampler.observe(torch.arange(n), -margins)  # losses in the opposite order: the AUM must decide
    idx, _ = _epoch(sampler, 1)
    assert set(range(n)) - set(idx.tolist()) == set(torch.argsort(margins)[:12].tolist())
    with pytest.raises(ValueError, match="`dynamics` must cover 10 samples"):
        PruningSampler(10, dynamics=dyn)


def test_unseen_samples_are_drawn_with_weight_one_and_left_out_of_the_mean() -> None:
    n = 100
    sampler = PruningSampler(n, prune=0.5, exclude=0.1)
    seen = torch.arange(0, n, 2)
    losses = torch.arange(50, dtype=torch.float32)  # mean 24.5 over the seen half; unseen would be NaN
    sampler.observe(seen, losses)
    idx, w = _epoch(sampler, 1)
    unseen = set(range(1, n, 2))
    assert unseen <= set(idx.tolist())
    assert torch.equal(sampler.loss_weights(torch.tensor(sorted(unseen))), torch.ones(50))
    excluded = set(seen[45:].tolist())  # round(0.1 * 50 seen) = 5 largest
    assert not excluded & set(idx.tolist())
    below = seen[:23]  # mean of the 45 left: 22; below it 0..21 -> 22 samples, 11 dropped
    assert len(set(below.tolist()) - set(idx.tolist())) == 11
    assert len(idx) == n - 5 - 11


def test_a_stale_excluded_loss_decays_and_the_sample_returns() -> None:
    n = 10
    sampler = PruningSampler(n, prune=0.0, exclude=0.1, half_life=1.0)
    sampler.observe(torch.arange(n), torch.tensor([1.0] * 8 + [3.0, 10.0]))
    left_out = []
    for epoch in range(1, 6):
        idx, _ = _epoch(sampler, epoch)
        left_out.append(sorted(set(range(n)) - set(idx.tolist())))
        sampler.observe(idx, torch.where(idx == 8, 3.0, 1.0))  # every drawn sample observed afresh
    # sample 9 (loss 10, never re-observed) decays toward the mean, below sample 8's fresh 3.0 after a few epochs
    assert left_out[0] == [9] and left_out[-1] == [8]
    assert PruningSampler(n, exclude=0.1)._excluded(torch.tensor([1.0] * 9 + [10.0])).nonzero().tolist() == [[9]]


# --------------------------------------------------------------------------- ranks, loaders, state


def test_ranks_draw_disjoint_equal_shares_of_the_same_epoch() -> None:
    n, reps = 103, 4
    shares = []
    for rank in range(reps):
        s, _ = _observed(n, prune=0.5, seed=3, num_replicas=reps, rank=rank)
        shares.append(_epoch(s, 1)[0])
    whole, _ = _observed(n, prune=0.5, seed=3)
    order = _epoch(whole, 1)[0]
    size = math.ceil(len(order) / reps)
    assert all(len(share) == size for share in shares)
    padded = torch.cat([order, order[: size * reps - len(order)]])
    assert torch.equal(torch.stack(shares, 1).reshape(-1), padded)
    with pytest.raises(ValueError, match="`rank` must be in"):
        list(PruningSampler(10, num_replicas=2, rank=2))


def test_a_training_loop_with_indices() -> None:
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(300, 4, generator=g), torch.randint(0, 3, (300,), generator=g)
    data = TensorDataset(x, y)
    sampler = hm.PruningSampler(data, prune=0.5, epochs=5, anneal=0.2, seed=1)
    loader = hm.with_indices(DataLoader(data, batch_size=32, sampler=sampler))
    torch.manual_seed(0)
    model = torch.nn.Linear(4, 3)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    steps, counts = [], []
    for epoch in range(5):
        sampler.set_epoch(epoch)
        n_steps = len(loader)
        seen = []
        for idx, xb, yb in loader:
            assert torch.equal(xb, x[idx])
            losses = F.cross_entropy(model(xb), yb, reduction="none")
            loss = (losses * sampler.loss_weights(idx)).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            sampler.observe(idx, losses)
            seen.extend(idx.tolist())
        assert len(seen) == len(set(seen)) and math.ceil(len(seen) / 32) == n_steps
        counts.append(len(seen))
        steps.append(n_steps)
    assert steps[0] == steps[4] == 10 and all(s < 10 for s in steps[1:4])  # 300 samples, then fewer, then all
    assert sampler.observed.count == sum(counts)


def test_state_round_trip_is_bit_identical() -> None:
    sampler, _ = _observed(300, prune=0.5, exclude=0.1, epochs=6, half_life=2.0, seed=5)
    for epoch in range(1, 3):
        idx, _ = _epoch(sampler, epoch)
        sampler.observe(idx, torch.rand(len(idx), generator=torch.Generator().manual_seed(epoch)))
    sampler.set_epoch(3)
    first = sampler.indices()
    buffer = io.BytesIO()
    torch.save(sampler.state_dict(), buffer)
    buffer.seek(0)
    state = torch.load(buffer, weights_only=True)
    assert set(type(v).__name__ for v in state.values()) <= {"int", "float", "bool", "NoneType", "Tensor", "dict"}
    sampler.observe(first[:50], torch.full((50,), 9.0))  # mid-epoch observations: the plan is already fixed
    restored = PruningSampler(300, prune=0.5, exclude=0.1, epochs=6, half_life=2.0, seed=5)
    restored.load_state_dict(state)
    restored.observe(first[:50], torch.full((50,), 9.0))
    assert torch.equal(restored.indices(), first)
    assert torch.equal(restored.loss_weights(first), sampler.loss_weights(first))
    for epoch in (4, 5):
        a, wa = _epoch(sampler, epoch)
        b, wb = _epoch(restored, epoch)
        assert torch.equal(a, b) and torch.equal(wa, wb)


@pytest.mark.parametrize("device", DEVICES)
def test_loss_weights_on_the_device_follow_each_epochs_plan_and_a_loaded_state(device) -> None:
    sampler, _ = _observed(400, prune=0.5, epochs=5, seed=3)
    reference, _ = _observed(400, prune=0.5, epochs=5, seed=3)
    for epoch in range(1, 4):  # a new plan every epoch: the weights on the device must not be the first epoch's
        idx, expected = _epoch(reference, epoch)
        sampler.set_epoch(epoch)
        assert torch.equal(sampler.indices(), idx)
        got = sampler.loss_weights(idx.to(device))
        assert got.device.type == device and torch.equal(got.cpu(), expected)
        assert bool((expected != 1).any())  # the epochs prune: the weights are not all ones
    idx = reference.indices()  # the next epoch's plan, loaded into the sampler that holds epoch 3's on the device
    sampler.load_state_dict(reference.state_dict())
    assert torch.equal(sampler.loss_weights(idx.to(device)).cpu(), reference.loss_weights(idx))


def _loop(n: int, epochs: int, *, call_len: bool) -> list[tuple[int, int, list[int], list[float]]]:
    """Train-loop records ``(epoch, len(loader), idx, weights)`` per batch; ``call_len``: ask ``len(loader)`` each."""
    sampler = PruningSampler(n, prune=0.5, seed=1)
    loader = DataLoader(TensorDataset(torch.arange(n)), batch_size=10, sampler=sampler)
    records = []
    for _ in range(epochs):  # no set_epoch: every pass read to its end moves on by itself
        for (idx,) in loader:
            length = len(loader) if call_len else -1  # e.g. `epoch + i / len(loader)` for a schedule
            weights = sampler.loss_weights(idx)
            records.append((sampler.epoch, length, idx.tolist(), weights.tolist()))
            sampler.observe(idx, (idx * 7919 % 101).float() / 10 + sampler.epoch)  # fixed per sample and epoch
    return records


def test_len_while_the_last_batches_train_changes_neither_the_epoch_nor_the_plan() -> None:
    # 105 samples in batches of 10: the sampler is read to its end while its last batch (5) is still being trained
    # on; len() then must not start the next epoch (its plan would miss that batch's losses and weigh it by the next
    # epoch's plan: 0 for a sample the next epoch prunes)
    plain, asked = _loop(105, 4, call_len=False), _loop(105, 4, call_len=True)
    assert [r[::2] + r[3:] for r in asked] == [r[::2] + r[3:] for r in plain]
    for epoch, length, idx, weights in asked:
        assert min(weights) > 0, (epoch, idx)  # every drawn sample is trained on
        assert length == sum(1 for r in asked if r[0] == epoch)  # this epoch's number of batches
    assert len({r[0] for r in asked}) == 4 and any(r[1] < 11 for r in asked)  # the epochs after the first prune


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"prune": 1.0}, ValueError, r"`prune` must be in \[0, 1\), got 1.0"),
        ({"prune": "half"}, TypeError, "`prune` must be a real number, got str"),
        ({"exclude": -0.1}, ValueError, "`exclude` must be in"),
        ({"epochs": 0}, ValueError, "`epochs` must be >= 1, got 0"),
        ({"epochs": 2.5}, TypeError, "`epochs` must be an integer"),
        ({"anneal": 1.5}, ValueError, "`anneal` must be in"),
        ({"warmup_epochs": -1}, ValueError, "`warmup_epochs` must be >= 0"),
        ({"half_life": 0}, ValueError, "`half_life` must be > 0"),
        ({"seed": None}, TypeError, "`seed` must be an integer"),
        ({"num_replicas": 0}, ValueError, "`num_replicas` must be >= 1"),
    ],
)
def test_bad_arguments(kwargs, error, match) -> None:
    with pytest.raises(error, match=match):
        PruningSampler(10, **kwargs)


def test_bad_data_source_epoch_and_state() -> None:
    with pytest.raises(TypeError, match="`data_source` must be a dataset with a length or an int, got float"):
        PruningSampler(3.0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="`data_source` must be >= 1, got 0"):
        PruningSampler(0)
    sampler = PruningSampler(10)
    with pytest.raises(ValueError, match="`epoch` must be >= 0, got -1"):
        sampler.set_epoch(-1)
    with pytest.raises(TypeError, match="indices"):
        sampler.observe(torch.tensor([0.5]), torch.tensor([1.0]))
    with pytest.raises(TypeError, match="Expected argument `indices` to be an int tensor of dataset indices, but got"):
        sampler.loss_weights(torch.tensor([0.0, 2.0]))  # float indices were truncated to ints before
    with pytest.raises(ValueError, match=r"Expected `indices` to be dataset indices in \[0, 10\), but got \[10, -1\]"):
        sampler.loss_weights(torch.tensor([3, 10, -1]))  # -1 read the last sample's weight before
    with pytest.raises(ValueError, match=r"lacks \['seed'"):
        sampler.load_state_dict({k: v for k, v in sampler.state_dict().items() if k != "seed"})
    with pytest.raises(ValueError, match="`state` must be saved for 10 samples, got 11"):
        sampler.load_state_dict(PruningSampler(11).state_dict())


# --------------------------------------------------------------------------- torch.distributed (2 gloo processes)

_WORLD, _N = 2, 41


def _loss_of(idx: torch.Tensor) -> torch.Tensor:
    """A fixed loss per sample, so that every observation is a function of the sample alone."""
    return (idx * 7 % 13).to(torch.float32) / 3


def _ranked_epochs() -> dict:
    sampler = PruningSampler(_N, prune=0.5, exclude=0.1, seed=4)
    drawn = []
    for epoch in range(2):
        sampler.set_epoch(epoch)
        share = torch.tensor(list(sampler), dtype=torch.int64)
        sampler.observe(share, _loss_of(share))  # only this rank's share: merged when epoch 1 starts
        drawn.append(share)
    return {"drawn": drawn, "weights": sampler.loss_weights(torch.arange(_N))}


def _distributed_worker(rank: int, world: int, port: int, out_dir: str) -> None:
    import datetime
    import pickle
    from pathlib import Path

    import torch.distributed as dist

    dist.init_process_group(
        "gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world, timeout=datetime.timedelta(60)
    )
    try:
        out = _ranked_epochs()
        (Path(out_dir) / f"rank{rank}.pkl").write_bytes(pickle.dumps(out))
        dist.barrier()
    finally:
        dist.destroy_process_group()


@pytest.mark.distributed
@pytest.mark.slow
def test_ranks_merge_their_losses_and_draw_disjoint_shares(tmp_path) -> None:
    import pickle
    import socket

    import torch.distributed as dist
    import torch.multiprocessing as mp

    if not (dist.is_available() and dist.is_gloo_available()):
        pytest.skip("torch.distributed with gloo is not available")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mp.start_processes(
        _distributed_worker, args=(_WORLD, port, str(tmp_path)), nprocs=_WORLD, join=True, start_method="spawn"
    )
    ranks = [pickle.loads((tmp_path / f"rank{r}.pkl").read_bytes()) for r in range(_WORLD)]
    for epoch in range(2):
        shares = [ranks[r]["drawn"][epoch] for r in range(_WORLD)]
        assert len(shares[0]) == len(shares[1])
    first = torch.cat([ranks[r]["drawn"][0] for r in range(_WORLD)])
    assert sorted(set(first.tolist())) == list(range(_N))  # the warm-up epoch covers everything (41 + 1 padding)
    assert torch.equal(ranks[0]["weights"], ranks[1]["weights"])  # the same plan on both ranks ...
    single = PruningSampler(_N, prune=0.5, exclude=0.1, seed=4)  # ... as one process that saw every loss
    single.observe(torch.arange(_N), _loss_of(torch.arange(_N)))
    order, weights = single.plan(1)
    assert torch.equal(ranks[0]["weights"], weights)
    padded = torch.cat([order, order[: 2 * math.ceil(len(order) / 2) - len(order)]])
    assert torch.equal(torch.stack([ranks[0]["drawn"][1], ranks[1]["drawn"][1]], 1).reshape(-1), padded)
