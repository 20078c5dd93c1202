"""In-batch selection: score a large candidate batch without gradients and train on the part that still teaches.

:func:`select_batch` runs the model once, in eval mode and without gradients, on a candidate batch of ``B`` samples and
returns the positions of the ``k`` samples to train on:

- by **loss** (selective backprop, Jiang et al., 2019): the ``k`` samples with the largest loss (``method="top"``,
  the default), or, as in the paper, a draw in which each sample's chance grows with the percentile of its loss among
  the recent losses: weight ``CDF(loss) ** beta`` over a :class:`LossHistory` (``method="percentile"``; the paper
  draws each sample independently with probability ``CDF ** beta``; here exactly ``k`` samples are drawn without
  replacement with those weights, so every training batch has the same size);
- by **reducible loss** (RHO-LOSS, Mindermann et al., 2022) when ``irreducible`` is given: ``loss - irreducible``,
  where ``irreducible`` holds the losses of the same samples under a small model trained on held-out data. A sample
  the model already fits has a low loss, a sample nobody can fit (a wrong label, an ambiguous input) has a high
  irreducible loss: both score low and are skipped.

The model is left as it was: every submodule's training flag is restored and BatchNorm running statistics do not
move (the pass runs in eval mode under ``torch.no_grad``). On an accelerator nothing waits for the device: the
selection is a ``topk`` (or a ``multinomial``) on the device; the only host synchronisation is the optional check for
non-finite losses (``check_finite``), which is free on the CPU and off by default elsewhere.

The candidate pass costs one forward pass over ``B`` samples (about a third of a training step over ``B``), so the
selection pays when it saves more steps than that: see ``docs/benchmarks/mining.md`` for measurements.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any, Literal

import torch
from torch import Tensor, nn

from hardmine.core import validate
from hardmine.feedback.losses import per_sample_cross_entropy

__all__ = ["SELECT_METHODS", "LossHistory", "select_batch"]

SelectMethod = Literal["top", "percentile"]
#: The ways :func:`select_batch` turns scores into a selection.
SELECT_METHODS: tuple[str, ...] = ("top", "percentile")


class LossHistory:
    """A ring buffer of the most recent selection scores, for :func:`select_batch`'s ``method="percentile"``.

    Selective backprop ranks a loss against the losses seen lately, not only against its own batch, so that a batch
    of easy samples is not forced to train on its "hardest" easy ones. ``LossHistory(size)`` keeps the last ``size``
    scores on the device of the first scores added; :meth:`cdf` gives the fraction of kept scores below each value.

    Args:
        size: how many recent scores to keep (the paper keeps the last 1,024 or more), ``>= 1``.

    Example:
        >>> h = LossHistory(4)
        >>> h.add(torch.tensor([1.0, 2.0, 3.0, 4.0, 5.0]))
        >>> h.values.tolist(), h.cdf(torch.tensor([2.5, 9.0])).tolist()
        ([5.0, 2.0, 3.0, 4.0], [0.25, 1.0])
    """

    def __init__(self, size: int = 1024) -> None:
        self.size = validate.integer("size", size, min=1)
        self._buffer: Tensor | None = None
        self._count = 0

    def __len__(self) -> int:
        return min(self._count, self.size)

    @property
    def values(self) -> Tensor:
        """The kept scores, float32 ``(min(count, size),)`` (ring order, not time order)."""
        if self._buffer is None:
            return torch.zeros(0)
        return self._buffer[: len(self)]

    def add(self, scores: Tensor) -> None:
        """Add a batch of scores ``(B,)``; the oldest are dropped once ``size`` are kept."""
        s = scores.detach().reshape(-1).to(torch.float32)
        if self._buffer is None or self._buffer.device != s.device:
            old = self.values.to(s.device)
            self._buffer = torch.zeros(self.size, dtype=torch.float32, device=s.device)
            self._buffer[: old.numel()] = old
        start = self._count % self.size
        if s.numel() >= self.size:  # only the last `size` survive; they land where the ring would have put them
            start = (self._count + s.numel() - self.size) % self.size
            self._count += s.numel() - self.size
            s = s[-self.size :]
        first = min(s.numel(), self.size - start)
        self._buffer[start : start + first] = s[:first]
        if first < s.numel():
            self._buffer[: s.numel() - first] = s[first:]
        self._count += s.numel()

    def cdf(self, scores: Tensor) -> Tensor:
        """The fraction of kept scores strictly below each of ``scores``, float32 ``(B,)`` in ``[0, 1]``."""
        kept = self.values.to(scores.device)
        if kept.numel() == 0:
            return torch.ones_like(scores, dtype=torch.float32)
        ordered = torch.sort(kept).values
        below = torch.searchsorted(ordered, scores.detach().to(torch.float32).contiguous(), right=False)
        return below.to(torch.float32) / kept.numel()

    def state_dict(self) -> dict[str, Any]:
        """The kept scores and the count, for a checkpoint (loads with ``torch.load(..., weights_only=True)``)."""
        return {"size": self.size, "count": self._count, "values": self.values.detach().cpu().clone()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore :meth:`state_dict`."""
        if int(state["size"]) != self.size:
            raise ValueError(f"Expected a LossHistory state of size {self.size}, but got size {state['size']}.")
        values = state["values"]
        self._buffer = torch.zeros(self.size, dtype=torch.float32)
        self._buffer[: values.numel()] = values
        self._count = int(state["count"])


