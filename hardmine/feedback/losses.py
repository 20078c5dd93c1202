"""Losses that put the hard samples first: per-sample weighted cross-entropy, OHEM and focal loss.

Every loss takes logits in the layouts :mod:`hardmine.scoring.measures` understands (``N`` samples, ``C`` classes):

- ``(N, C)`` with ``C >= 2``: multi-class, softmax over the last dimension; targets are class indices ``(N,)``.
- ``(N,)`` or ``(N, 1)``: binary, one logit per sample, ``P(class 1) = sigmoid(logit)``; targets are ``0``/``1``
  ``(N,)`` (int, bool, or float; float targets in ``[0, 1]`` are soft labels for :func:`focal_loss` and
  :func:`weighted_loss`, as in ``binary_cross_entropy_with_logits``).

``reduction`` is ``"mean"`` by default, as in torch's losses; ``"sum"`` and ``"none"`` (per-sample losses ``(N,)``) are
the others. Half-precision logits are computed in float32, as ``torch.autocast`` does for cross-entropy, and the loss
comes back in float32.

Nothing here synchronises with the device: shapes are checked on every call; target values are checked only for CPU
tensors (where the check is free), on an accelerator torch's own device-side assertion reports a bad class index.
"""

from __future__ import annotations

import numbers
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor

from hardmine.core import validate
from hardmine.scoring.measures import per_sample_targets

__all__ = ["Reduction", "focal_loss", "ohem_loss", "ohem_pixel_loss", "per_sample_cross_entropy", "weighted_loss"]

Reduction = Literal["mean", "sum", "none"]
_REDUCTIONS: tuple[str, ...] = ("mean", "sum", "none")


def _check_reduction(reduction: str) -> None:
    validate.choice("reduction", reduction, _REDUCTIONS)


def _reduce(loss: Tensor, reduction: str) -> Tensor:
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    return loss


def _upcast(x: Tensor) -> Tensor:
    return x.float() if x.dtype in (torch.float16, torch.bfloat16) else x


def _is_single_logit(logits: Tensor) -> bool:
    return logits.ndim == 1 or (logits.ndim == 2 and logits.shape[1] == 1)


def _check_logits(logits: Tensor) -> None:
    if not isinstance(logits, Tensor):
        raise TypeError(f"Expected argument `logits` to be a torch.Tensor, but got {type(logits).__name__}.")
    if not logits.is_floating_point():
        raise TypeError(f"Expected argument `logits` to be a floating point tensor, but got dtype {logits.dtype}.")
    if not (logits.ndim == 1 or logits.ndim == 2):
        raise ValueError(
            f"Expected argument `logits` of shape (N,), (N, 1) or (N, C), but got shape {tuple(logits.shape)}."
        )


def _check_targets(logits: Tensor, targets: Tensor, *, soft_ok: bool) -> Tensor:
    """Targets as a ``(N,)`` tensor on the logits' device: int64 class indices, or float for soft binary targets."""
    targets = per_sample_targets(logits, targets, name="targets")
    targets = targets.to(logits.device, non_blocking=True)
    single = _is_single_logit(logits)
    num_classes = 2 if single else int(logits.shape[1])
    if targets.is_floating_point() and single and soft_ok:
        if targets.device.type == "cpu" and targets.numel() and bool(((targets < 0) | (targets > 1)).any()):
            raise ValueError("Expected binary `targets` in [0, 1], but got values outside it.")
        return targets
    if targets.is_floating_point():
        whole = targets == targets.round()
        if targets.device.type == "cpu" and not bool(whole.all()):
            raise ValueError(
                "Expected `targets` to be class indices, but got floats that are not whole numbers"
                + ("." if soft_ok else "; soft targets are only supported for a single binary logit.")
            )
    targets = targets.long()
    if targets.device.type == "cpu":
        bad = (targets < 0) | (targets >= num_classes)
        if bool(bad.any()):
            idx = bad.nonzero()[:, 0][:10].tolist()
            raise ValueError(
                f"Expected `targets` to be class indices in [0, {num_classes}), but samples {idx} have targets "
                f"{targets[idx].tolist()}."
            )
    return targets


