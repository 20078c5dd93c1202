"""hm.select_batch against a per-sample loop, its guarantees about the model, and its errors; LossHistory."""

from __future__ import annotations

import copy
import math
from collections import deque

import numpy as np
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


def _rank(kept: list[float], value: float) -> float:
    """scipy.stats.percentileofscore(kept, value, kind="rank") / 100, by its definition: the mean 1-based rank of the
    kept values equal to ``value``, over ``len(kept)``; the fraction of kept values below it when none is equal."""
    ranks = [i + 1 for i, v in enumerate(sorted(kept)) if v == value]
    if ranks:
        return sum(ranks) / len(ranks) / len(kept)
    return sum(v < value for v in kept) / len(kept)


def _weights_of_the_draw(monkeypatch: pytest.MonkeyPatch) -> list[torch.Tensor]:
    """Record the weights select_batch hands to torch.multinomial (then draw as usual)."""
    seen: list[torch.Tensor] = []
    draw = torch.multinomial

    def spy(weights: torch.Tensor, *args, **kwargs):  # type: ignore[no-untyped-def]
        seen.append(weights.clone())
        return draw(weights, *args, **kwargs)

    monkeypatch.setattr(torch, "multinomial", spy)
    return seen


class _Fixed(nn.Module):
    """A model whose output is fixed (whatever the input), to choose the losses exactly."""

    def __init__(self, out: torch.Tensor) -> None:
        super().__init__()
        self.out = out
        self.unused = nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out


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


@pytest.mark.parametrize("old", [None, [], [0.0, 1.0, 1.0, 2.5, 3.0]], ids=["no-history", "fresh", "history"])
def test_percentile_weights_and_draw_equal_the_reference(monkeypatch, old) -> None:
    model = make_model(3, seed=6)
    x, y = _batch(6)
    losses = _loop_losses(model, x, y)
    history = None if old is None else LossHistory(64)
    if old:
        history.add(torch.tensor(old))
    seen = _weights_of_the_draw(monkeypatch)
    pos = select_batch(
        model, x, y, 5, method="percentile", history=history, beta=2.0, generator=torch.Generator().manual_seed(9)
    )
    # selective backprop's code: add the losses to the history, then percentileofscore(kind="rank"), ** beta, floor
    kept = (old or []) + losses.tolist()
    weights = torch.tensor([max(_rank(kept, v) ** 2, 1e-6) for v in losses.tolist()])
    torch.testing.assert_close(seen[0], weights, rtol=1e-5, atol=1e-7)
    assert float(seen[0][losses.argmin()]) > 0.001  # counted with "<=": the lowest loss of a fresh batch gets (1/n)**2
    expected = torch.multinomial(seen[0], 5, replacement=False, generator=torch.Generator().manual_seed(9))
    assert pos.tolist() == sorted(expected.tolist())
    if history is not None:
        assert len(history) == len(kept)


@pytest.mark.parametrize("tied", [False, True])
def test_percentile_weights_are_the_same_with_and_without_a_history(monkeypatch, tied) -> None:
    model = make_model(3, seed=8)
    if tied:  # every loss log(3): tied ranks, (n + 1) / (2 n) each
        for p in model.parameters():
            nn.init.zeros_(p)
    x, y = _batch(8)
    seen = _weights_of_the_draw(monkeypatch)
    for history in (None, LossHistory(B), LossHistory(1000)):
        a = select_batch(
            model, x, y, 6, method="percentile", history=history, generator=torch.Generator().manual_seed(3)
        )
        assert a.tolist() == sorted(torch.multinomial(seen[-1], 6, generator=torch.Generator().manual_seed(3)).tolist())
    assert torch.equal(seen[0], seen[1]) and torch.equal(seen[0], seen[2])
    if tied:
        assert torch.equal(seen[0], torch.full((B,), (B + 1) / (2 * B)))
    else:
        ranks = torch.empty(B)
        ranks[_loop_losses(model, x, y).argsort()] = torch.arange(1, B + 1, dtype=torch.float32)
        torch.testing.assert_close(seen[0], ranks / B)


