"""What PrioritySampler and PruningSampler share (their base, ObservingSampler): what `observe` takes and refuses,
infinite and tied losses in the ranking and the exclusion, how much a fraction excludes, and argument checks."""

from __future__ import annotations

import re

import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

import hardmine as hm
from hardmine.feedback.priority import PrioritySampler
from hardmine.feedback.pruning import PruningSampler

SAMPLERS = [PrioritySampler, PruningSampler]


def _make(cls: type, n: int, **kwargs) -> PrioritySampler | PruningSampler:
    """A sampler past its warm-up; a PruningSampler that prunes nothing, so its weights of 0 are its exclusions."""
    return cls(n, warmup_epochs=0, **({"prune": 0.0} if cls is PruningSampler else {}), **kwargs)


def _loader(n: int) -> DataLoader:
    return DataLoader(TensorDataset(torch.randn(n, 2), torch.arange(n) % 2), batch_size=3)


def _excluded(sampler: PrioritySampler | PruningSampler) -> list[int]:
    """The samples the next epoch never draws."""
    if isinstance(sampler, PrioritySampler):
        return (sampler.probabilities() == 0).nonzero()[:, 0].tolist()
    _, weights = sampler.plan(sampler.epoch)
    return (weights == 0).nonzero()[:, 0].tolist()


@pytest.mark.parametrize("cls", SAMPLERS)
@pytest.mark.parametrize("dtype", [torch.int32, torch.int16, torch.uint8, torch.int64])
def test_indices_of_any_integer_dtype_are_recorded_as_int64_ones(cls, dtype) -> None:
    losses = torch.tensor([0.5, 2.0, 1.0])
    sampler, reference = _make(cls, 6), _make(cls, 6)
    sampler.observe(torch.tensor([4, 1, 2], dtype=dtype), losses)
    reference.observe(torch.tensor([4, 1, 2]), losses)
    got, want = sampler.observed.scores(now=1), reference.observed.scores(now=1)
    assert torch.equal(got.isnan(), want.isnan()) and got[[1, 2, 4]].tolist() == [2.0, 1.0, 0.5]


@pytest.mark.parametrize("shape", [(3, 1), (1, 3), ()])
def test_indices_that_are_not_one_dimensional_are_refused_not_flattened(shape) -> None:
    """A (B, 1) or (B, K) index tensor was flattened silently; every observer now refuses it, as Dynamics does."""
    idx = torch.tensor([4, 1, 2]).reshape(shape) if shape else torch.tensor(4)
    losses = torch.ones(idx.numel())
    miner = hm.HardMiner(torch.nn.Linear(2, 2), _loader(6), rescore_every=None, indices=True)
    for observe in (_make(PrioritySampler, 6).observe, _make(PruningSampler, 6).observe, miner.observe):
        with pytest.raises(ValueError, match=rf"`indices` of shape \(B,\), but got shape {re.escape(str(shape))}"):
            observe(idx, losses)
    with pytest.raises(ValueError, match=r"`indices` of shape \(B,\)"):
        _make(PruningSampler, 6).loss_weights(idx)


@pytest.mark.parametrize("cls", SAMPLERS)
def test_nan_and_minus_inf_losses_are_refused_on_the_cpu_and_record_nothing(cls) -> None:
    sampler = _make(cls, 6)
    sampler.observe(torch.tensor([0, 1]), torch.tensor([1.0, 2.0]))
    before = sampler.observed.scores(now=1)
    for bad in (float("nan"), float("-inf")):
        with pytest.raises(ValueError, match=r"per-sample `losses` that are numbers .* dataset indices \[3\]"):
            sampler.observe(torch.tensor([2, 3]), torch.tensor([0.5, bad]))
    with pytest.raises(ValueError, match=r"finite `losses` \(logits\), but the samples with dataset indices \[5\]"):
        sampler.observe(torch.tensor([4, 5]), torch.tensor([[0.0, 1.0], [float("inf"), 0.0]]), torch.tensor([0, 1]))
    torch.testing.assert_close(sampler.observed.scores(now=1), before, equal_nan=True, rtol=0, atol=0)
    assert sampler.observed.count == 2


@pytest.mark.parametrize("cls", SAMPLERS)
def test_an_infinite_loss_is_the_largest_and_excluded_first(cls) -> None:
    losses = torch.tensor([float("inf"), 2.0, 1.0, 0.5, 0.1])
    fraction = _make(cls, 5, exclude=0.2)
    fraction.observe(torch.arange(5), losses)
    assert _excluded(fraction) == [0]  # not sample 1, the largest finite loss
    auto = _make(cls, 5, exclude="auto", num_classes=10)
    auto.observe(torch.arange(5), losses)
    assert _excluded(auto) == [0]  # inf > log(10) = 2.30
    if cls is PrioritySampler:
        ranked = PrioritySampler(5, pressure=16.0, warmup_epochs=0)
        ranked.observe(torch.arange(5), losses)
        p = ranked.probabilities()
        assert int(p.argmax()) == 0 and p[0] / p[4] == pytest.approx(16.0)