def per_sample_cross_entropy(logits: Tensor, targets: Tensor) -> Tensor:
    """Cross-entropy of every sample, ``(N,)``, for any supported logit layout.

    For a single binary logit this is ``binary_cross_entropy_with_logits`` (soft float targets allowed), for ``(N, C)``
    it is ``cross_entropy`` with class-index targets.

    Args:
        logits: float tensor ``(N,)``, ``(N, 1)`` or ``(N, C)``.
        targets: ``(N,)`` class indices (or ``0``/``1``/soft floats for a single logit).

    Returns:
        Float tensor ``(N,)`` on ``logits.device`` (float32 for half-precision logits).

    Example:
        >>> per_sample_cross_entropy(torch.tensor([0.0, 0.0]), torch.tensor([0, 1])).round(decimals=4)
        tensor([0.6931, 0.6931])
    """
    _check_logits(logits)
    targets = _check_targets(logits, targets, soft_ok=True)
    z = _upcast(logits)
    if _is_single_logit(z):
        z = z.reshape(-1)
        return F.binary_cross_entropy_with_logits(z, targets.to(z.dtype), reduction="none")
    return F.cross_entropy(z, targets, reduction="none")


def weighted_loss(
    logits: Tensor,
    targets: Tensor,
    weights: Tensor,
    *,
    reduction: Reduction = "mean",
    normalize: bool = False,
) -> Tensor:
    """Cross-entropy with a weight per sample: ``w_i * CE_i``.

    With ``reduction="mean"`` the result is ``sum_i w_i CE_i / N`` (so weights ``1 / (N p_i)`` from an importance
    sampler give an unbiased estimate of the plain mean loss); with ``normalize=True`` it is the weighted average
    ``sum_i w_i CE_i / sum_i w_i`` instead, which keeps the loss on the scale of the unweighted one.

    Accepts the following input tensors:

    - ``logits`` (float tensor): ``(N,)``, ``(N, 1)`` or ``(N, C)``
    - ``targets`` (int tensor, or float ``0``/``1``/soft for a single logit): ``(N,)``
    - ``weights`` (float tensor, non-negative): ``(N,)``, for example the third item of a :class:`hardmine.HardMiner`
      batch

    Args:
        logits: the model's outputs.
        targets: the ground-truth labels.
        weights: one weight per sample; gradients do not flow into them (they are detached).
        reduction: ``"mean"``, ``"sum"`` or ``"none"`` (weighted per-sample losses ``(N,)``).
        normalize: divide by the sum of the weights instead of ``N`` for ``reduction="mean"`` (``True`` or
            ``False``).

    Returns:
        A scalar tensor, or ``(N,)`` for ``reduction="none"``.

    Example:
        >>> logits = torch.tensor([[2.0, 0.0], [0.0, 2.0]])
        >>> weighted_loss(logits, torch.tensor([0, 0]), torch.tensor([1.0, 3.0]), reduction="none").round(decimals=4)
        tensor([0.1269, 6.3808])
    """
    _check_reduction(reduction)
    normalize = validate.boolean("normalize", normalize)
    if not isinstance(weights, Tensor):
        raise TypeError(f"Expected argument `weights` to be a torch.Tensor, but got {type(weights).__name__}.")
    ce = per_sample_cross_entropy(logits, targets)
    w = weights.reshape(-1) if weights.ndim == 2 and weights.shape[1] == 1 else weights
    if w.ndim != 1 or w.shape[0] != ce.shape[0]:
        raise ValueError(
            f"Expected argument `weights` of shape ({ce.shape[0]},), one weight per sample, but got shape "
            f"{tuple(weights.shape)}."
        )
    w = w.detach().to(device=ce.device, dtype=ce.dtype, non_blocking=True)
    if w.device.type == "cpu" and (bool((w < 0).any()) or not bool(torch.isfinite(w).all())):
        raise ValueError(f"Expected argument `weights` to be finite and non-negative, but got {w[:10].tolist()}...")
    loss = w * ce
    if reduction == "mean" and normalize:
        return loss.sum() / w.sum().clamp_min(torch.finfo(w.dtype).tiny)
    return _reduce(loss, reduction)


