"""The radix sort behind PrioritySampler's refresh equals torch's stable descending sort."""

from __future__ import annotations

import pytest
import torch

from hardmine.core._sorting import descending_order


def _reference(keys: torch.Tensor) -> torch.Tensor:
    return torch.sort(keys, descending=True, stable=True).indices


@pytest.mark.parametrize("seed", range(5))
def test_equals_torch_stable_sort_with_ties_signs_and_infinities(seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    keys = torch.randn(5_000, generator=g) * 10.0 ** torch.randint(-30, 30, (5_000,), generator=g)
    keys[torch.randint(0, 5_000, (800,), generator=g)] = 0.0  # losses underflow to exactly 0
    keys[torch.randint(0, 5_000, (300,), generator=g)] = -0.0  # compares equal to 0.0
    keys[torch.randint(0, 5_000, (300,), generator=g)] = float("-inf")  # the excluded
    keys[torch.randint(0, 5_000, (50,), generator=g)] = float("inf")
    repeated = torch.randint(0, 5_000, (500,), generator=g)
    keys[repeated] = float(keys[repeated[0]])  # a value many times
    order = descending_order(keys)
    assert order.dtype == torch.int64
    assert torch.equal(order, _reference(keys))


def test_subnormal_and_extreme_floats_keep_their_order() -> None:
    tiny = torch.finfo(torch.float32).tiny
    keys = torch.tensor([tiny / 4, -tiny / 4, tiny, 3.4e38, -3.4e38, 1.0, -1.0, 1.0 + 1.2e-7, 0.0])
    assert descending_order(keys).tolist() == _reference(keys).tolist()


@pytest.mark.parametrize("n", [0, 1, 2])
def test_short_inputs(n: int) -> None:
    keys = torch.arange(n, dtype=torch.float32)
    assert descending_order(keys).tolist() == list(range(n))[::-1]


def test_leaves_the_input_unchanged() -> None:
    keys = torch.tensor([-0.0, 1.0, -2.0])
    before = keys.clone()
    descending_order(keys)
    assert torch.equal(keys, before) and torch.signbit(keys[0])


@pytest.mark.parametrize("keys", [torch.zeros(3, dtype=torch.float64), torch.zeros(3, dtype=torch.int32)])
def test_other_dtypes_are_refused(keys: torch.Tensor) -> None:
    with pytest.raises(TypeError, match="float32"):
        descending_order(keys)