@pytest.mark.parametrize("cls", SAMPLERS)
def test_a_nan_loss_unchecked_on_an_accelerator_counts_as_the_largest(cls) -> None:
    sampler = _make(cls, 5, exclude=0.2)
    sampler.observe(torch.arange(5), torch.tensor([0.3, 2.0, 1.0, 0.5, 0.1]))
    sampler.observed._buffers["loss"][3] = float("nan")  # what an unchecked GPU observation can leave behind
    assert _excluded(sampler) == [3]


@pytest.mark.parametrize("cls", SAMPLERS)
def test_equal_losses_are_excluded_by_dataset_index(cls) -> None:
    sampler = _make(cls, 6, exclude=0.5)
    sampler.observe(torch.arange(6), torch.tensor([1.0, 3.0, 3.0, 1.0, 3.0, 3.0]))
    assert _excluded(sampler) == [1, 2, 4]  # three of the four 3.0s: the lowest indices


@pytest.mark.parametrize("cls", SAMPLERS)
def test_a_fraction_never_excludes_every_observed_sample(cls) -> None:
    sampler = _make(cls, 50, exclude=0.99)  # round(0.99 * 50) = 50: capped at 49
    sampler.observe(torch.arange(50), torch.arange(50.0))
    assert _excluded(sampler) == list(range(1, 50))
    single = _make(cls, 1, exclude=0.6)  # round(0.6) = 1 of 1
    single.observe(torch.tensor([0]), torch.tensor([1.0]))
    assert _excluded(single) == [] and len(list(single)) >= 1


@pytest.mark.parametrize("cls", SAMPLERS)
def test_a_refused_observation_leaves_the_class_count_alone(cls) -> None:
    sampler = _make(cls, 4)
    with pytest.raises(ValueError, match=r"`indices` in \[0, 4\), but got \[9\]"):
        sampler.observe(torch.tensor([0, 9]), torch.zeros(2, 3), torch.tensor([0, 1]))
    sampler.observe(torch.tensor([0, 1]), torch.zeros(2, 4), torch.tensor([0, 3]))  # 4 classes: accepted
    assert sampler.observed.num_classes == 4


@pytest.mark.parametrize("cls", SAMPLERS)
def test_logits_must_have_the_class_count_the_sampler_was_built_with(cls) -> None:
    sampler = _make(cls, 4, exclude="auto", num_classes=10)
    with pytest.raises(ValueError, match=r"num_classes=10 classes, as the sampler was built with, but got 100"):
        sampler.observe(torch.tensor([0, 1]), torch.zeros(2, 100), torch.tensor([0, 1]))
    sampler.observe(torch.tensor([0, 1]), torch.zeros(2, 10), torch.tensor([0, 1]))
    assert sampler.observed.num_classes == 10


@pytest.mark.parametrize("cls", SAMPLERS)
def test_bad_targets_and_logits_name_the_argument(cls) -> None:
    sampler = _make(cls, 4)
    with pytest.raises(TypeError, match="`targets` to be a tensor of class indices, but got <class 'list'>"):
        sampler.observe(torch.tensor([0, 1]), torch.zeros(2, 3), [0, 1])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"`losses` to be logits of shape \(1, C\) or \(1,\)"):
        sampler.observe(torch.tensor([0]), torch.tensor(1.0), torch.tensor([0]))
    with pytest.raises(ValueError, match=r"`targets` to be class indices of shape \(2,\) .* got shape \(2, 3\)"):
        sampler.observe(torch.tensor([0, 1]), torch.zeros(2, 3), torch.eye(3)[:2].long())
    with pytest.raises(TypeError, match="`losses` to be a"):
        sampler.observe(torch.tensor([0, 1]), torch.tensor([1, 2]))


@pytest.mark.parametrize("cls", SAMPLERS)
def test_seed_and_dynamics_are_checked_when_built(cls) -> None:
    bounds = r"\[-9223372036854775808, 9223372036854775807\]"
    with pytest.raises(ValueError, match=rf"`seed` must be in {bounds}, got 18446744073709551616"):
        cls(4, seed=2**64)
    with pytest.raises(TypeError, match="`dynamics` must be a hardmine.Dynamics or None, got str"):
        cls(4, dynamics="x")  # type: ignore[arg-type]
    assert cls(4, seed=-(2**63), dynamics=hm.Dynamics(4)).seed == -(2**63)


def test_pruning_sampler_checks_shuffle_and_the_planned_epoch() -> None:
    with pytest.raises(TypeError, match="`shuffle` must be"):
        PruningSampler(4, shuffle="no")  # type: ignore[arg-type]
    sampler = PruningSampler(4)
    with pytest.raises(TypeError, match="`epoch` must be an integer"):
        sampler.plan(1.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="`epoch` must be >= 0, got -1"):
        sampler.plan(-1)