def _num_kept(keep: float | int, min_kept: int, n: int) -> int:
    """How many of ``n`` samples to keep: a fraction ``keep`` in (0, 1] (a float) or a count ``keep`` >= 1 (an int).

    Python and numpy numbers alike: an integer (``int``, ``numpy.int64``) is a count, any other real number
    (``float``, ``numpy.float32``) a fraction.
    """
    if isinstance(keep, numbers.Integral) and not isinstance(keep, bool):
        k = validate.integer("keep", keep, min=1)
    elif isinstance(keep, numbers.Real) and not isinstance(keep, bool):
        k = validate.fraction_count("keep", keep, n)
    else:
        raise TypeError(f"`keep` must be a float in (0, 1] or an int >= 1, got {type(keep).__name__} {keep!r}")
    return min(n, max(k, min_kept))


def ohem_loss(
    logits: Tensor,
    targets: Tensor,
    keep: float | int = 0.25,
    *,
    min_kept: int = 1,
    reduction: Reduction = "mean",
) -> Tensor:
    """Online hard example mining: the mean cross-entropy of the hardest samples of the batch.

    The ``k`` samples with the largest cross-entropy are kept, where ``k = ceil(keep * N)`` for a float ``keep`` in
    ``(0, 1]`` (a fraction of the batch; computed without float rounding error, so 0.07 of 100 is 7) or ``k = keep``
    for an int ``keep >= 1`` (a count; numpy integers and floats count as ints and floats), and never fewer than
    ``min_kept`` nor more than ``N``. Only the kept samples receive gradients (Shrivastava et al., 2016).

    Accepts the following input tensors:

    - ``logits`` (float tensor): ``(N,)``, ``(N, 1)`` or ``(N, C)``
    - ``targets`` (int tensor, or ``0``/``1`` for a single logit): ``(N,)``

    Args:
        logits: the model's outputs.
        targets: the ground-truth labels.
        keep: fraction (float) or number (int) of samples to keep.
        min_kept: the fewest samples to keep, ``>= 1``.
        reduction: ``"mean"`` (over the kept samples), ``"sum"`` (of the kept samples) or ``"none"``: per-sample
            losses ``(N,)`` with zeros for the samples not kept. Their mean is ``loss.sum() / k``, ``k`` the count
            above; not ``loss.sum() / (loss > 0).sum()``, since a kept sample's loss can be exactly 0.

    Returns:
        A scalar tensor, or ``(N,)`` for ``reduction="none"``.

    Example:
        >>> logits = torch.tensor([[3.0, 0.0], [0.0, 0.0], [0.0, 3.0], [1.0, 0.0]])
        >>> ohem_loss(logits, torch.tensor([0, 0, 0, 0]), keep=2, reduction="none").round(decimals=4)
        tensor([0.0000, 0.6931, 3.0486, 0.0000])
    """
    _check_reduction(reduction)
    min_kept = validate.integer("min_kept", min_kept, min=1)
    ce = per_sample_cross_entropy(logits, targets)
    n = ce.shape[0]
    k = _num_kept(keep, min_kept, n)
    if n == 0:
        return ce if reduction == "none" else ce.sum()
    # top-k on detached values picks the samples; the gradient flows through the gathered losses only.
    top = torch.topk(ce.detach(), k, sorted=False).indices
    kept = ce.gather(0, top)
    if reduction == "mean":
        return kept.mean()
    if reduction == "sum":
        return kept.sum()
    return torch.zeros_like(ce).scatter(0, top, kept)


