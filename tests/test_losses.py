import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torchvision.ops import sigmoid_focal_loss

from hardmine.feedback.losses import focal_loss, ohem_loss, ohem_pixel_loss, per_sample_cross_entropy, weighted_loss

DTYPES = [torch.float32, torch.float64]
REDUCTIONS = ["mean", "sum", "none"]


# ---------------------------------------------------------------- references: one sample at a time, by hand
def _ref_ce(z: torch.Tensor, y: int) -> torch.Tensor:
    """Cross-entropy of one sample: logits (C,) or a single logit ()."""
    if z.ndim == 0:
        p = 1 / (1 + torch.exp(-z))
        return -(y * torch.log(p) + (1 - y) * torch.log(1 - p))
    return -(z[y] - torch.log(torch.exp(z).sum()))


def _ref_focal(z: torch.Tensor, y: int, gamma: float, alpha) -> torch.Tensor:
    if z.ndim == 0:
        p1 = 1 / (1 + torch.exp(-z))
        p_t = p1 if y == 1 else 1 - p1
    else:
        p_t = torch.exp(z[y]) / torch.exp(z).sum()
    a = 1.0
    if alpha is not None:
        a = (alpha if y == 1 else 1 - alpha) if isinstance(alpha, float) else alpha[y]
    return -a * (1 - p_t) ** gamma * torch.log(p_t)


def _ref_reduce(losses: list[torch.Tensor], reduction: str) -> torch.Tensor:
    t = torch.stack(losses)
    return {"mean": t.mean(), "sum": t.sum(), "none": t}[reduction]


def _data(layout: str, dtype: torch.dtype, n: int = 12, c: int = 4, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    if layout == "multi":
        logits = torch.randn(n, c, generator=g, dtype=dtype) * 2
        targets = torch.randint(0, c, (n,), generator=g)
    else:
        logits = torch.randn(n, generator=g, dtype=dtype) * 2
        targets = torch.randint(0, 2, (n,), generator=g)
        if layout == "n1":
            logits = logits[:, None]
    return logits, targets


def _per_sample_logits(logits: torch.Tensor):
    return [logits[i, 0] if logits.ndim == 2 and logits.shape[1] == 1 else logits[i] for i in range(logits.shape[0])]


LAYOUTS = ["n", "n1", "multi"]


# ---------------------------------------------------------------- per-sample CE and weighted loss
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_per_sample_cross_entropy_matches_loop(layout, dtype):
    logits, targets = _data(layout, dtype)
    expected = torch.stack([_ref_ce(z, int(y)) for z, y in zip(_per_sample_logits(logits), targets, strict=True)])
    torch.testing.assert_close(per_sample_cross_entropy(logits, targets), expected)


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_weighted_loss_value_and_gradient(layout, reduction, dtype):
    logits, targets = _data(layout, dtype)
    weights = torch.rand(logits.shape[0], generator=torch.Generator().manual_seed(1), dtype=dtype) * 3
    a = logits.clone().requires_grad_(True)
    b = logits.clone().requires_grad_(True)
    out = weighted_loss(a, targets, weights, reduction=reduction)
    ref = _ref_reduce(
        [w * _ref_ce(z, int(y)) for z, y, w in zip(_per_sample_logits(b), targets, weights, strict=True)], reduction
    )
    torch.testing.assert_close(out, ref)
    (ga,) = torch.autograd.grad(out.sum(), a)
    (gb,) = torch.autograd.grad(ref.sum(), b)
    torch.testing.assert_close(ga, gb)


def test_weighted_loss_normalize_and_unit_weights():
    logits, targets = _data("multi", torch.float64)
    w = torch.linspace(0.5, 2.0, logits.shape[0], dtype=torch.float64)
    ce = F.cross_entropy(logits, targets, reduction="none")
    torch.testing.assert_close(weighted_loss(logits, targets, w, normalize=True), (w * ce).sum() / w.sum())
    torch.testing.assert_close(
        weighted_loss(logits, targets, torch.ones(12, dtype=torch.float64)), F.cross_entropy(logits, targets)
    )


def test_weighted_loss_normalize_must_be_a_bool():
    logits, targets = _data("multi", torch.float64)
    w = torch.linspace(0.5, 2.0, 12, dtype=torch.float64)
    with pytest.raises(TypeError, match="^`normalize` must be True or False, got str 'False'$"):
        weighted_loss(logits, targets, w, normalize="False")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="^`normalize` must be True or False, got int 1$"):
        weighted_loss(logits, targets, w, normalize=1)  # type: ignore[arg-type]
    ce = F.cross_entropy(logits, targets, reduction="none")
    torch.testing.assert_close(weighted_loss(logits, targets, w, normalize=np.bool_(True)), (w * ce).sum() / w.sum())
    torch.testing.assert_close(weighted_loss(logits, targets, w, normalize=np.bool_(False)), (w * ce).mean())


