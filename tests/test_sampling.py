import math
import pickle

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from reference_sampling import reference_padded_share, reference_pair_probability
from torch.utils.data import DataLoader, TensorDataset

import hardmine.core.distributed
import hardmine.feedback.sampling
from hardmine.feedback.sampling import HardSampler, check_sampling_weights, cumulative_weights

MODES = ["cover", "replacement", "no_replacement"]


@pytest.fixture
def small_chunks(monkeypatch):
    """Chunks of 7 positions, so that a few dozen draws cross several chunk boundaries."""
    monkeypatch.setattr(hardmine.feedback.sampling, "CHUNK", 7)


def skewed(n: int, *, zeros: int = 0, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    w = torch.rand(n, generator=g, dtype=torch.float64) ** 3
    w[:zeros] = 0.0
    return w


def max_binomial_z(counts: torch.Tensor, probs: torch.Tensor, draws: int) -> float:
    """Largest |count - draws * p| in binomial standard deviations over all categories with p > 0."""
    expected = draws * probs
    std = torch.sqrt(draws * probs * (1 - probs))
    pos = probs > 0
    return float(((counts[pos] - expected[pos]).abs() / std[pos]).max())


# ------------------------------------------------------------------------------------------------ running sum
@pytest.mark.parametrize("block", [7, 1 << 22])
def test_cumulative_weights_matches_a_loop(block, monkeypatch):
    monkeypatch.setattr(hardmine.feedback.sampling, "_CUMSUM_BLOCK", block)
    w = skewed(100, zeros=7).tolist()
    running, expected = 0.0, []
    for x in w:
        running += x
        expected.append(running)
    torch.testing.assert_close(
        cumulative_weights(torch.tensor(w, dtype=torch.float64)), torch.tensor(expected, dtype=torch.float64)
    )


@settings(deadline=None, max_examples=30)
@given(
    st.lists(st.one_of(st.just(0.0), st.floats(1e-6, 1e6)), min_size=1, max_size=40).filter(lambda v: sum(v) > 0),
    st.integers(0, 2**31),
)
def test_with_replacement_draws_only_positive_weights(w, seed):
    got = HardSampler(w, 500, replacement=True, seed=seed).indices(0)
    assert got.numel() == 500
    assert all(w[i] > 0 for i in set(got.tolist()))


@pytest.mark.parametrize("w", [[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, 1e-30, 0.0]], ids=str)
def test_single_positive_weight_is_always_drawn(w):
    target = max(range(3), key=lambda i: w[i])
    assert set(HardSampler(w, 1000, replacement=True).indices(0).tolist()) == {target}


# ------------------------------------------------------------------------------------------------ frequencies
def test_replacement_frequencies_match_weights():
    w = skewed(50, zeros=3)
    draws = 200_000
    s = HardSampler(w, draws, replacement=True, seed=1)
    counts = torch.bincount(s.indices(0), minlength=50).double()
    # Each count is Binomial(draws, p_i); over 47 categories a 5-sigma miss has probability < 3e-5.
    assert max_binomial_z(counts, w / w.sum(), draws) < 5.0
    assert counts[:3].sum() == 0


def test_cover_frequencies_every_sample_once_plus_weighted_extras():
    n, extra = 40, 100_000
    w = skewed(n, zeros=2)
    s = HardSampler(w, n + extra, mode="cover", seed=2)
    counts = torch.bincount(s.indices(0), minlength=n).double()
    assert bool((counts >= 1).all())
    assert int(counts.sum()) == n + extra
    assert max_binomial_z(counts - 1, w / w.sum(), extra) < 5.0


def test_no_replacement_pair_frequencies():
    w = [1.0, 2.0, 3.0, 0.5]
    s = HardSampler(torch.tensor(w), 2, replacement=False, seed=3)
    epochs = 6000
    draws = torch.stack([s.indices(e) for e in range(epochs)])
    pair_id = draws[:, 0] * 4 + draws[:, 1]
    counts = torch.bincount(pair_id, minlength=16).double()
    probs = torch.tensor(
        [reference_pair_probability(w, i, j) if i != j else 0.0 for i in range(4) for j in range(4)],
        dtype=torch.float64,
    )
    assert max_binomial_z(counts, probs, epochs) < 5.0
    assert counts[probs == 0].sum() == 0


# ------------------------------------------------------------------------------------------------ zero weights
def test_no_replacement_never_returns_zero_weight():
    w = skewed(300, zeros=120)
    s = HardSampler(w, replacement=False, seed=0)
    assert len(s) == 180  # default: the number of positive weights
    for epoch in range(5):
        got = s.indices(epoch)
        assert sorted(got.tolist()) == list(range(120, 300))


def test_no_replacement_tiny_float64_weights_keep_their_ratios():
    w = torch.tensor([1e-60, 9e-60, 0.0], dtype=torch.float64)
    firsts = torch.stack([HardSampler(w, 1, replacement=False, seed=0).indices(e) for e in range(2000)])
    counts = torch.bincount(firsts[:, 0], minlength=3).double()
    assert counts[2] == 0
    assert max_binomial_z(counts, torch.tensor([0.1, 0.9, 0.0], dtype=torch.float64), 2000) < 5.0


def test_no_replacement_more_draws_than_positive_weights_raises():
    with pytest.raises(ValueError, match="positive weights"):
        HardSampler(skewed(10, zeros=4), 7, replacement=False)


def test_replacement_and_cover_extras_never_pick_zero_weight():
    w = skewed(200, zeros=150)
    got = HardSampler(w, 20_000, replacement=True).indices(0)
    assert int(got.min()) >= 150
    cover = HardSampler(w, 20_000, mode="cover").indices(0)
    counts = torch.bincount(cover, minlength=200)
    assert bool((counts[:150] == 1).all())  # a zero-weight sample only gets its one covering visit


# ------------------------------------------------------------------------------------------------ cover mode
@pytest.mark.parametrize("n", [1, 5, 64, 1000])
def test_cover_visits_every_sample(n, small_chunks):
    s = HardSampler(skewed(n, zeros=n // 3), mode="cover", seed=5)
    assert len(s) == 2 * n  # default num_samples
    for epoch in range(3):
        got = s.indices(epoch)
        assert set(got.tolist()) == set(range(n))
        assert got.numel() == 2 * n


def test_cover_with_exactly_n_draws_is_a_permutation(small_chunks):
    got = HardSampler(skewed(50), 50, mode="cover", seed=0).indices(0)
    assert sorted(got.tolist()) == list(range(50))


def test_cover_needs_num_samples_at_least_n():
    with pytest.raises(ValueError, match="at least the number of samples N=10"):
        HardSampler(torch.ones(10), 9, mode="cover")


# ------------------------------------------------------------------------------------------------ determinism
@pytest.mark.parametrize("mode", MODES)
def test_determinism_per_seed_and_epoch(mode, small_chunks):
    w = skewed(100, zeros=10)
    a = HardSampler(w, 90, mode=mode, seed=7) if mode != "cover" else HardSampler(w, 150, mode=mode, seed=7)
    b = pickle.loads(pickle.dumps(a))
    assert torch.equal(a.indices(3), b.indices(3))
    assert not torch.equal(a.indices(3), a.indices(4))
    c = HardSampler(w, a.num_samples, mode=mode, seed=8)
    assert not torch.equal(a.indices(3), c.indices(3))
    a.set_epoch(3)
    assert list(a) == a.indices(3).tolist()


def test_iteration_advances_epoch_without_set_epoch():
    s = HardSampler(torch.ones(100), 100, replacement=True, seed=0)
    first, second = list(s), list(s)
    assert first == s.indices(0).tolist() and second == s.indices(1).tolist()
    assert first != second
    assert s.epoch == 2


def test_global_rng_untouched():
    state = torch.get_rng_state()
    s = HardSampler(skewed(100), seed=0)
    list(s)
    s.indices(5)
    assert torch.equal(state, torch.get_rng_state())


# ------------------------------------------------------------------------------------------------ distributed
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(("num_samples", "num_replicas"), [(30, 1), (30, 4), (31, 4), (33, 8), (30, 7), (30, 30)])
def test_distributed_shares_are_disjoint_equal_and_cover_the_draw(mode, num_samples, num_replicas, small_chunks):
    w = skewed({"cover": 20, "replacement": 30, "no_replacement": 40}[mode], zeros=2)
    single = HardSampler(w, num_samples, mode=mode, seed=11, num_replicas=1, rank=0)
    global_draw = single.indices(2).tolist()
    shares = []
    for rank in range(num_replicas):
        s = HardSampler(w, num_samples, mode=mode, seed=11, num_replicas=num_replicas, rank=rank)
        assert len(s) == math.ceil(num_samples / num_replicas)
        got = s.indices(2).tolist()
        assert got == reference_padded_share(global_draw, num_replicas, rank)
        s.set_epoch(2)
        assert list(s) == got
        shares.append(got)
    assert len({len(x) for x in shares}) == 1
    # Interleaving the shares back gives the padded global draw: disjoint positions that cover every draw.
    merged = [shares[r][t] for t in range(len(shares[0])) for r in range(num_replicas)]
    assert merged[:num_samples] == global_draw
    assert merged[num_samples:] == (global_draw * num_replicas)[: len(merged) - num_samples]


def test_more_ranks_than_draws_pads_by_wrapping(small_chunks):
    w = torch.ones(3)
    got = [HardSampler(w, 2, replacement=False, seed=0, num_replicas=5, rank=r).indices(0).tolist() for r in range(5)]
    single = HardSampler(w, 2, replacement=False, seed=0).indices(0).tolist()
    assert [g[0] for g in got] == [single[0], single[1], single[0], single[1], single[0]]


# ------------------------------------------------------------------------------------------------ resume
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("stop", [0, 1, 6, 7, 8, 20, 45])
@pytest.mark.parametrize(("num_replicas", "rank"), [(1, 0), (3, 2)])
def test_state_dict_resumes_the_rest_of_the_epoch(mode, stop, num_replicas, rank, small_chunks):
    w = skewed(60, zeros=5)
    kwargs = dict(mode=mode, seed=4, num_replicas=num_replicas, rank=rank)
    num_samples = 135 if mode != "no_replacement" else 55
    s = HardSampler(w, num_samples, **kwargs)
    s.set_epoch(6)
    full = s.indices(6).tolist()
    stop = min(stop, len(full))
    it = iter(s)
    head = [next(it) for _ in range(stop)]
    state = s.state_dict()
    assert state["epoch"] == 6 and state["yielded"] == stop and state["seed"] == 4
    fresh = HardSampler(torch.ones(60), num_samples, **{**kwargs, "seed": 0})
    fresh.load_state_dict(state)
    rest = list(fresh)
    assert head + rest == full
    assert fresh.epoch == 7 and fresh.state_dict()["yielded"] == 0


def test_state_dict_after_full_pass_starts_next_epoch():
    s = HardSampler(torch.ones(10), seed=1)
    list(s)
    state = s.state_dict()
    assert (state["epoch"], state["yielded"]) == (1, 0)
    other = HardSampler(torch.ones(10), seed=1)
    other.load_state_dict(state)
    assert list(other) == s.indices(1).tolist()


def test_load_state_dict_rejects_other_settings():
    s = HardSampler(torch.ones(10), 20)
    with pytest.raises(ValueError, match="num_samples=20"):
        s.load_state_dict({**s.state_dict(), "num_samples": 30})
    with pytest.raises(ValueError, match="lacks"):
        s.load_state_dict({"epoch": 0})
    with pytest.raises(ValueError, match="yielded"):
        s.load_state_dict({**s.state_dict(), "yielded": 21})


# ------------------------------------------------------------------------------------------------ update
@pytest.mark.parametrize("mode", MODES)
def test_update_keeps_len_and_applies_from_next_pass(mode):
    w = torch.ones(20)
    s = HardSampler(w, 30 if mode == "cover" else 15, mode=mode, seed=0)
    before = len(s)
    new = torch.zeros(20)
    new[5:] = 1.0
    it = iter(s)
    first = next(it)
    s.update(new)
    rest = list(it)  # the pass under way keeps its weights
    assert [first, *rest] == HardSampler(w, s.num_samples, mode=mode, seed=0).indices(0).tolist()
    assert len(s) == before
    if mode != "cover":
        assert set(s.indices(1).tolist()) <= set(range(5, 20))


def test_update_rejects_bad_weights():
    s = HardSampler(torch.ones(10), 8, replacement=False)
    with pytest.raises(ValueError, match="10 entries"):
        s.update(torch.ones(11))
    with pytest.raises(ValueError, match="finite"):
        s.update(torch.tensor([float("nan")] + [1.0] * 9))
    with pytest.raises(ValueError, match="positive weights"):
        s.update(torch.tensor([1.0] * 5 + [0.0] * 5))


# ------------------------------------------------------------------------------------------------ large
def test_more_than_2_pow_24_samples():
    n = 2**24 + 3
    w = torch.zeros(n)
    w[[0, n - 2, n - 1]] = torch.tensor([1.0, 2.0, 1.0])
    s = HardSampler(w, 4000, replacement=True, seed=0)
    got = s.indices(0)
    assert got.numel() == 4000 and set(got.tolist()) == {0, n - 2, n - 1}
    counts = torch.bincount(got, minlength=n)[[0, n - 2, n - 1]].double()
    assert max_binomial_z(counts, torch.tensor([0.25, 0.5, 0.25], dtype=torch.float64), 4000) < 5.0
    with pytest.raises(RuntimeError):  # what WeightedRandomSampler rests on
        torch.multinomial(w, 10, replacement=True)


# ------------------------------------------------------------------------------------------------ integration
def test_drop_in_for_weighted_random_sampler_in_a_dataloader():
    data = TensorDataset(torch.arange(100))
    s = HardSampler(skewed(100), 64, True, seed=0)
    loader = DataLoader(data, sampler=s, batch_size=16)
    s.set_epoch(1)
    got = torch.cat([batch[0] for batch in loader])
    assert torch.equal(got, s.indices(1))
    assert len(loader) == 4


def test_accepts_a_sequence_like_weighted_random_sampler():
    s = HardSampler([0.1, 0.9, 0.4, 0.4, 0.2], 3, replacement=False)
    assert len(s) == 3 and len(set(s)) == 3


# ------------------------------------------------------------------------------------------------ errors
@pytest.mark.parametrize(
    ("weights", "error", "match"),
    [
        (torch.ones(2, 3), ValueError, r"shape \(N,\)"),
        (torch.ones(0), ValueError, "at least one weight"),
        (torch.tensor([1.0, float("nan")]), ValueError, r"finite, but samples \[1\]"),
        (torch.tensor([1.0, float("inf")]), ValueError, "finite"),
        (torch.tensor([1.0, -0.5]), ValueError, r"non-negative, but samples \[1\]"),
        (torch.zeros(4), ValueError, "all are zero"),
        (torch.tensor([True, False]), TypeError, "real-valued"),
        ("abc", TypeError, "sequence of numbers"),
    ],
    ids=str,
)
def test_bad_weights_raise(weights, error, match):
    with pytest.raises(error, match=match):
        HardSampler(weights)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        (
            {"mode": "greedy"},
            ValueError,
            "`mode` must be one of 'cover', 'replacement', 'no_replacement', got 'greedy'",
        ),
        ({"mode": "cover", "replacement": False}, ValueError, "agree"),
        ({"replacement": 1}, TypeError, "`replacement` must be True or False, got int 1"),
        ({"num_samples": 0}, ValueError, "`num_samples` must be >= 1, got 0"),
        ({"num_samples": 2.5}, TypeError, "`num_samples` must be an integer, got float 2.5"),
        ({"num_samples": True}, TypeError, "`num_samples` must be an integer, got bool True"),
        ({"seed": 1.5}, TypeError, "`seed` must be an integer, got float 1.5"),
        ({"num_replicas": 0}, ValueError, "`num_replicas` must be >= 1, got 0"),
        ({"num_replicas": 2, "rank": 2}, ValueError, r"`rank` must be <= 1, got 2"),
        ({"num_replicas": 2, "rank": -1}, ValueError, "`rank` must be >= 0, got -1"),
    ],
    ids=str,
)
def test_bad_options_raise(kwargs, error, match):
    with pytest.raises(error, match=match):
        HardSampler(torch.ones(10), **{"num_samples": 20, **kwargs})


def test_set_epoch_rejects_negative():
    with pytest.raises(ValueError, match="`epoch` must be >= 0, got -1"):
        HardSampler(torch.ones(3)).set_epoch(-1)
    with pytest.raises(TypeError, match="`epoch` must be an integer, got bool True"):
        HardSampler(torch.ones(3)).set_epoch(True)


def test_check_sampling_weights_converts_ints_to_float64():
    torch.testing.assert_close(
        check_sampling_weights(torch.tensor([1, 2])), torch.tensor([1.0, 2.0], dtype=torch.float64)
    )


# ------------------------------------------------------------------------------------------------ WeightedRandomSampler
def test_same_positional_arguments_as_weighted_random_sampler():
    # The case: a weight of 100 against 99 ones. WeightedRandomSampler(w, 100) draws sample 0 about
    # 100 * 100 / 199 = 50 times; so must HardSampler(w, 100), with the same arguments.
    w = torch.ones(100, dtype=torch.float64)
    w[0] = 100.0
    draws = 200_000
    ours = torch.bincount(HardSampler(w, draws, True, torch.Generator().manual_seed(0)).indices(0), minlength=100)
    wrs = torch.utils.data.WeightedRandomSampler(w, draws, True, torch.Generator().manual_seed(0))
    theirs = torch.bincount(torch.tensor(list(wrs)), minlength=100)
    p = w / w.sum()
    assert max_binomial_z(ours.double(), p, draws) < 5
    assert max_binomial_z(theirs.double(), p, draws) < 5
    assert abs(ours[0] / draws - 100 / 199) < 0.01
    assert len(HardSampler(w, 100)) == len(torch.utils.data.WeightedRandomSampler(w, 100)) == 100


def test_defaults_are_replacement_and_n_draws():
    s = HardSampler(torch.ones(30))
    assert (s.mode, s.num_samples, len(s)) == ("replacement", 30, 30)
    assert HardSampler(torch.ones(30), mode="cover").num_samples == 60
    assert HardSampler(torch.ones(30), replacement=False).num_samples == 30


def test_generator_gives_the_seed_and_not_with_seed():
    a = HardSampler(torch.ones(50), 20, True, torch.Generator().manual_seed(5))
    b = HardSampler(torch.ones(50), 20, True, torch.Generator().manual_seed(5))
    c = HardSampler(torch.ones(50), 20, True, torch.Generator().manual_seed(6))
    assert a.seed == b.seed != c.seed
    assert a.indices(0).tolist() == b.indices(0).tolist() != c.indices(0).tolist()
    with pytest.raises(ValueError, match="`generator` and `seed`"):
        HardSampler(torch.ones(5), 5, True, torch.Generator(), seed=1)
    with pytest.raises(TypeError, match="`generator`"):
        HardSampler(torch.ones(5), 5, True, 3)


def test_replacement_none_is_deprecated_cover_mode():
    with pytest.warns(DeprecationWarning, match="mode='cover'"):
        s = HardSampler(torch.ones(10), 15, None)
    assert s.mode == "cover"


# ------------------------------------------------------------------------------------------------ ranks at each pass
def test_rank_and_world_size_are_read_when_a_pass_starts(monkeypatch):
    w = skewed(40)
    s = HardSampler(w, 40, seed=3)  # built in "one process"
    assert (s.num_replicas, s.rank, len(s)) == (1, 0, 40)
    full = s.indices(0)
    monkeypatch.setattr(hardmine.core.distributed, "get_world_size", lambda: 4)
    monkeypatch.setattr(hardmine.core.distributed, "get_rank", lambda: 2)
    assert (s.num_replicas, s.rank, len(s)) == (4, 2, 10)
    assert list(s) == full[2::4].tolist()  # the process group came up after construction: rank 2's share
    pinned = HardSampler(w, 40, seed=3, num_replicas=1)  # a framework shards: the whole draw on every rank
    assert (pinned.num_replicas, pinned.rank, len(pinned)) == (1, 0, 40)
    assert list(pinned) == full.tolist()


def _iterate_from(module: str, sampler: HardSampler) -> list[int]:
    """Iterate ``sampler`` from a function that lives in module ``module`` (as a framework's wrapper would)."""
    namespace: dict = {"__name__": module}
    exec("def consume(s):\n    return list(s)\n", namespace)
    return namespace["consume"](sampler)


@pytest.mark.parametrize("module", ["accelerate.data_loader", "lightning.fabric.utilities.distributed"])
def test_double_sharding_warns(monkeypatch, module):
    monkeypatch.setattr(hardmine.core.distributed, "get_world_size", lambda: 2)
    monkeypatch.setattr(hardmine.core.distributed, "get_rank", lambda: 0)
    s = HardSampler(torch.ones(10), 10)
    with pytest.warns(hardmine.feedback.sampling.DoubleShardingWarning, match="num_replicas=1"):
        assert len(_iterate_from(module, s)) == 5
    pinned = HardSampler(torch.ones(10), 10, num_replicas=1)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert len(_iterate_from(module, pinned)) == 10  # no sharding of its own: nothing to warn about
        assert len(_iterate_from("my_training_script", s)) == 5


def test_double_sharding_warns_under_a_distributed_sampler(monkeypatch):
    monkeypatch.setattr(hardmine.core.distributed, "get_world_size", lambda: 2)
    monkeypatch.setattr(hardmine.core.distributed, "get_rank", lambda: 1)
    inner = HardSampler(torch.ones(10), 10)

    class Wrapper(torch.utils.data.DistributedSampler):
        def __iter__(self):
            return iter(list(inner))

    wrapper = Wrapper(list(range(5)), num_replicas=2, rank=1)
    with pytest.warns(hardmine.feedback.sampling.DoubleShardingWarning, match="DistributedSampler"):
        list(wrapper)


# --------------------------------------------------------------------------- cut-short passes and inputs


def test_a_pass_cut_short_then_a_new_epoch_saves_no_stale_position() -> None:
    sampler = HardSampler(torch.ones(10), seed=3)
    it = iter(sampler)
    _ = [next(it) for _ in range(4)]  # epoch 0 stopped after 4 (limit_train_batches, max_steps, a peek)
    sampler.set_epoch(1)
    state = sampler.state_dict()
    assert state["epoch"] == 1 and state["yielded"] == 0
    restored = HardSampler(torch.ones(10), seed=3)
    restored.load_state_dict(state)
    assert list(restored) == list(sampler) and len(list(HardSampler(torch.ones(10), seed=3))) == 10


def test_weights_that_require_grad_are_taken_detached() -> None:
    w = torch.tensor([1.0, 2.0, 3.0], requires_grad=True)
    for mode in ("replacement", "cover"):
        drawn = list(HardSampler(w, num_samples=6 if mode == "cover" else 3, mode=mode, seed=0))
        assert len(drawn) in (3, 6) and set(drawn) <= {0, 1, 2}
    assert HardSampler(w).weights.requires_grad is False


def test_indices_checks_its_epoch() -> None:
    sampler = HardSampler(torch.ones(4))
    with pytest.raises(ValueError, match="`epoch` must be >= 0, got -1"):
        sampler.indices(-1)
    with pytest.raises(TypeError, match="`epoch` must be an integer"):
        sampler.indices(1.5)  # type: ignore[arg-type]


def test_share_batches_count_the_share_exactly() -> None:
    from hardmine.feedback.batching import ShareBatchSampler

    for share, batch, want in ((0.07, 100, 7), (0.14, 50, 7), (0.55, 100, 55), (0.25, 8, 2), (0.3, 8, 3)):
        s = ShareBatchSampler(torch.ones(200), batch_size=batch, num_batches=1, hard=torch.arange(200) < 20,
                              hard_share=share)  # fmt: skip
        assert [k for _part, k in s._parts()][0] == want, (share, batch)  # math.ceil(0.07 * 100) is 8


def test_share_batches_refuse_bad_inputs_by_name() -> None:
    from hardmine.feedback.batching import ShareBatchSampler

    ok = {"batch_size": 4, "num_batches": 2}
    with pytest.raises(ValueError, match=r"`weights` to have shape \(N,\), but got shape \(2, 3\)"):
        ShareBatchSampler(torch.ones(2, 3), **ok)
    with pytest.raises(TypeError, match="`hard` to be a bool tensor \\(N,\\) or None, but got list"):
        ShareBatchSampler(torch.ones(4), hard=[True, False, True, False], hard_share=0.5, **ok)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="`positive` to be a bool tensor \\(N,\\) or None, but got torch.int64"):
        ShareBatchSampler(torch.ones(4), positive=torch.tensor([1, 0, 1, 0]), positive_share=0.5, **ok)
    with pytest.raises(ValueError, match="`seed` must be in"):
        ShareBatchSampler(torch.ones(4), seed=2**62, **ok)
    s = ShareBatchSampler([1.0, 2.0, 3.0, 4.0], **ok)  # a sequence of numbers, as HardSampler takes
    with pytest.raises(TypeError, match="`epoch` must be an integer"):
        s.set_epoch(1.7)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="`epoch` must be >= 0"):
        s.set_epoch(-1)