def focal_loss(
    logits: Tensor,
    targets: Tensor,
    gamma: float = 2.0,
    alpha: float | Tensor | None = None,
    *,
    reduction: Reduction = "mean",
) -> Tensor:
    """Focal loss (Lin et al., 2017): cross-entropy scaled by ``(1 - p_t) ** gamma``, so easy samples count less.

    ``loss_i = -alpha_t (1 - p_t) ** gamma * log p_t`` where ``p_t`` is the probability of the true class.

    - A single binary logit uses the sigmoid form, equal to ``torchvision.ops.sigmoid_focal_loss`` (which defaults to
      ``alpha=0.25``; its ``alpha=-1`` is ``alpha=None`` here). Soft float targets in ``[0, 1]`` are allowed, as there.
    - ``(N, C)`` logits use the softmax form. With ``gamma=0`` and ``alpha=None`` it is exactly ``F.cross_entropy``
      (``binary_cross_entropy_with_logits`` for a single logit).

    Accepts the following input tensors:

    - ``logits`` (float tensor): ``(N,)``, ``(N, 1)`` or ``(N, C)``
    - ``targets`` (int tensor, or float ``0``/``1``/soft for a single logit): ``(N,)``

    Args:
        logits: the model's outputs.
        targets: the ground-truth labels.
        gamma: focusing parameter ``>= 0``; 0 turns the modulating factor off.
        alpha: ``None`` (no class weighting); a float in ``[0, 1]``, the weight of the positive class (class 1) in a
            binary task, the negative class getting ``1 - alpha`` (single logit or ``C == 2``); or a tensor ``(C,)`` of
            non-negative per-class weights (``(2,)`` for a single logit), ``alpha_t = alpha[target]``.
        reduction: ``"mean"`` (over the ``N`` samples, as torchvision does, not over the alpha weights), ``"sum"``
            or ``"none"``.

    Returns:
        A scalar tensor, or ``(N,)`` for ``reduction="none"``.

    Example:
        >>> logits = torch.tensor([[2.0, 0.0], [0.0, 2.0]])
        >>> focal_loss(logits, torch.tensor([0, 0]), gamma=2.0, reduction="none").round(decimals=4)
        tensor([0.0018, 1.6501])
    """
    _check_reduction(reduction)
    gamma = validate.number("gamma", gamma, min=0)
    _check_logits(logits)
    single = _is_single_logit(logits)
    num_classes = 2 if single else int(logits.shape[1])
    if single is False and num_classes < 2:
        raise ValueError(
            f"Expected argument `logits` of shape (N,), (N, 1) or (N, C) with C >= 2, but got shape "
            f"{tuple(logits.shape)}."
        )
    alpha_vec = _check_alpha(alpha, num_classes, logits.device)
    targets = _check_targets(logits, targets, soft_ok=True)
    z = _upcast(logits)

    if single:
        z = z.reshape(-1)
        t = targets.to(z.dtype)
        ce = F.binary_cross_entropy_with_logits(z, t, reduction="none")
        p = torch.sigmoid(z)
        p_t = p * t + (1 - p) * (1 - t)
        loss = ce * _modulating_factor(1 - p_t, gamma) if gamma != 0 else ce
        if alpha_vec is not None:
            alpha_vec = alpha_vec.to(z.dtype)
            loss = loss * (alpha_vec[1] * t + alpha_vec[0] * (1 - t))
        return _reduce(loss, reduction)

    log_p = torch.log_softmax(z, dim=1)
    log_p_t = log_p.gather(1, targets[:, None])[:, 0]
    loss = -log_p_t
    if gamma != 0:
        # 1 - p_t computed as -expm1(log p_t): exact for p_t near 1, where 1 - exp() would cancel.
        loss = loss * _modulating_factor(-torch.expm1(log_p_t), gamma)
    if alpha_vec is not None:
        loss = loss * alpha_vec.to(z.dtype)[targets]
    return _reduce(loss, reduction)


def _modulating_factor(q: Tensor, gamma: float) -> Tensor:
    """``q ** gamma`` for ``q = 1 - p_t``, 0 where ``q <= 0``, with a zero (not NaN) gradient there.

    For ``0 < gamma < 1`` the derivative of ``q ** gamma`` is infinite at ``q = 0`` (a confident sample, where
    ``1 - p_t`` rounds to 0), and ``0 * inf`` in the backward pass is NaN. The power is taken of ``q`` where it is
    positive and of 1 elsewhere, then masked: the values are those of ``q.clamp_min(0) ** gamma`` and the gradient
    at ``q <= 0`` is 0, the limit of the loss's true gradient there.
    """
    positive = q > 0
    safe = torch.where(positive, q, torch.ones_like(q))
    return torch.where(positive, safe**gamma, torch.zeros_like(q))