def test_weighted_loss_does_not_differentiate_weights():
    logits, targets = _data("multi", torch.float32)
    w = torch.ones(12, requires_grad=True)
    weighted_loss(logits.requires_grad_(True), targets, w).backward()
    assert w.grad is None


def test_weighted_loss_errors():
    logits, targets = _data("multi", torch.float32)
    with pytest.raises(ValueError, match="`weights` of shape \\(12,\\)"):
        weighted_loss(logits, targets, torch.ones(5))
    with pytest.raises(ValueError, match="non-negative"):
        weighted_loss(logits, targets, -torch.ones(12))
    with pytest.raises(TypeError, match="`weights` to be a torch.Tensor"):
        weighted_loss(logits, targets, [1.0] * 12)
    with pytest.raises(ValueError, match="`reduction` must be one of 'mean', 'sum', 'none', got 'avg'"):
        weighted_loss(logits, targets, torch.ones(12), reduction="avg")


def test_half_precision_is_computed_in_float32():
    logits, targets = _data("multi", torch.float32)
    out = weighted_loss(logits.half(), targets, torch.ones(12), reduction="none")
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, F.cross_entropy(logits.half().float(), targets, reduction="none"))


# ---------------------------------------------------------------- OHEM
def _ref_ohem(logits, targets, k, reduction):
    losses = [_ref_ce(z, int(y)) for z, y in zip(_per_sample_logits(logits), targets, strict=True)]
    order = sorted(range(len(losses)), key=lambda i: -float(losses[i].detach()))[:k]
    if reduction == "none":
        return torch.stack([losses[i] if i in order else losses[i] * 0 for i in range(len(losses))])
    kept = torch.stack([losses[i] for i in order])
    return kept.mean() if reduction == "mean" else kept.sum()


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize(
    ("keep", "min_kept", "k"),
    [(0.25, 1, 3), (0.3, 1, 4), (5, 1, 5), (0.1, 4, 4), (1.0, 1, 12), (100, 1, 12), (2, 20, 12)],
)
def test_ohem_matches_reference_value_and_gradient(layout, reduction, keep, min_kept, k):
    logits, targets = _data(layout, torch.float64)
    a = logits.clone().requires_grad_(True)
    b = logits.clone().requires_grad_(True)
    out = ohem_loss(a, targets, keep=keep, min_kept=min_kept, reduction=reduction)
    ref = _ref_ohem(b, targets, k, reduction)
    torch.testing.assert_close(out, ref)
    (ga,) = torch.autograd.grad(out.sum(), a)
    (gb,) = torch.autograd.grad(ref.sum(), b)
    torch.testing.assert_close(ga, gb)
    # only the kept samples get a gradient
    assert int((ga.reshape(ga.shape[0], -1).abs().sum(1) > 0).sum()) == k