def test_importance_weights_refuse_what_they_cannot_correct() -> None:
    from hardmine.feedback.apply_modes import importance_weights

    for bad, match in (([0.0, 0.0], "at least one positive weight"), ([1.0, -1.0, 2.0], "non-negative"),
                       ([float("nan"), 1.0], "finite")):  # fmt: skip
        with pytest.raises(ValueError, match=match):
            importance_weights(torch.tensor(bad))
    with pytest.raises(ValueError, match=r"`expected_draws` to be finite non-negative counts of shape \(3,\)"):
        importance_weights(torch.ones(3), expected_draws=torch.ones(5), num_draws=3)
    with pytest.raises(TypeError, match="`num_draws` must be an integer"):
        importance_weights(torch.ones(3), expected_draws=torch.ones(3), num_draws=2.5)  # type: ignore[arg-type]
    torch.testing.assert_close(importance_weights([1.0, 1.0, 2.0]), torch.tensor([4, 4, 2], dtype=torch.float64) / 3)


def test_weights_at_the_ends_of_float64_keep_their_ratios() -> None:
    for weights in ([1e308, 1e308], [1e-321, 3e-321], [5e307, 1.5e308]):
        counts = torch.bincount(torch.tensor(list(HardSampler(weights, num_samples=20_000, seed=0))), minlength=2)
        share = 1.0 / (1.0 + weights[0] / weights[1])  # the second one's probability, without summing the two
        assert abs(float(counts[1]) / 20_000 - share) < 0.015, (weights, counts.tolist())  # was 1.0 or 0.0
    scaled = check_sampling_weights([1e-321, 3e-321])
    assert float(scaled[0] / scaled[1]) == pytest.approx(1e-321 / 3e-321, rel=1e-12) and float(scaled.max()) >= 0.5


def test_a_floor_below_the_dtypes_range_keeps_weights_positive() -> None:
    import hardmine as hm

    w32 = hm.sample_weights(torch.tensor([0.0, 0.5, 1.0]), floor=1e-50)
    w16 = hm.sample_weights(torch.tensor([0.0, 0.5, 1.0]), floor=0, max_ratio=1e9, dtype=torch.float16)
    assert bool((w32 > 0).all()) and float(w32[0]) == torch.finfo(torch.float32).tiny
    assert bool((w16 > 0).all()) and float(w16[0]) == torch.finfo(torch.float16).tiny