def _check_alpha(alpha: float | Tensor | None, num_classes: int, device: torch.device) -> Tensor | None:
    """``alpha`` as a per-class weight vector ``(C,)`` on ``device``, or ``None``."""
    if alpha is None:
        return None
    if isinstance(alpha, Tensor):
        if alpha.ndim != 1 or alpha.shape[0] != num_classes:
            raise ValueError(
                f"Expected argument `alpha` as a tensor to hold one weight per class, shape ({num_classes},), but got "
                f"shape {tuple(alpha.shape)}."
            )
        if not alpha.is_floating_point():
            alpha = alpha.float()
        if alpha.device.type == "cpu" and bool(((alpha < 0) | ~torch.isfinite(alpha)).any()):
            raise ValueError(
                f"Expected argument `alpha` to hold finite non-negative weights, but got {alpha.tolist()}."
            )
        return alpha.to(device)
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)):
        raise TypeError(
            f"`alpha` must be None, a float in [0, 1] or a tensor (C,), got {type(alpha).__name__} {alpha!r}"
        )
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(
            f"`alpha` must be in [0, 1] (the weight of the positive class), got {alpha!r}. For no class weighting "
            "pass alpha=None (torchvision's alpha=-1)."
        )
    if num_classes != 2:
        raise ValueError(
            f"A float `alpha` weighs the positive class of a binary task, but the logits have {num_classes} classes: "
            f"pass a tensor of {num_classes} per-class weights instead."
        )
    return torch.tensor([1.0 - float(alpha), float(alpha)], device=device)


