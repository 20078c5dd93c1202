"""ShardedSampler: the union of all ranks' draws is the weighted draw (chi-square), determinism, epochs and state."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy import stats

from hardmine.feedback.sharded import ShardedSampler, _multinomial


def _weights(n: int = 40, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    w = rng.random(n).astype(np.float32) ** 3
    w[[3, 17, 18]] = 0.0  # zero weights are never drawn
    w[25] = 5.0
    return w


def _union(w: np.ndarray, ranks: int, num_samples: int, *, shard_size: int, seed: int = 0, epoch: int = 0) -> list:
    parts = []
    for r in range(ranks):
        s = ShardedSampler(w, num_samples, shard_size=shard_size, seed=seed, num_replicas=ranks, rank=r)
        parts.append(s.indices(epoch).numpy())
    return parts


@pytest.mark.parametrize(("ranks", "shard_size"), [(1, 7), (4, 7), (3, 1), (8, 40), (5, 64)])
def test_union_of_ranks_is_the_weighted_draw(ranks: int, shard_size: int) -> None:
    w = _weights()
    m = 60_000
    parts = _union(w, ranks, m, shard_size=shard_size, seed=11)
    assert [len(p) for p in parts] == [-(-m // ranks)] * ranks
    draws = np.concatenate(parts)
    counts = np.bincount(draws, minlength=len(w))
    assert counts[[3, 17, 18]].tolist() == [0, 0, 0]
    wd = w.astype(np.float64)
    p = wd / wd.sum()
    keep = p > 0
    expected = p[keep] * len(draws)
    result = stats.chisquare(counts[keep], expected)
    assert result.pvalue > 1e-3, result
    # A wrong scheme is caught: uniform draws within the union's support fail the same test.
    uniform = np.bincount(np.random.default_rng(0).choice(np.flatnonzero(keep), len(draws)), minlength=len(w))
    assert stats.chisquare(uniform[keep], expected).pvalue < 1e-6


def test_every_rank_draws_only_from_its_slice_of_shards() -> None:
    w = _weights(60)
    s = ShardedSampler(w, 6000, shard_size=6, seed=2, num_replicas=4, rank=0)
    order, counts = s.shard_counts(0)
    assert sorted(order.tolist()) == list(range(10)) and counts.sum() == 6000
    ends = np.cumsum(counts[order])
    starts = ends - counts[order]
    for r in range(4):
        draws = ShardedSampler(w, 6000, shard_size=6, seed=2, num_replicas=4, rank=r).indices(0).numpy()
        mine = {
            int(order[j]) for j in range(10) if starts[j] < (r + 1) * 1500 and ends[j] > r * 1500 and counts[order[j]]
        }
        assert set((draws // 6).tolist()) <= mine
        # each shard's share of the draws matches the overlap of its positions with this rank's slice
        got = Counter((draws // 6).tolist())
        for j in range(10):
            overlap = max(0, min(ends[j], (r + 1) * 1500) - max(starts[j], r * 1500))
            assert got.get(int(order[j]), 0) == overlap


def test_same_seed_same_draw_and_epochs_differ(tmp_path: Path) -> None:
    w = _weights()
    path = tmp_path / "w.npy"
    np.save(path, w)
    a = ShardedSampler(path, 500, shard_size=8, seed=5, num_replicas=2, rank=1)
    b = ShardedSampler(torch.from_numpy(w), 500, shard_size=8, seed=5, num_replicas=2, rank=1)
    assert isinstance(a.weights, np.memmap)
    torch.testing.assert_close(a.indices(0), b.indices(0))
    assert not torch.equal(a.indices(0), a.indices(1))
    assert not torch.equal(
        a.indices(0), ShardedSampler(path, 500, shard_size=8, seed=6, num_replicas=2, rank=1).indices(0)
    )
    first = list(a)  # a pass without set_epoch moves on to the next epoch, as HardSampler does
    assert first == a.indices(0).tolist() and a.epoch == 1
    assert list(a) == a.indices(1).tolist()
    a.set_epoch(7)
    assert list(a) == b.indices(7).tolist()


def test_state_dict_resumes_mid_epoch(tmp_path: Path) -> None:
    w = _weights()
    path = tmp_path / "w.npy"
    np.save(path, w)
    s = ShardedSampler(path, 300, shard_size=8, seed=1, num_replicas=3, rank=2)
    s.set_epoch(4)
    it = iter(s)
    head = [next(it) for _ in range(37)]
    state = s.state_dict()
    assert state["yielded"] == 37 and state["epoch"] == 4 and state["weights_path"] == str(path)
    torch.save(state, tmp_path / "state.pt")
    loaded = torch.load(tmp_path / "state.pt", weights_only=True)
    fresh = ShardedSampler(path, 300, shard_size=8, seed=0, num_replicas=3, rank=2)
    fresh.load_state_dict(loaded)
    assert head + list(fresh) == s.indices(4).tolist()
    with pytest.raises(ValueError, match="shard_size=16"):
        ShardedSampler(path, 300, shard_size=16, num_replicas=3, rank=2).load_state_dict(loaded)
    with pytest.raises(ValueError, match="lacks"):
        fresh.load_state_dict({"epoch": 0})


def test_update_changes_the_draw_and_checks_the_length() -> None:
    w = _weights()
    s = ShardedSampler(w, 2000, shard_size=8)
    only = np.zeros_like(w)
    only[9] = 1.0
    s.update(only)
    assert set(s.indices(0).tolist()) == {9}
    with pytest.raises(ValueError, match="40 entries"):
        s.update(np.ones(41, dtype=np.float32))


def test_bad_weights_name_the_sample(tmp_path: Path) -> None:
    w = _weights()
    w[21] = -1.0
    with pytest.raises(ValueError, match="sample 21 has weight -1.0"):
        ShardedSampler(w, shard_size=8)
    w[21] = np.nan
    with pytest.raises(ValueError, match="sample 21"):
        ShardedSampler(w, shard_size=8)
    with pytest.raises(ValueError, match="at least one positive"):
        ShardedSampler(np.zeros(10), shard_size=3)
    with pytest.raises(TypeError, match="numpy array"):
        ShardedSampler([1.0, 2.0])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"`rank` must be in \[0, 1\], got 2"):
        ShardedSampler(np.ones(4), num_replicas=2, rank=2)
    with pytest.raises(TypeError, match=r"`shard_size` must be an integer, got bool True"):
        ShardedSampler(np.ones(4), shard_size=True)
    with pytest.raises(ValueError, match=r"`num_samples` must be >= 1, got 0"):
        ShardedSampler(np.ones(4), num_samples=0)
    with pytest.raises(TypeError, match=r"`seed` must be an integer, got str '1'"):
        ShardedSampler(np.ones(4), seed="1")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"`epoch` must be >= 0, got -2"):
        ShardedSampler(np.ones(4)).set_epoch(-2)
    with pytest.raises(ValueError, match=".npy file"):
        (tmp_path / "w.txt").write_text("1")
        ShardedSampler(tmp_path / "w.txt")


def test_multinomial_counts_are_exact_and_unbiased() -> None:
    rng = np.random.default_rng(0)
    p = np.array([0.5, 0.0, 0.25, 0.25])
    totals = np.stack([_multinomial(rng, 1000, p) for _ in range(400)])
    assert (totals.sum(1) == 1000).all() and (totals[:, 1] == 0).all()
    np.testing.assert_allclose(totals.mean(0), p * 1000, rtol=0.02)