@pytest.mark.parametrize("beta", [8.0, 50.0, 1000.0])
def test_a_large_beta_draws_a_valid_sample(monkeypatch, beta) -> None:
    model = make_model(3, seed=9)
    for p in model.parameters():  # all losses tied: the old floor before the power gave (1e-6) ** beta = 0
        nn.init.zeros_(p)
    x, y = _batch(9)
    seen = _weights_of_the_draw(monkeypatch)
    history = LossHistory(256)
    history.add(torch.full((100,), 5.0))  # the batch's losses are all below the history's
    pos = select_batch(model, x, y, 6, method="percentile", history=history, beta=beta)
    assert pos.numel() == 6 and pos.unique().numel() == 6
    want = max(((B + 1) / 2 / (100 + B)) ** beta, 1e-6)  # the floor after the power
    torch.testing.assert_close(seen[0], torch.full((B,), want))
    # distinct losses: rank ** beta, floored after the power (at beta=1000 all but the largest sit on the floor)
    model = make_model(3, seed=9)
    losses = _loop_losses(model, x, y).tolist()
    pos = select_batch(model, x, y, 3, method="percentile", beta=beta)
    assert pos.unique().numel() == 3
    want_distinct = torch.tensor([max(_rank(losses, v) ** beta, 1e-6) for v in losses])
    torch.testing.assert_close(seen[1], want_distinct, rtol=1e-4, atol=0)
    assert float(seen[1].max()) == 1.0 and float(seen[1].min()) == pytest.approx(1e-6)


def test_unchecked_nan_counts_as_the_largest_loss(monkeypatch) -> None:
    model = make_model(3, seed=10)
    x, y = _batch(10)
    x[[4, 11]] = float("nan")
    pos, scores = select_batch(model, x, y, 2, check_finite=False, return_scores=True)
    assert pos.tolist() == [4, 11] and bool(scores[[4, 11]].isnan().all())  # the scores keep the NaN
    seen = _weights_of_the_draw(monkeypatch)
    history = LossHistory(64)
    select_batch(model, x, y, 2, method="percentile", history=history, check_finite=False)
    select_batch(model, x, y, 2, method="percentile", check_finite=False)
    finite = scores[~scores.isnan()].tolist()
    kept = finite + [math.inf, math.inf]
    want = torch.tensor([_rank(kept, math.inf if math.isnan(v) else v) for v in scores.tolist()])
    torch.testing.assert_close(seen[0], want)
    torch.testing.assert_close(seen[1], want)  # the same without a history
    assert float(seen[0][4]) == float(seen[0].max())
    assert not bool(history.values.isnan().any()) and sorted(history.values.tolist())[-2:] == [math.inf, math.inf]


def test_float64_losses_are_ranked_in_float64() -> None:
    y = torch.tensor([0, 0])
    out = torch.tensor([[0.0, 1.0], [0.0, 1.0 + 1e-12]], dtype=torch.float64)  # the same loss in float32
    ref = F.cross_entropy(out, y, reduction="none")
    pos, scores = select_batch(_Fixed(out), torch.zeros(2, 1), y, 1, return_scores=True)
    assert pos.tolist() == [1] and scores.dtype == torch.float64 and torch.equal(scores, ref)
    # RHO-LOSS: the difference is taken in float64, before any rounding
    out = torch.tensor([[0.0, 20.0], [0.0, 20.0]], dtype=torch.float64)
    loss = F.cross_entropy(out, y, reduction="none")
    irreducible = loss - torch.tensor([5e-8, 1e-7], dtype=torch.float64)
    pos, scores = select_batch(_Fixed(out), torch.zeros(2, 1), y, 1, irreducible=irreducible, return_scores=True)
    assert pos.tolist() == [1] and torch.equal(scores, loss - irreducible)
    # float32 losses with float64 irreducible losses: float64 scores; half-precision losses: float32
    model = make_model(3, seed=2)
    x, y = _batch(2)
    irr = torch.rand(B, dtype=torch.float64)
    _, scores = select_batch(model, x, y, 3, irreducible=irr, return_scores=True)
    assert scores.dtype == torch.float64
    torch.testing.assert_close(scores, _loop_losses(model, x, y).double() - irr, rtol=1e-5, atol=1e-6)
    half = lambda o, t: F.cross_entropy(o, t, reduction="none").half()  # noqa: E731
    assert select_batch(model, x, y, 3, loss_fn=half, return_scores=True)[1].dtype == torch.float32