def num_to_keep(keep: float | int, batch: int) -> int:
    """How many of ``batch`` candidates ``keep`` asks for: a count (int in ``[1, batch]``) or a fraction.

    A float in ``(0, 1]`` keeps ``ceil(keep * batch)`` (at least 1).

    Example:
        >>> num_to_keep(0.25, 10), num_to_keep(3, 10)
        (3, 3)
    """
    if isinstance(keep, float):  # a fraction of the candidates
        return max(1, math.ceil(validate.fraction("keep", keep, open_low=True) * batch))
    if isinstance(keep, bool) or not isinstance(keep, int):
        raise TypeError(f"`keep` must be an integer count or a float fraction, got {type(keep).__name__} {keep!r}")
    return validate.integer("keep", keep, min=1, max=batch)  # a count, at most the candidate batch size


def _forward(model: nn.Module, inputs: Any) -> Any:
    if isinstance(inputs, Mapping):
        return model(**inputs)
    return model(inputs)


def _batch_size(inputs: Any) -> int:
    if isinstance(inputs, Tensor):
        return int(inputs.shape[0]) if inputs.ndim else 0
    if isinstance(inputs, Mapping) and inputs:
        return _batch_size(next(iter(inputs.values())))
    if isinstance(inputs, (tuple, list)) and inputs:
        return _batch_size(inputs[0])
    raise TypeError(
        f"Expected argument `inputs` to be a tensor (or a dict of tensors, passed as keyword arguments), but got "
        f"{type(inputs).__name__}."
    )