# OHEM for dense predictions (issue 17): the pixel sampler of semantic segmentation toolboxes.
def ohem_pixel_loss(
    logits: Tensor,
    targets: Tensor,
    thresh: float = 0.7,
    min_kept: int = 100_000,
    ignore_index: int = 255,
) -> Tensor:
    """OHEM pixel cross-entropy: the mean loss of the pixels whose true-class probability is below ``thresh``.

    What it computes: over the valid pixels of the whole batch (targets not equal to ``ignore_index``), sort the
    true-class probabilities; the threshold is the larger of ``thresh`` and the probability at position
    ``min(min_kept, n_valid - 1)``; the kept pixels are those strictly below it (so at least the ``min_kept`` hardest
    are kept when ``thresh`` would keep fewer, ties aside), and the loss is their mean cross-entropy (the sum over the
    kept pixels divided by their number). This is the ``OhemCrossEntropy`` of HRNet-Semantic-Segmentation's code,
    where ``min_kept`` also counts pixels over the whole batch. Selection is on detached probabilities; gradients flow
    through the kept pixels' losses only. No host synchronisation. A batch with no kept pixel returns a zero that
    still carries the graph.

    Ignored pixels never contribute, not even through a non-finite logit (fp16 overflow in padding): their logits
    are replaced by zeros before the cross-entropy (as ``F.cross_entropy(..., ignore_index=...)`` leaves them out), so
    the loss and the gradient stay finite, and their gradient is 0. A NaN logit at a *valid* pixel gives a NaN loss.

    It differs from mmsegmentation's ``OHEMPixelSampler`` (with ``thresh``) in two ways: mmsegmentation keeps at least
    ``min_kept`` pixels *per image* (its position is ``min_kept * B``, ``B`` the batch size), where this function
    counts ``min_kept`` over the whole batch (pass ``min_kept * B`` for mmsegmentation's count); and mmsegmentation
    returns a 0/1 weight per pixel for the decode head's loss, which averages over the batch's pixels (all of them, or
    the non-ignored ones with ``avg_non_ignore=True``), not over the kept ones as here.

    Accepts the following input tensors:

    - ``logits`` (float tensor): ``(B, C, *spatial)``
    - ``targets`` (int tensor): ``(B, *spatial)``, class indices or ``ignore_index``

    Args:
        logits: the model's outputs.
        targets: the ground-truth masks.
        thresh: keep the pixels whose true-class probability is below this, in ``(0, 1]``.
        min_kept: keep at least this many of the hardest valid pixels of the batch (``>= 0``).
        ignore_index: the target value of pixels to ignore, an integer.

    Returns:
        A scalar float32 (or wider) tensor.

    Raises:
        TypeError: ``logits`` not a float tensor, ``targets`` not a tensor (or complex), ``ignore_index`` not an
            integer.
        ValueError: shapes that do not match; ``thresh`` or ``min_kept`` out of range; on the CPU, float targets
            that are not whole numbers, or targets that are neither a class index nor ``ignore_index``.

    Example:
        >>> logits = torch.tensor([[[[4.0, 0.0, 0.0]], [[0.0, 0.0, 4.0]]]])  # (1, 2, 1, 3)
        >>> targets = torch.tensor([[[0, 0, 255]]])  # p(true) = 0.98, 0.5, ignored
        >>> loss = ohem_pixel_loss(logits, targets, min_kept=0)  # keeps the one pixel below 0.7
        >>> loss.item() == F.cross_entropy(logits[..., 1], targets[..., 1]).item()
        True
    """
    if not isinstance(logits, Tensor) or not logits.is_floating_point():
        raise TypeError(f"Expected argument `logits` to be a float tensor, but got {getattr(logits, 'dtype', logits)}.")
    if logits.ndim < 2:
        raise ValueError(f"Expected `logits` of shape (B, C, *spatial), but got shape {tuple(logits.shape)}.")
    if not isinstance(targets, Tensor) or targets.is_complex():
        shown = targets.dtype if isinstance(targets, Tensor) else type(targets).__name__
        raise TypeError(f"Expected argument `targets` to be a tensor of class indices, but got {shown}.")
    if tuple(targets.shape) != (logits.shape[0], *logits.shape[2:]):
        raise ValueError(
            f"Expected `targets` of shape {(logits.shape[0], *logits.shape[2:])} beside logits "
            f"{tuple(logits.shape)}, but got {tuple(targets.shape)}."
        )
    thresh = validate.fraction("thresh", thresh, open_low=True)
    min_kept = validate.integer("min_kept", min_kept, min=0)
    ignore_index = validate.integer("ignore_index", ignore_index)
    if targets.is_floating_point() and targets.device.type == "cpu" and not bool((targets == targets.round()).all()):
        raise ValueError(
            "Expected `targets` to be class indices or ignore_index, but got floats that are not whole numbers."
        )
    z = _upcast(logits)
    t = targets.long()
    valid = t != ignore_index
    tc = torch.where(valid, t, torch.zeros_like(t))
    if tc.device.type == "cpu" and tc.numel() and (int(tc.min()) < 0 or int(tc.max()) >= z.shape[1]):
        raise ValueError(
            f"Expected `targets` in [0, {z.shape[1]}) or ignore_index ({ignore_index}), but got values in "
            f"[{int(t[valid].min())}, {int(t[valid].max())}]."
        )
    # Ignored pixels get zero logits: a non-finite logit there must not reach the loss or its gradient (inf * 0).
    z = torch.where(valid.unsqueeze(1), z, torch.zeros((), dtype=z.dtype, device=z.device))
    ce = F.cross_entropy(z, tc, reduction="none").reshape(-1)
    valid = valid.reshape(-1)
    prob = torch.exp(-ce.detach())
    ordered = torch.where(valid, prob, torch.full_like(prob, 2.0)).sort().values  # invalid pixels last
    n_valid = valid.sum()
    at = torch.clamp(torch.clamp(n_valid - 1, min=0), max=min_kept)
    threshold = torch.clamp(ordered.gather(0, at.reshape(1)), min=float(thresh))
    keep = valid & (prob < threshold)
    kept = keep.to(ce.dtype)
    return (ce * kept).sum() / kept.sum().clamp_min(1.0)