def test_float64_scores_in_a_history() -> None:
    h = LossHistory(8)
    h.add(torch.tensor([1.0, 2.0]))
    assert h.values.dtype == torch.float32
    h.add(torch.tensor([1.0 + 1e-12, float("nan")], dtype=torch.float64))
    assert h.values.dtype == torch.float64 and h.values.tolist() == [1.0, 2.0, 1.0 + 1e-12, math.inf]
    assert h.cdf(torch.tensor([1.0 + 1e-12], dtype=torch.float64)).tolist() == [0.5]  # ranked 2nd of 4
    again = LossHistory(8)
    again.load_state_dict(h.state_dict())
    assert again.values.dtype == torch.float64 and torch.equal(again.values, h.values)


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
        (np.int64(25), ValueError, r"^`keep` must be in \[1, 24\], got 25$"),
        (np.float32(1.5), ValueError, "got 1.5"),
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


def test_a_fraction_keeps_the_exact_ceiling() -> None:
    # math.ceil(0.07 * 100) is 8: 0.07 * 100 = 7.000000000000001. Every two-digit fraction of every size up to 200,
    # against integer arithmetic.
    for percent in range(1, 101):
        keep = float(f"{percent / 100:.2f}")
        for n in range(1, 201):
            assert num_to_keep(keep, n) == max(1, -(-percent * n // 100)), (keep, n)
    assert [num_to_keep(k, n) for k, n in [(0.07, 100), (0.55, 100), (0.28, 50), (0.071, 100), (1 / 3, 3)]] == [
        7,
        55,
        14,
        8,
        1,
    ]
    assert num_to_keep(0.1 + 0.2, 10) == 3 and num_to_keep(np.float32(0.07), 100) == 7
    model = make_model(3, seed=4)
    x = torch.randn(100, NUM_FEATURES, generator=torch.Generator().manual_seed(0))
    assert select_batch(model, x, torch.zeros(100, dtype=torch.long), 0.07).numel() == 7


@pytest.mark.parametrize(
    ("keep", "k"), [(np.int64(5), 5), (np.int32(5), 5), (np.float32(0.25), 6), (np.float64(0.25), 6)]
)
def test_numpy_scalars_for_keep(keep, k) -> None:
    model = make_model(3, seed=1)
    x, y = _batch(1)
    assert select_batch(model, x, y, keep).tolist() == select_batch(model, x, y, k).tolist()
    assert num_to_keep(keep, B) == k


def test_dict_inputs_with_values_that_are_not_per_sample() -> None:
    class Tempered(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.inner = nn.Linear(NUM_FEATURES, 3)

        def forward(self, temperature, x: torch.Tensor) -> torch.Tensor:  # type: ignore[no-untyped-def]
            return self.inner(x) / temperature

    torch.manual_seed(0)
    model = Tempered()
    x, y = _batch(11)
    with torch.no_grad():
        losses = F.cross_entropy(model.inner(x) / 2.0, y, reduction="none")
    expected = sorted(torch.topk(losses, 4).indices.tolist())
    table = torch.zeros(7, 2)  # a tensor that is not per-sample, with its own leading dimension
    for inputs in (
        {"temperature": torch.tensor(2.0), "x": x},
        {"temperature": 2.0, "x": x},
        {"x": x, "temperature": 2.0},
    ):
        pos, scores = select_batch(model, inputs, y, 4, return_scores=True)
        assert pos.tolist() == expected, list(inputs)
        torch.testing.assert_close(scores, losses)
    with pytest.raises(ValueError, match=r"leading batch dimension of 24 \(the length of `targets`\).*'t': 7"):
        select_batch(model, {"temperature": 2.0, "t": table}, y, 4)
    with pytest.raises(TypeError, match="`inputs` to be a tensor.*without a tensor of one dimension or more"):
        candidate_losses(model, {"temperature": 2.0}, [0, 1])  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="`inputs` to be a tensor"):
        select_batch(model, "x", y, 4)


@pytest.mark.parametrize("output", ["tuple", "dict"])
def test_a_model_output_that_is_not_a_tensor_asks_for_loss_fn(output) -> None:
    class Pair(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.inner = nn.Linear(NUM_FEATURES, 3)

        def forward(self, x: torch.Tensor):  # type: ignore[no-untyped-def]
            z = self.inner(x)
            return (z, x) if output == "tuple" else {"logits": z}

    model = Pair().train()
    x, y = _batch(12)
    with pytest.raises(TypeError, match=rf"model's output to be a tensor of logits.*got {output}; pass `loss_fn="):
        select_batch(model, x, y, 4)
    assert model.training and model.inner.training  # put back after the error
    first = (lambda o: o[0]) if output == "tuple" else (lambda o: o["logits"])
    pos = select_batch(model, x, y, 4, loss_fn=lambda o, t: F.cross_entropy(first(o), t, reduction="none"))
    with torch.no_grad():
        assert pos.tolist() == sorted(F.cross_entropy(model.inner(x), y, reduction="none").topk(4).indices.tolist())


def test_flags_must_be_bools() -> None:
    model = make_model(3, seed=5)
    x, y = _batch(5)
    with pytest.raises(TypeError, match="^`return_scores` must be True or False, got str 'False'$"):
        select_batch(model, x, y, 4, return_scores="False")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="^`check_finite` must be True or False, got str 'no'$"):
        select_batch(model, x, y, 4, check_finite="no")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="^`check_finite` must be True or False, got int 0$"):
        select_batch(model, x, y, 4, check_finite=0)  # type: ignore[arg-type]
    out = select_batch(model, x, y, 4, return_scores=np.bool_(True), check_finite=np.bool_(True))  # type: ignore
    assert isinstance(out, tuple) and len(out) == 2
    assert isinstance(select_batch(model, x, y, 4, return_scores=False, check_finite=None), torch.Tensor)


def test_loss_history_is_a_ring_of_the_latest() -> None:
    h = LossHistory(5)
    ref: deque[float] = deque(maxlen=5)
    g = torch.Generator().manual_seed(1)
    for size in (3, 4, 1, 7, 2):
        batch = torch.rand(size, generator=g)
        h.add(batch)
        ref.extend(batch.tolist())
        assert sorted(h.values.tolist()) == sorted(ref)
        probe = torch.tensor([0.0, 0.5, 2.0, batch[0].item(), h.values.min().item()])  # kept values among them
        assert h.cdf(probe).tolist() == pytest.approx([_rank(list(ref), p) for p in probe.tolist()])
    state = h.state_dict()
    again = LossHistory(5)
    again.load_state_dict(state)
    assert again.values.tolist() == h.values.tolist() and len(again) == len(h)
    with pytest.raises(ValueError, match="^`size` must be >= 1, got 0$"):
        LossHistory(0)


def test_loss_history_cdf_is_scipy_percentileofscore_rank() -> None:
    stats = pytest.importorskip("scipy.stats")
    kept = [3.0, 1.0, 2.0, 2.0, 2.0, 5.0, 0.5, 5.0]
    h = LossHistory(16)
    h.add(torch.tensor(kept))
    probe = [0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 5.0, 9.0]
    want = [stats.percentileofscore(kept, p, kind="rank") / 100 for p in probe]
    assert h.cdf(torch.tensor(probe)).tolist() == pytest.approx(want)
    assert [_rank(kept, p) for p in probe] == pytest.approx(want)  # the tests' own reference agrees


def test_public_names() -> None:
    assert hm.select_batch is select_batch and hm.LossHistory is LossHistory
    assert {"select_batch", "LossHistory", "ObservedScores"} <= set(hm.__all__)
