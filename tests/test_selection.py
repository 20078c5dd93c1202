"""hm.select_batch against a per-sample loop, its guarantees about the model, and its errors; LossHistory."""

from __future__ import annotations

import copy
from collections import deque

import pytest
import torch
import torch.nn.functional as F
from conftest import NUM_FEATURES, make_model
from torch import nn

import hardmine as hm
from hardmine.feedback.selection import LossHistory, candidate_losses, num_to_keep, select_batch

B = 24


def _batch(seed: int = 0, classes: int = 3) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(B, NUM_FEATURES, generator=g), torch.randint(0, classes, (B,), generator=g)


def _loop_losses(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The reference: an eval-mode copy of the model, one sample at a time."""
    ref = copy.deepcopy(model).eval()
    with torch.no_grad():
        return torch.stack([F.cross_entropy(ref(x[i : i + 1]), y[i : i + 1]) for i in range(len(y))])


@pytest.mark.parametrize("keep", [1, 5, B, 0.25, 0.5, 1.0])
def test_top_k_equals_a_per_sample_loop(keep) -> None:
    model = make_model(3, seed=1)
    x, y = _batch(1)
    losses = _loop_losses(model, x, y)
    k = keep if isinstance(keep, int) else -(-int(keep * 100) * B // 100)
    expected = sorted(torch.topk(losses, k).indices.tolist())
    pos, scores = select_batch(model, x, y, keep, return_scores=True)
    assert pos.dtype == torch.int64 and pos.tolist() == expected
    torch.testing.assert_close(scores, losses, rtol=1e-5, atol=1e-6)


def test_reducible_loss_equals_a_per_sample_loop() -> None:
    model = make_model(3, seed=2)
    x, y = _batch(2)
    irreducible = torch.rand(B, generator=torch.Generator().manual_seed(5)) * 2
    reducible = _loop_losses(model, x, y) - irreducible
    pos, scores = select_batch(model, x, y, 6, irreducible=irreducible, return_scores=True)
    assert pos.tolist() == sorted(torch.topk(reducible, 6).indices.tolist())
    torch.testing.assert_close(scores, reducible, rtol=1e-5, atol=1e-5)
    # the irreducible term changes the choice: the plain top 6 by loss is another set here
    assert pos.tolist() != select_batch(model, x, y, 6).tolist()


def test_custom_loss_fn_and_dict_inputs() -> None:
    class Keyword(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.inner = nn.Linear(NUM_FEATURES, 1)

        def forward(self, *, features: torch.Tensor) -> torch.Tensor:
            return self.inner(features)[:, 0]

    torch.manual_seed(0)
    model = Keyword()
    x, _ = _batch(3)
    target = torch.randn(B)
    pos = select_batch(model, {"features": x}, target, 3, loss_fn=lambda out, t: F.mse_loss(out, t, reduction="none"))
    with torch.no_grad():
        errors = (model(features=x) - target) ** 2
    assert pos.tolist() == sorted(torch.topk(errors, 3).indices.tolist())


def test_model_flags_buffers_and_gradients_untouched() -> None:
    model = make_model(3, seed=3)
    model.train()
    model[3].eval()  # a mixed state: dropout in eval, the rest in training mode
    modes = [m.training for m in model.modules()]
    buffers = {k: v.clone() for k, v in model.state_dict().items()}
    x, y = _batch(4)
    select_batch(model, x, y, 0.5)
    select_batch(model, x, y, 0.5, method="percentile")
    assert [m.training for m in model.modules()] == modes
    for k, v in model.state_dict().items():
        torch.testing.assert_close(v, buffers[k], rtol=0, atol=0, msg=k)
    assert all(p.grad is None for p in model.parameters())


def test_positions_train_normally_afterwards() -> None:
    model = make_model(3, seed=3)
    x, y = _batch(5)
    pos = select_batch(model, x, y, 4)
    loss = F.cross_entropy(model(x[pos]), y[pos])
    loss.backward()  # positions are ordinary tensors (no inference-mode tensors leak out)
    assert all(p.grad is not None for p in model.parameters())


def test_percentile_draws_as_the_reference() -> None:
    model = make_model(3, seed=6)
    x, y = _batch(6)
    losses = _loop_losses(model, x, y)
    history = LossHistory(64)
    old = torch.linspace(0, 3, 40)
    history.add(old)
    pos = select_batch(
        model, x, y, 5, method="percentile", history=history, beta=2.0, generator=torch.Generator().manual_seed(9)
    )
    kept = torch.cat([old, losses])
    cdf = torch.tensor([float((kept < v).sum()) / len(kept) for v in losses.tolist()])
    weights = cdf.clamp_min(1e-6) ** 2
    expected = torch.multinomial(weights, 5, replacement=False, generator=torch.Generator().manual_seed(9))
    assert pos.tolist() == sorted(expected.tolist())
    assert len(history) == 64


def test_percentile_favours_high_losses() -> None:
    model = make_model(3, seed=7)
    x, y = _batch(7)
    losses = _loop_losses(model, x, y)
    g = torch.Generator().manual_seed(0)
    counts = torch.zeros(B)
    for _ in range(300):
        counts[select_batch(model, x, y, 6, method="percentile", beta=3.0, generator=g)] += 1
    top, bottom = torch.topk(losses, 6).indices, torch.topk(-losses, 6).indices
    assert counts[top].mean() > 3 * counts[bottom].mean()


@pytest.mark.parametrize(
    ("keep", "error", "match"),
    [
        (0, ValueError, r"^`keep` must be in \[1, 24\], got 0$"),  # a count: at most the candidates
        (B + 1, ValueError, r"^`keep` must be in \[1, 24\], got 25$"),
        (-3, ValueError, "got -3"),
        (0.0, ValueError, r"^`keep` must be in \(0, 1\], got 0.0$"),  # a fraction of the candidates
        (1.5, ValueError, "got 1.5"),
        (float("nan"), ValueError, "^`keep` must be a finite number, got nan$"),
        ("half", TypeError, "^`keep` must be an integer count or a float fraction, got str 'half'$"),
        (True, TypeError, "`keep`"),
    ],
)
def test_keep_out_of_range(keep, error, match) -> None:
    x, y = _batch()
    with pytest.raises(error, match=match):
        select_batch(make_model(3), x, y, keep)


def test_irreducible_of_the_wrong_length() -> None:
    x, y = _batch()
    with pytest.raises(ValueError, match=r"`irreducible` to hold one loss per candidate, shape \(24,\).*\(23,\)"):
        select_batch(make_model(3), x, y, 4, irreducible=torch.zeros(B - 1))
    with pytest.raises(TypeError, match="`irreducible` to be a float tensor"):
        select_batch(make_model(3), x, y, 4, irreducible=[0.0] * B)


def test_nan_losses_name_the_candidates() -> None:
    x, y = _batch()
    x[[3, 17]] = float("nan")
    with pytest.raises(ValueError, match=r"finite losses, but candidates \[3, 17\]"):
        select_batch(make_model(3), x, y, 4)
    x, y = _batch()
    irreducible = torch.zeros(B)
    irreducible[5] = float("inf")
    with pytest.raises(ValueError, match=r"losses minus irreducible losses, but candidates \[5\]"):
        select_batch(make_model(3), x, y, 4, irreducible=irreducible)


def test_other_errors() -> None:
    x, y = _batch()
    model = make_model(3)
    with pytest.raises(ValueError, match="`method` to be one of"):
        select_batch(model, x, y, 4, method="bottom")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="`beta`"):
        select_batch(model, x, y, 4, beta=0)
    with pytest.raises(ValueError, match=r"per-sample losses of shape \(24,\).*reduction='none'"):
        select_batch(model, x, y, 4, loss_fn=F.cross_entropy)
    with pytest.raises(TypeError, match="`model` to be a torch.nn.Module"):
        candidate_losses(lambda v: v, x, y)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="at least one sample"):
        select_batch(model, x[:0], y[:0], 1)


def test_num_to_keep() -> None:
    assert [num_to_keep(f, 10) for f in (0.01, 0.1, 0.25, 1.0)] == [1, 1, 3, 10]
    assert num_to_keep(10, 10) == 10


def test_loss_history_is_a_ring_of_the_latest() -> None:
    h = LossHistory(5)
    ref: deque[float] = deque(maxlen=5)
    g = torch.Generator().manual_seed(1)
    for size in (3, 4, 1, 7, 2):
        batch = torch.rand(size, generator=g)
        h.add(batch)
        ref.extend(batch.tolist())
        assert sorted(h.values.tolist()) == sorted(ref)
        probe = torch.tensor([0.0, 0.5, 2.0])
        assert h.cdf(probe).tolist() == pytest.approx([sum(v < p for v in ref) / len(ref) for p in probe.tolist()])
    state = h.state_dict()
    again = LossHistory(5)
    again.load_state_dict(state)
    assert again.values.tolist() == h.values.tolist() and len(again) == len(h)
    with pytest.raises(ValueError, match="^`size` must be >= 1, got 0$"):
        LossHistory(0)


def test_public_names() -> None:
    assert hm.select_batch is select_batch and hm.LossHistory is LossHistory
    assert {"select_batch", "LossHistory", "ObservedScores"} <= set(hm.__all__)