@pytest.mark.parametrize(("keep", "n", "k"), [(0.07, 100, 7), (0.55, 100, 55), (0.28, 50, 14), (0.071, 100, 8)])
def test_ohem_fraction_keeps_the_exact_ceiling(keep, n, k):
    # math.ceil(keep * n) is one too many for the first three (0.07 * 100 = 7.000000000000001)
    logits, targets = _data("multi", torch.float64, n=n)
    out = ohem_loss(logits, targets, keep=keep, reduction="none")
    ce = F.cross_entropy(logits, targets, reduction="none")
    assert int((out != 0).sum()) == k and bool((ce > 0).all())
    torch.testing.assert_close(ohem_loss(logits, targets, keep=keep), ce.topk(k).values.mean())
    for percent in range(1, 101):  # every two-digit fraction against integer arithmetic
        fraction = float(f"{percent / 100:.2f}")
        got = int((ohem_loss(logits, targets, keep=fraction, reduction="none") != 0).sum())
        assert got == max(1, -(-percent * n // 100)), fraction


@pytest.mark.parametrize(
    ("keep", "k"), [(np.int64(5), 5), (np.int32(5), 5), (np.float32(0.25), 3), (np.float64(0.3), 4)]
)
def test_ohem_numpy_keep_is_an_int_or_a_float(keep, k):
    logits, targets = _data("multi", torch.float64)
    assert torch.equal(ohem_loss(logits, targets, keep=keep), ohem_loss(logits, targets, keep=k))


def test_ohem_none_mean_is_the_sum_over_k():
    # the documented recipe: a kept loss can be exactly 0, so divide by k, not by the count of non-zero losses
    logits = torch.tensor([[40.0, 0.0], [0.0, 0.0], [0.0, 3.0], [1.0, 0.0]])
    targets = torch.tensor([0, 0, 0, 0])
    none = ohem_loss(logits, targets, keep=4, reduction="none")
    assert float(none[0]) == 0.0
    torch.testing.assert_close(none.sum() / 4, ohem_loss(logits, targets, keep=4))
    torch.testing.assert_close(none.sum() / 4, F.cross_entropy(logits, targets))


def test_ohem_keep_all_is_cross_entropy():
    logits, targets = _data("multi", torch.float32)
    torch.testing.assert_close(ohem_loss(logits, targets, keep=1.0), F.cross_entropy(logits, targets))


@settings(deadline=None, max_examples=25)
@given(n=st.integers(1, 40), keep=st.floats(0.01, 1.0), min_kept=st.integers(1, 50), seed=st.integers(0, 1000))
def test_ohem_keeps_the_hardest(n, keep, min_kept, seed):
    logits, targets = _data("multi", torch.float64, n=n, seed=seed)
    out = ohem_loss(logits, targets, keep=keep, min_kept=min_kept, reduction="none")
    ce = F.cross_entropy(logits, targets, reduction="none")
    k = min(n, max(math.ceil(keep * n - 1e-9), min_kept))  # 1e-9: 0.07 * 100 is 7.000000000000001, 7 kept
    kept = out > 0
    assert int(kept.sum()) == k or bool((ce[~kept] == 0).any())
    # every kept loss is at least every dropped loss
    if k < n:
        assert float(ce[kept].min()) >= float(ce[~kept].max())


@pytest.mark.parametrize("keep", [0.0, 1.5, -0.2, 0, -3])
def test_ohem_bad_keep(keep):
    logits, targets = _data("multi", torch.float32)
    with pytest.raises(ValueError, match=r"`keep` must be (in \(0, 1\]|>= 1), got -?[0-9.]+$"):
        ohem_loss(logits, targets, keep=keep)


def test_ohem_bad_types():
    logits, targets = _data("multi", torch.float32)
    with pytest.raises(TypeError, match=r"`keep` must be a float in \(0, 1\] or an int >= 1, got bool True"):
        ohem_loss(logits, targets, keep=True)
    with pytest.raises(TypeError, match="`keep` must be a float in"):
        ohem_loss(logits, targets, keep="half")
    with pytest.raises(ValueError, match="`min_kept` must be >= 1, got 0"):
        ohem_loss(logits, targets, min_kept=0)
    with pytest.raises(TypeError, match="`min_kept` must be an integer, got float 1.5"):
        ohem_loss(logits, targets, min_kept=1.5)


def test_ohem_empty_batch():
    out = ohem_loss(torch.zeros(0, 3), torch.zeros(0, dtype=torch.long))
    assert out.shape == () and float(out) == 0.0


# ---------------------------------------------------------------- focal loss
@pytest.mark.parametrize(
    ("layout", "alpha"),
    [(lay, a) for lay in LAYOUTS for a in (None, 0.25, "vec") if not (lay == "multi" and a == 0.25)],
)  # float alpha: binary only
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("gamma", [0.0, 0.5, 2.0, 5.0])
def test_focal_matches_reference_value_and_gradient(layout, reduction, gamma, alpha):
    c = 4 if layout == "multi" else 2
    if alpha == "vec":
        alpha = torch.linspace(0.2, 1.0, c, dtype=torch.float64)
    logits, targets = _data(layout, torch.float64)
    a = logits.clone().requires_grad_(True)
    b = logits.clone().requires_grad_(True)
    out = focal_loss(a, targets, gamma=gamma, alpha=alpha, reduction=reduction)
    per_sample = zip(_per_sample_logits(b), targets, strict=True)
    ref = _ref_reduce([_ref_focal(z, int(y), gamma, alpha) for z, y in per_sample], reduction)
    torch.testing.assert_close(out, ref)
    (ga,) = torch.autograd.grad(out.sum(), a)
    (gb,) = torch.autograd.grad(ref.sum(), b)
    torch.testing.assert_close(ga, gb)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_focal_gamma_zero_is_cross_entropy(dtype):
    logits, targets = _data("multi", dtype)
    torch.testing.assert_close(focal_loss(logits, targets, gamma=0.0), F.cross_entropy(logits, targets))
    torch.testing.assert_close(
        focal_loss(logits, targets, gamma=0.0, reduction="none"), F.cross_entropy(logits, targets, reduction="none")
    )
    z, t = _data("n", dtype)
    torch.testing.assert_close(focal_loss(z, t, gamma=0.0), F.binary_cross_entropy_with_logits(z, t.to(dtype)))


@pytest.mark.parametrize("layout", ["n", "n1"])
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("gamma", [0.0, 1.0, 2.0])
@pytest.mark.parametrize(("ours", "theirs"), [(None, -1.0), (0.25, 0.25), (0.9, 0.9)])
def test_focal_binary_matches_torchvision(layout, reduction, gamma, ours, theirs):
    logits, targets = _data(layout, torch.float64, n=50)
    a = logits.clone().requires_grad_(True)
    b = logits.clone().requires_grad_(True)
    out = focal_loss(a, targets, gamma=gamma, alpha=ours, reduction=reduction)
    ref = sigmoid_focal_loss(
        b, targets.to(torch.float64).reshape(b.shape), alpha=theirs, gamma=gamma, reduction=reduction
    )
    torch.testing.assert_close(out, ref.reshape(out.shape))
    (ga,) = torch.autograd.grad(out.sum(), a)
    (gb,) = torch.autograd.grad(ref.sum(), b)
    torch.testing.assert_close(ga, gb)


def test_focal_soft_targets_match_torchvision():
    logits = torch.randn(30, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    soft = torch.rand(30, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    torch.testing.assert_close(
        focal_loss(logits, soft, gamma=2.0, alpha=0.25),
        sigmoid_focal_loss(logits, soft, alpha=0.25, gamma=2.0, reduction="mean"),
    )


def test_focal_two_class_float_alpha_equals_single_logit():
    # two logits (0, z) are the same binary model as one logit z
    z, t = _data("n", torch.float64)
    two = torch.stack([torch.zeros_like(z), z], dim=1)
    torch.testing.assert_close(
        focal_loss(two, t, gamma=2.0, alpha=0.3, reduction="none"),
        focal_loss(z, t, gamma=2.0, alpha=0.3, reduction="none"),
    )


def test_focal_confident_samples_are_finite():
    logits = torch.tensor([[50.0, -50.0], [-50.0, 50.0]], requires_grad=True)
    out = focal_loss(logits, torch.tensor([0, 0]), gamma=0.5)
    (g,) = torch.autograd.grad(out, logits)
    assert torch.isfinite(out) and torch.isfinite(g).all()


@pytest.mark.parametrize("gamma", [0.25, 0.5, 0.9])
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_focal_confident_single_logit_has_a_zero_not_nan_gradient(gamma, dtype):
    # 1 - p_t rounds to 0 for these (sigmoid(+-40) is 1 in float32 and float64): d/dq q**gamma is infinite at 0
    z = torch.tensor([40.0, -40.0, 0.3, -1.2, 2.0], dtype=dtype)
    t = torch.tensor([1, 0, 0, 1, 1])
    a = z.clone().requires_grad_(True)
    out = focal_loss(a, t, gamma=gamma, alpha=0.25, reduction="sum")
    (g,) = torch.autograd.grad(out, a)
    assert bool(torch.isfinite(g).all()) and g[:2].tolist() == [0.0, 0.0]
    # the other samples: the value and gradient of the formula, sample by sample
    b = z[2:].clone().requires_grad_(True)
    ref = torch.stack([_ref_focal(b[i], int(t[i + 2]), gamma, 0.25) for i in range(3)]).sum()
    (gb,) = torch.autograd.grad(ref, b)
    torch.testing.assert_close(out, ref)
    torch.testing.assert_close(g[2:], gb)
    # values unchanged: torchvision's formula, bit for bit (including the zero losses)
    tv = sigmoid_focal_loss(z, t.to(dtype), alpha=-1, gamma=gamma, reduction="none")
    assert torch.equal(focal_loss(z, t, gamma=gamma, reduction="none"), tv)


def test_focal_small_gamma_gradient_is_finite_everywhere():
    # float64 finite differences where 1 - p_t is representable; a zero gradient where it rounds to 0
    z = torch.linspace(-12, 12, 25, dtype=torch.float64).requires_grad_(True)
    t = (torch.arange(25) % 2).to(torch.float64)
    assert torch.autograd.gradcheck(lambda v: focal_loss(v, t, gamma=0.5, reduction="none"), (z,))
    wide = torch.tensor([-800.0, -50.0, 50.0, 800.0], dtype=torch.float64, requires_grad=True)
    (g,) = torch.autograd.grad(focal_loss(wide, torch.tensor([0, 0, 1, 1]), gamma=0.5), wide)
    assert g.tolist() == [0.0, 0.0, 0.0, 0.0]
    soft = torch.tensor([0.999999, 1.0, 0.0], dtype=torch.float32)  # soft targets near 0/1
    w = torch.tensor([30.0, 30.0, -30.0], requires_grad=True)
    out = focal_loss(w, soft, gamma=0.3, reduction="none")
    (g,) = torch.autograd.grad(out.sum(), w)
    assert bool(torch.isfinite(out).all()) and bool(torch.isfinite(g).all())


def test_focal_errors():
    logits, targets = _data("multi", torch.float32)
    with pytest.raises(ValueError, match="`gamma` must be >= 0, got -1.0"):
        focal_loss(logits, targets, gamma=-1.0)
    with pytest.raises(ValueError, match="`gamma` must be a finite number, got nan"):
        focal_loss(logits, targets, gamma=float("nan"))
    with pytest.raises(TypeError, match="`gamma` must be a real number, got str '2'"):
        focal_loss(logits, targets, gamma="2")
    with pytest.raises(ValueError, match="float `alpha` weighs the positive class"):
        focal_loss(logits, targets, alpha=0.25)
    with pytest.raises(ValueError, match="`alpha` must be in \\[0, 1\\]"):
        focal_loss(logits[:, :2], targets.clamp(max=1), alpha=1.5)
    with pytest.raises(ValueError, match="`alpha` must be in \\[0, 1\\]"):
        focal_loss(logits[:, 0], targets.clamp(max=1), alpha=-1.0)
    with pytest.raises(ValueError, match="shape \\(4,\\)"):
        focal_loss(logits, targets, alpha=torch.ones(3))
    with pytest.raises(ValueError, match="non-negative"):
        focal_loss(logits, targets, alpha=-torch.ones(4))
    with pytest.raises(TypeError, match="`alpha`"):
        focal_loss(logits, targets, alpha="balanced")


# ---------------------------------------------------------------- shape and target errors, shared
@pytest.mark.parametrize(
    "fn",
    [
        lambda z, y: weighted_loss(z, y, torch.ones(z.shape[0])),
        lambda z, y: ohem_loss(z, y),
        lambda z, y: focal_loss(z, y),
    ],
    ids=["weighted", "ohem", "focal"],
)
def test_shape_and_target_errors(fn):
    logits, targets = _data("multi", torch.float32)
    with pytest.raises(ValueError, match="same number of samples, but got 12 logits and 11 targets"):
        fn(logits, targets[:11])
    with pytest.raises(ValueError, match="shape \\(N,\\)"):
        fn(logits, F.one_hot(targets, 4))
    with pytest.raises(ValueError, match="class indices in \\[0, 4\\), but samples \\[0\\]"):
        fn(logits, torch.cat([torch.tensor([7]), targets[1:]]))
    with pytest.raises(ValueError, match="shape \\(N,\\), \\(N, 1\\) or \\(N, C\\)"):
        fn(torch.zeros(12, 2, 2), targets)
    with pytest.raises(TypeError, match="floating point"):
        fn(targets.clone(), targets)
    with pytest.raises(TypeError, match="`targets` to be a torch.Tensor"):
        fn(logits, targets.tolist())
    with pytest.raises(ValueError, match="binary `targets` in \\[0, 1\\]"):
        fn(logits[:, 0], torch.full((12,), 2.0))
    with pytest.raises(ValueError, match="class indices in \\[0, 2\\)"):
        fn(logits[:, 0], torch.full((12,), 2))


# ---------------------------------------------------------------- OHEM pixel loss (vs HRNet: test_dense.py)
def _pixels(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(2, 3, 4, 5, generator=g, dtype=torch.float64)
    targets = torch.randint(0, 3, (2, 4, 5), generator=g)
    targets[0, 0, :2] = 255
    targets[1, 3, 4] = 255
    return logits, targets


@pytest.mark.parametrize("bad", [-math.inf, math.inf, math.nan])
def test_ohem_pixel_ignored_pixels_never_contribute(bad):
    logits, targets = _pixels()
    clean = logits.clone().requires_grad_(True)
    # thresh=1, min_kept=0: every valid pixel is kept, so the loss is F.cross_entropy(ignore_index=255)
    ref = F.cross_entropy(clean, targets, ignore_index=255)
    (g_ref,) = torch.autograd.grad(ref, clean)
    dirty = logits.clone()
    dirty[0, :, 0, 0] = bad  # an ignored pixel
    dirty[1, 0, 3, 4] = bad  # another
    dirty.requires_grad_(True)
    out = ohem_pixel_loss(dirty, targets, thresh=1.0, min_kept=0)
    (g,) = torch.autograd.grad(out, dirty)
    torch.testing.assert_close(out, ref)
    torch.testing.assert_close(g, g_ref)  # finite, and zero at the ignored pixels
    assert g[0, :, 0, :2].abs().sum() == 0 and g[1, :, 3, 4].abs().sum() == 0
    # with a real threshold the ignored pixels still do not matter
    torch.testing.assert_close(
        ohem_pixel_loss(dirty, targets, min_kept=5), ohem_pixel_loss(logits, targets, min_kept=5)
    )


def test_ohem_pixel_nan_at_a_valid_pixel_shows():
    logits, targets = _pixels()
    logits[0, 1, 2, 2] = math.nan
    assert ohem_pixel_loss(logits, targets).isnan()


def test_ohem_pixel_argument_checks():
    logits, targets = _pixels()
    with pytest.raises(TypeError, match="^Expected argument `targets` to be a tensor of class indices, but got list"):
        ohem_pixel_loss(logits, targets.tolist())  # type: ignore[arg-type]
    soft = targets.double()
    soft[0, 1, 1] = 0.9
    with pytest.raises(ValueError, match="`targets` to be class indices or ignore_index, but got floats that are not"):
        ohem_pixel_loss(logits, soft)
    assert torch.equal(ohem_pixel_loss(logits, targets.double()), ohem_pixel_loss(logits, targets))  # whole floats
    with pytest.raises(TypeError, match="^`ignore_index` must be an integer, got NoneType None$"):
        ohem_pixel_loss(logits, targets, ignore_index=None)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="^`ignore_index` must be an integer, got float 1.5$"):
        ohem_pixel_loss(logits, targets, ignore_index=1.5)  # type: ignore[arg-type]
    assert torch.equal(ohem_pixel_loss(logits, targets, ignore_index=np.int64(255)), ohem_pixel_loss(logits, targets))
    # another ignore_index: class 2 ignored, 255 would be out of range
    t2 = targets.clone()
    t2[t2 == 255] = 2
    valid = t2 != 2
    ref = F.cross_entropy(logits, t2, ignore_index=2)
    torch.testing.assert_close(ohem_pixel_loss(logits, t2, thresh=1.0, min_kept=0, ignore_index=2), ref)
    assert bool(valid.any())


def test_weighted_loss_refuses_non_finite_weights_on_the_cpu() -> None:
    logits, targets = torch.randn(3, 2), torch.tensor([0, 1, 0])
    for bad in (float("nan"), float("inf")):
        with pytest.raises(ValueError, match="`weights` to be finite and non-negative"):
            weighted_loss(logits, targets, torch.tensor([1.0, bad, 1.0]))
