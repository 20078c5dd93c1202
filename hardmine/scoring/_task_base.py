"""The pieces the built-in tasks share: per-sample losses, probabilities to logits, the shape checks, the base class.

Public names are re-exported by :mod:`hardmine.scoring.tasks`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

import torch
from torch import Tensor

__all__ = ["LossFn", "OutputsArg", "looks_like_probabilities", "outputs_to_logits", "per_sample_loss"]

LossFn = Callable[[Any, Any], Tensor]
OutputsArg = Literal["logits", "probs"] | None


def per_sample_loss(loss_fn: LossFn, outputs: Any, targets: Any, batch_size: int, where: str) -> Tensor:
    """``loss_fn(outputs, targets)`` as one float loss per sample ``(B,)``.

    An unreduced loss ``(B, ...)`` is averaged over all but the batch dimension.

    Raises:
        ValueError: for a scalar (a reduced loss: pass ``reduction="none"``) or a first dimension that is not the
            batch size, naming ``where``.

    Example:
        >>> mse = torch.nn.MSELoss(reduction="none")
        >>> per_sample_loss(mse, torch.zeros(2, 3), torch.ones(2, 3), 2, "batch 0").tolist()
        [1.0, 1.0]
    """
    loss = loss_fn(outputs, targets)
    if not isinstance(loss, Tensor):
        raise TypeError(f"Expected `loss_fn` to return a tensor, but it returned {type(loss).__name__} in {where}.")
    if loss.ndim == 0:
        raise ValueError(
            f"Expected `loss_fn` to return one loss per sample, shape ({batch_size},) or ({batch_size}, ...), but it "
            f"returned a scalar in {where}: build the loss with reduction='none'."
        )
    if loss.shape[0] != batch_size:
        raise ValueError(
            f"Expected `loss_fn` to return one loss per sample, shape ({batch_size},) or ({batch_size}, ...), but it "
            f"returned shape {tuple(loss.shape)} in {where}."
        )
    if not loss.is_floating_point():
        loss = loss.float()
    if loss.ndim > 1:
        loss = loss.reshape(batch_size, -1).mean(dim=1)
    return loss


def looks_like_probabilities(outputs: Tensor) -> bool:
    """Whether ``(B, C)`` outputs (``C >= 2``) all lie in ``[0, 1]`` and every row sums to 1 (within 1e-3).

    Example:
        >>> looks_like_probabilities(torch.tensor([[0.2, 0.8]]))
        True
        >>> looks_like_probabilities(torch.tensor([[2.0, -1.0]]))
        False
    """
    if outputs.ndim != 2 or outputs.shape[1] < 2 or outputs.shape[0] == 0 or not outputs.is_floating_point():
        return False
    o = outputs.detach().float()
    ok = (o >= 0).all() & (o <= 1).all() & ((o.sum(dim=1) - 1).abs() <= 1e-3).all()
    return bool(ok)


def outputs_to_logits(outputs: Tensor, *, per_label: bool = False) -> Tensor:
    """Probabilities to logits with the same softmax (or sigmoid).

    ``log p`` for ``(B, C)`` rows, ``logit p`` for a single probability per sample or per label (``per_label=True``,
    multi-label).

    Example:
        >>> torch.softmax(outputs_to_logits(torch.tensor([[0.25, 0.75]])), dim=1)
        tensor([[0.2500, 0.7500]])
    """
    p = outputs.float() if outputs.dtype in (torch.float16, torch.bfloat16) else outputs
    tiny = torch.finfo(p.dtype).tiny
    if per_label or p.ndim == 1 or (p.ndim == 2 and p.shape[1] == 1):
        p = p.clamp(tiny, 1 - torch.finfo(p.dtype).eps)
        return torch.log(p) - torch.log1p(-p)
    return torch.log(p.clamp_min(tiny))


def _finite_rows(x: Tensor) -> Tensor:
    return torch.isfinite(x.reshape(x.shape[0], -1)).all(dim=1)


def _check_logits(outputs: Tensor, where: str, *, single_ok: bool = True) -> None:
    if not isinstance(outputs, Tensor) or not outputs.is_floating_point():
        raise TypeError(
            f"Expected the model to return float logits, but got {getattr(outputs, 'dtype', type(outputs))} in {where}."
        )
    if outputs.ndim not in (1, 2) or (not single_ok and (outputs.ndim != 2 or outputs.shape[1] < 2)):
        shapes = "(B,), (B, 1) or (B, C)" if single_ok else "(B, C)"
        raise ValueError(
            f"Expected logits of shape {shapes}, but the model returned shape {tuple(outputs.shape)} in {where}. For "
            "segmentation or detection outputs, reduce them to one row of logits per sample first, or pass "
            "`loss_fn=` (task='loss')."
        )


def _same_batch(outputs: Tensor, targets: Tensor, where: str) -> None:
    if outputs.shape[0] != targets.shape[0]:
        raise ValueError(
            f"The model returned {outputs.shape[0]} rows of logits for {targets.shape[0]} targets in {where}: outputs "
            "and targets must have the same batch size."
        )


class _WithLoss:
    """A task whose ``loss`` column may come from the user's ``loss_fn``."""

    name = "loss"

    def __init__(self, loss_fn: LossFn | None = None, *, outputs: OutputsArg = None) -> None:
        self.loss_fn = loss_fn
        self.outputs = outputs

    def _user_loss(self, raw: Tensor, targets: Any, m: dict[str, Tensor]) -> None:
        if self.loss_fn is not None:
            loss = per_sample_loss(self.loss_fn, raw, targets, raw.shape[0], self._where)
            m["loss"] = loss
            m["finite_loss"] = torch.isfinite(loss)

    _where = "a batch"

    def _required(self, targets: Tensor | None, what: str) -> Tensor:
        """``targets``, which this task needs (its ``check`` refuses a batch without them, naming the batch)."""
        if targets is None:
            raise ValueError(f"Expected {what} targets, but got none.")
        return targets


def _whole_numbers(t: Tensor) -> bool:
    return bool((t == t.round()).all())
