"""Per-sample measures of how hard a sample is, from logits and ground-truth labels.

Everything here is a pure function on torch tensors: no pandas, no host synchronisation, results on the input's
device. A *score function* is any ``Callable[[Tensor, Tensor], Tensor]`` that maps logits ``(N, C)`` and labels
``(N,)`` to a score ``(N,)``; the built-in ones are plain functions below.

Logit layouts (``N`` samples, ``C`` classes):

- ``(N, C)`` with ``C >= 2``: multi-class, softmax over the last dimension (``C == 2`` is a binary task read as two
  classes).
- ``(N,)`` or ``(N, 1)``: binary, a single logit per sample, the probability of class 1 is ``sigmoid(logit)``.

Both layouts are turned into a class-probability matrix ``(N, C)`` (``C == 2`` for a single logit), so every measure
means the same thing for every layout.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from hardmine.core.columns import HARDER_WHEN, MEASURES

__all__ = [
    "MEASURES",
    "HARDER_WHEN",
    "ScoreFn",
    "as_class_logits",
    "compute_measures",
    "confidence_score",
    "entropy_score",
    "label_prob_score",
    "loss_score",
    "margin_score",
    "num_classes_of",
    "per_sample_targets",
]

ScoreFn = Callable[[Tensor, Tensor], Tensor]


def num_classes_of(logits: Tensor) -> int:
    """Number of classes that ``logits`` describe: ``C`` for ``(N, C)``, 2 for a single binary logit.

    Example:
        >>> num_classes_of(torch.zeros(4, 10)), num_classes_of(torch.zeros(4)), num_classes_of(torch.zeros(4, 1))
        (10, 2, 2)
    """
    if logits.ndim == 1 or (logits.ndim == 2 and logits.shape[1] == 1):
        return 2
    if logits.ndim == 2:
        return int(logits.shape[1])
    raise ValueError(
        f"Expected argument `logits` of shape (N,), (N, 1) or (N, C), but got shape {tuple(logits.shape)}."
    )


def as_class_logits(logits: Tensor) -> Tensor:
    """Turn any supported logit layout into class logits ``(N, C)`` whose softmax is the class probabilities.

    A single binary logit ``z`` becomes ``(0, z)``: ``softmax((0, z))[1] == sigmoid(z)`` exactly.

    Args:
        logits: float tensor ``(N,)``, ``(N, 1)`` or ``(N, C)``.

    Returns:
        Float tensor ``(N, C)`` (``C == 2`` for a single logit), same dtype and device as ``logits``.

    Example:
        >>> as_class_logits(torch.tensor([0.5, -1.0]))
        tensor([[ 0.0000,  0.5000],
                [ 0.0000, -1.0000]])
    """
    if not isinstance(logits, Tensor):
        raise TypeError(f"Expected argument `logits` to be a torch.Tensor, but got {type(logits).__name__}.")
    if not logits.is_floating_point():
        raise TypeError(f"Expected argument `logits` to be a floating point tensor, but got dtype {logits.dtype}.")
    if logits.ndim == 2 and logits.shape[1] == 1:
        logits = logits[:, 0]
    if logits.ndim == 1:
        return torch.stack([torch.zeros_like(logits), logits], dim=1)
    if logits.ndim == 2 and logits.shape[1] >= 2:
        return logits
    raise ValueError(
        f"Expected argument `logits` of shape (N,), (N, 1) or (N, C) with C >= 2, but got shape {tuple(logits.shape)}."
    )


def per_sample_targets(logits: Tensor, targets: Tensor, *, name: str = "targets") -> Tensor:
    """Check that ``targets`` holds one entry per row of ``logits`` and return it as ``(N,)``.

    ``(N, 1)`` is flattened; any other shape, or a sample count that differs from the logits', is a ``ValueError``
    that names the argument ``name``; a non-tensor is a ``TypeError``.

    Example:
        >>> per_sample_targets(torch.zeros(3, 2), torch.tensor([[0], [1], [1]])).tolist()
        [0, 1, 1]
    """
    if not isinstance(targets, Tensor):
        raise TypeError(f"Expected argument `{name}` to be a torch.Tensor, but got {type(targets).__name__}.")
    if targets.ndim == 2 and targets.shape[1] == 1:
        targets = targets[:, 0]
    if targets.ndim != 1:
        raise ValueError(
            f"Expected argument `{name}` to hold one class index per sample, shape (N,), but got shape "
            f"{tuple(targets.shape)}. One-hot or multi-label targets are not class indices: pass `{name}.argmax(1)` "
            "for one-hot targets."
        )
    if targets.shape[0] != logits.shape[0]:
        raise ValueError(
            f"Expected `logits` and `{name}` to have the same number of samples, but got {logits.shape[0]} logits "
            f"and {targets.shape[0]} {name}."
        )
    return targets


def _prepare(logits: Tensor, labels: Tensor) -> tuple[Tensor, Tensor]:
    """Class logits in at least float32 and labels as int64, with shapes checked."""
    z = as_class_logits(logits)
    if z.dtype in (torch.float16, torch.bfloat16):
        z = z.float()
    labels = per_sample_targets(z, labels, name="labels")
    if labels.device != z.device:
        labels = labels.to(z.device, non_blocking=True)
    return z, labels.long()


def compute_measures(logits: Tensor, labels: Tensor) -> dict[str, Tensor]:
    """All per-sample measures in one pass: the work :func:`hardmine.score` does on every batch.

    Labels outside ``[0, C)`` are clamped for the gather so that the call never fails on the device; the caller checks
    them (see ``valid`` in the result) once, at the end, without a host synchronisation per batch.

    Accepts the following input tensors:

    - ``logits`` (float tensor): ``(N,)``, ``(N, 1)`` or ``(N, C)``
    - ``labels`` (int tensor, or float holding whole numbers): ``(N,)``

    Returns:
        A dict of tensors of shape ``(N,)`` on ``logits.device``: ``pred`` (int64, the arg-max class), ``confidence``
        (the probability of ``pred``), ``label_prob`` (the probability of the label), ``margin`` (``label_prob`` minus
        the largest other class probability, in ``[-1, 1]``), ``entropy`` (of the class distribution, in nats),
        ``loss`` (cross-entropy of the label, in nats), all float32 or float64; ``valid`` (bool: the label is a class
        index in ``[0, C)``) and ``finite`` (bool: every logit of the sample is finite).

    Example:
        >>> m = compute_measures(torch.tensor([[2.0, 0.0], [0.0, 2.0]]), torch.tensor([0, 0]))
        >>> m["pred"].tolist(), [round(v, 4) for v in m["label_prob"].tolist()]
        ([0, 1], [0.8808, 0.1192])
    """
    z, y = _prepare(logits, labels)
    num_classes = z.shape[1]
    valid = (y >= 0) & (y < num_classes)
    if labels.is_floating_point():
        valid &= labels.reshape(-1) == y.to(labels.dtype)
    finite = torch.isfinite(z).all(dim=1)
    y_safe = y.clamp(0, num_classes - 1)

    log_p = torch.log_softmax(z, dim=1)
    p = log_p.exp()
    confidence, pred = p.max(dim=1)
    label_log_p = log_p.gather(1, y_safe[:, None])[:, 0]
    label_prob = label_log_p.exp()
    others = p.scatter(1, y_safe[:, None], float("-inf"))
    margin = label_prob - others.max(dim=1).values
    # 0 * log(0) is 0: xlogy gives exactly that where a probability underflows to zero.
    entropy = -(torch.special.xlogy(p, p)).sum(dim=1)
    return {
        "pred": pred,
        "confidence": confidence,
        "label_prob": label_prob,
        "margin": margin,
        "entropy": entropy,
        "loss": -label_log_p,
        "valid": valid,
        "finite": finite,
    }


def confidence_score(logits: Tensor, labels: Tensor | None = None) -> Tensor:
    """Probability of the predicted class, the classic "confidence" (lower is harder). Ignores the labels.

    Args:
        logits: float tensor ``(N,)``, ``(N, 1)`` or ``(N, C)``.
        labels: unused; accepted so that every score function has the same signature.

    Returns:
        Float tensor ``(N,)`` in ``[1/C, 1]``.

    Example:
        >>> confidence_score(torch.tensor([[0.0, 0.0], [10.0, 0.0]])).round(decimals=4)
        tensor([0.5000, 1.0000])
    """
    z = as_class_logits(logits)
    return torch.softmax(z.float() if z.dtype in (torch.float16, torch.bfloat16) else z, dim=1).max(dim=1).values


def label_prob_score(logits: Tensor, labels: Tensor) -> Tensor:
    """Probability the model gives the ground-truth label (lower is harder); confident learning's self-confidence.

    Args:
        logits: float tensor ``(N,)``, ``(N, 1)`` or ``(N, C)``.
        labels: int tensor ``(N,)`` of class indices in ``[0, C)``.

    Returns:
        Float tensor ``(N,)`` in ``[0, 1]``.

    Example:
        >>> label_prob_score(torch.tensor([[2.0, 0.0]]), torch.tensor([1])).round(decimals=4)
        tensor([0.1192])
    """
    return _checked(logits, labels)["label_prob"]


def margin_score(logits: Tensor, labels: Tensor) -> Tensor:
    """Label probability minus the largest other class probability (lower is harder; negative means misclassified).

    Args:
        logits: float tensor ``(N,)``, ``(N, 1)`` or ``(N, C)``.
        labels: int tensor ``(N,)`` of class indices in ``[0, C)``.

    Returns:
        Float tensor ``(N,)`` in ``[-1, 1]``.

    Example:
        >>> margin_score(torch.tensor([[0.0, 0.0, 0.0]]), torch.tensor([2]))
        tensor([0.])
    """
    return _checked(logits, labels)["margin"]


def entropy_score(logits: Tensor, labels: Tensor | None = None) -> Tensor:
    """Entropy of the predicted class distribution in nats (higher is harder). Ignores the labels.

    Args:
        logits: float tensor ``(N,)``, ``(N, 1)`` or ``(N, C)``.
        labels: unused; accepted so that every score function has the same signature.

    Returns:
        Float tensor ``(N,)`` in ``[0, log C]``.

    Example:
        >>> entropy_score(torch.zeros(1, 4)).round(decimals=4)  # uniform over 4 classes: log(4)
        tensor([1.3863])
    """
    z = as_class_logits(logits)
    log_p = torch.log_softmax(z.float() if z.dtype in (torch.float16, torch.bfloat16) else z, dim=1)
    return -(torch.special.xlogy(log_p.exp(), log_p.exp())).sum(dim=1)


def loss_score(logits: Tensor, labels: Tensor) -> Tensor:
    """Per-sample cross-entropy of the ground-truth label in nats (higher is harder).

    For a single binary logit this equals ``binary_cross_entropy_with_logits``.

    Args:
        logits: float tensor ``(N,)``, ``(N, 1)`` or ``(N, C)``.
        labels: int tensor ``(N,)`` of class indices in ``[0, C)``.

    Returns:
        Float tensor ``(N,)``, non-negative.

    Example:
        >>> loss_score(torch.tensor([[0.0, 0.0]]), torch.tensor([1])).round(decimals=4)  # log(2)
        tensor([0.6931])
    """
    z, y = _prepare(logits, labels)
    _check_labels(y, z.shape[1], labels)
    return F.cross_entropy(z, y, reduction="none")


def _check_labels(labels: Tensor, num_classes: int, original: Tensor | None = None) -> None:
    # The functional API validates eagerly (one sync per call); hm.score defers the check to the end of the pass.
    bad = (labels < 0) | (labels >= num_classes)
    shown = labels
    if original is not None and original.is_floating_point():
        # Float labels must hold whole numbers: 2.7 would otherwise be read as class 2 without a word.
        shown = original.reshape(-1).to(labels.device)
        bad |= shown != labels.to(shown.dtype)
    if bool(bad.any()):
        idx = bad.nonzero()[:, 0][:10].tolist()
        raise ValueError(
            f"Expected `labels` to be class indices in [0, {num_classes}), but samples {idx} have labels "
            f"{shown[idx].tolist()}."
        )


def _checked(logits: Tensor, labels: Tensor) -> dict[str, Tensor]:
    z, y = _prepare(logits, labels)
    _check_labels(y, z.shape[1], labels)
    return compute_measures(z, y)