def candidate_losses(
    model: nn.Module,
    inputs: Any,
    targets: Tensor,
    *,
    loss_fn: Callable[[Any, Tensor], Tensor] | None = None,
) -> Tensor:
    """Per-sample losses ``(B,)`` of a candidate batch, with the model in eval mode and without gradients.

    Every submodule's training flag is restored afterwards, so BatchNorm statistics and dropout state are untouched.

    Args:
        model: the model being trained.
        inputs: a tensor ``(B, ...)``, or a dict of tensors passed as keyword arguments.
        targets: the batch's targets, ``(B,)`` class indices for the default loss.
        loss_fn: ``loss_fn(outputs, targets) -> (B,)`` per-sample losses; default: cross-entropy
            (:func:`hardmine.feedback.losses.per_sample_cross_entropy`).

    Returns:
        Float tensor ``(B,)`` on the outputs' device, detached.

    Example:
        >>> model = nn.Linear(3, 2)
        >>> candidate_losses(model, torch.zeros(4, 3), torch.tensor([0, 1, 0, 1])).shape
        torch.Size([4])
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"Expected argument `model` to be a torch.nn.Module, but got {type(model).__name__}.")
    batch = _batch_size(inputs)
    modes = [(m, m.training) for m in model.modules()]
    try:
        model.eval()
        with torch.no_grad():
            outputs = _forward(model, inputs)
            losses = (loss_fn or per_sample_cross_entropy)(outputs, targets)
    finally:
        for module, was_training in modes:
            module.training = was_training
    if not isinstance(losses, Tensor) or losses.shape != (batch,):
        shown = tuple(losses.shape) if isinstance(losses, Tensor) else type(losses).__name__
        raise ValueError(
            f"Expected `loss_fn(outputs, targets)` to return per-sample losses of shape ({batch},), but got {shown}; "
            "use reduction='none'."
        )
    return losses.detach()


def select_batch(
    model: nn.Module,
    inputs: Any,
    targets: Tensor,
    keep: float | int,
    *,
    irreducible: Tensor | None = None,
    loss_fn: Callable[[Any, Tensor], Tensor] | None = None,
    method: SelectMethod = "top",
    history: LossHistory | None = None,
    beta: float = 1.0,
    generator: torch.Generator | None = None,
    check_finite: bool | None = None,
    return_scores: bool = False,
) -> Tensor | tuple[Tensor, Tensor]:
    """Positions of the ``keep`` samples of a candidate batch to train on: largest (reducible) loss first.

    Accepts the following inputs:

    - ``inputs``: a tensor ``(B, ...)`` (or a dict of them, passed to the model as keyword arguments)
    - ``targets``: ``(B,)`` (class indices for the default cross-entropy)
    - ``irreducible`` (float tensor): ``(B,)``, the same samples' losses under the irreducible-loss model

    Args:
        model: the model being trained; it runs once, in eval mode under ``torch.no_grad``, and every submodule's
            training flag is put back (BatchNorm running statistics do not move).
        inputs: the candidate batch.
        targets: its targets.
        keep: how many to train on: an int count in ``[1, B]`` or a float fraction in ``(0, 1]``
            (``ceil(keep * B)``).
        irreducible: per-sample irreducible losses ``(B,)``: the selection score becomes ``loss - irreducible``
            (RHO-LOSS). Typically ``il[idx]`` with ``il = torch.tensor(hm.score(il_model, loader)["loss"])`` over
            the training set and ``idx`` the batch's dataset indices.
        loss_fn: ``loss_fn(outputs, targets) -> (B,)`` per-sample losses; default: cross-entropy.
        method: ``"top"`` (default): the ``k`` largest scores. ``"percentile"``: draw ``k`` without replacement with
            weights ``CDF(score) ** beta``, the CDF over ``history`` (selective backprop's rule; the batch's own
            scores join the history first).
        history: a :class:`LossHistory` shared across calls, for ``"percentile"`` (default: the batch alone).
        beta: the exponent of ``"percentile"``, ``> 0``; larger favours high losses more (the paper uses 1 to 3).
        generator: the random generator of ``"percentile"`` (on the scores' device).
        check_finite: raise on NaN or infinite scores. Default ``None``: checked on the CPU (free), not on an
            accelerator (the check would wait for the device; a NaN score is then picked first and shows in the
            training loss). ``True`` always checks.
        return_scores: also return the selection scores ``(B,)`` (loss, or loss minus irreducible), e.g. to pass
            the losses to :meth:`hardmine.HardMiner.observe`.

    Returns:
        int64 positions ``(k,)`` in ascending order on the scores' device: train on ``inputs[pos]``,
        ``targets[pos]``. With ``return_scores``, ``(positions, scores)``.

    Raises:
        ValueError: ``keep`` out of range, ``irreducible`` of the wrong shape, non-finite scores, a bad ``method`` or
            ``beta``, per-sample losses of the wrong shape.
        TypeError: ``keep`` not a number, ``model`` not a module, ``irreducible`` not a tensor.

    Example:
        >>> torch.manual_seed(0) and None
        >>> model = nn.Linear(4, 3)
        >>> x, y = torch.randn(8, 4), torch.randint(0, 3, (8,))
        >>> pos = select_batch(model, x, y, keep=0.25)
        >>> losses = nn.functional.cross_entropy(model(x), y, reduction="none")
        >>> pos.tolist() == sorted(losses.topk(2).indices.tolist())
        True
    """
    if method not in SELECT_METHODS:
        raise ValueError(f"Expected argument `method` to be one of {SELECT_METHODS}, but got {method!r}.")
    validate.number("beta", beta, min=0, min_open=True)
    if history is not None and not isinstance(history, LossHistory):
        raise TypeError(f"Expected argument `history` to be a hardmine LossHistory or None, but got {history!r}.")
    batch = _batch_size(inputs)
    if batch == 0:
        raise ValueError("Expected a candidate batch of at least one sample, but `inputs` is empty.")
    k = num_to_keep(keep, batch)
    if irreducible is not None:
        if not isinstance(irreducible, Tensor):
            raise TypeError(
                f"Expected argument `irreducible` to be a float tensor of shape ({batch},), but got "
                f"{type(irreducible).__name__}."
            )
        if irreducible.shape != (batch,):
            raise ValueError(
                f"Expected argument `irreducible` to hold one loss per candidate, shape ({batch},), but got shape "
                f"{tuple(irreducible.shape)}; index the irreducible losses by the batch's dataset indices."
            )
    losses = candidate_losses(model, inputs, targets, loss_fn=loss_fn)
    scores = losses.to(torch.float32)
    if irreducible is not None:
        scores = scores - irreducible.detach().to(scores.device, torch.float32, non_blocking=True)
    if check_finite or (check_finite is None and scores.device.type == "cpu"):
        bad = ~torch.isfinite(scores)
        if bool(bad.any()):
            rows = bad.nonzero()[:, 0][:10].tolist()
            what = "losses minus irreducible losses" if irreducible is not None else "losses"
            raise ValueError(
                f"Expected finite {what}, but candidates {rows} have {scores[rows].tolist()} "
                "(check the model's outputs and the targets of these samples)."
            )
    if method == "top":
        positions = torch.topk(scores, k, sorted=False).indices
    else:
        if history is not None:
            history.add(scores)
            cdf = history.cdf(scores)
        else:
            cdf = torch.searchsorted(torch.sort(scores).values, scores, right=True).to(torch.float32) / batch
        weights = cdf.clamp_min(1e-6).pow(beta)
        positions = torch.multinomial(weights, k, replacement=False, generator=generator)
    positions = torch.sort(positions).values
    return (positions, scores) if return_scores else positions
