"""In-batch selection: score a large candidate batch without gradients and train on the part that still teaches.

:func:`select_batch` runs the model once, in eval mode and without gradients, on a candidate batch of ``B`` samples and
returns the positions of the ``k`` samples to train on:

- by **loss** (selective backprop, Jiang et al., 2019): the ``k`` samples with the largest loss (``method="top"``,
  the default), or, as in the paper, a draw in which each sample's chance grows with the percentile of its loss among
  the recent losses: weight ``max(CDF(loss) ** beta, 1e-6)`` over a :class:`LossHistory` (``method="percentile"``;
  the CDF is the percentile rank of the paper's code, ``scipy.stats.percentileofscore(kind="rank") / 100`` after
  the batch joins the history; the paper draws each sample independently with probability ``CDF ** beta``; here
  exactly ``k`` samples are drawn without replacement with those weights, so every training batch has the same
  size);
- by **reducible loss** (RHO-LOSS, Mindermann et al., 2022) when ``irreducible`` is given: ``loss - irreducible``,
  where ``irreducible`` holds the losses of the same samples under a small model trained on held-out data. A sample
  the model already fits has a low loss, a sample nobody can fit (a wrong label, an ambiguous input) has a high
  irreducible loss: both score low and are skipped.

The model is left as it was: every submodule's training flag is restored and BatchNorm running statistics do not
move (the pass runs in eval mode under ``torch.no_grad``). On an accelerator nothing waits for the device: the
selection is a ``topk`` (or a ``multinomial``) on the device; the only host synchronisation is the optional check for
non-finite losses (``check_finite``), which is free on the CPU and off by default elsewhere. Scores are ranked in the
losses' own precision (float32 at least: float64 losses stay float64).

The candidate pass costs one forward pass over ``B`` samples (about a third of a training step over ``B``), so the
selection pays when it saves more steps than that: see ``docs/benchmarks/mining.md`` for measurements.
"""

from __future__ import annotations

import math
import numbers
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

#: The smallest weight of a candidate in ``method="percentile"``, applied after the power ``CDF ** beta`` (the
#: ``sampling_min`` of selective backprop's code), so that every ``beta > 0`` gives a valid distribution.
_MIN_WEIGHT = 1e-6


def _rank_dtype(*dtypes: torch.dtype) -> torch.dtype:
    """The dtype scores are ranked in: the widest of ``dtypes`` and float32 (float64 stays float64)."""
    out = torch.float32
    for dtype in dtypes:
        out = torch.promote_types(out, dtype)
    return out


def _largest_for_nan(scores: Tensor) -> Tensor:
    """``scores`` with NaN replaced by ``+inf``: a NaN loss ranks as the largest, whatever the method."""
    return torch.where(torch.isnan(scores), torch.full_like(scores, math.inf), scores)


def _percentile_rank(ordered: Tensor, scores: Tensor) -> Tensor:
    """``scipy.stats.percentileofscore(ordered, s, kind="rank") / 100`` for each ``s`` in ``scores``, on the device.

    ``ordered`` is sorted and non-empty, neither holds NaN. With ``left``/``right`` the number of values ``<`` and
    ``<=`` ``s``: ``(left + right + (right > left)) / (2 n)``: the mean 1-based rank of the values equal to ``s``
    (its rank among distinct values) over ``n``, or the fraction below ``s`` when no value equals it.
    """
    left = torch.searchsorted(ordered, scores, right=False)
    right = torch.searchsorted(ordered, scores, right=True)
    return (left + right + (right > left).to(left.dtype)).to(scores.dtype) / (2 * ordered.numel())


class LossHistory:
    """A ring buffer of the most recent selection scores, for :func:`select_batch`'s ``method="percentile"``.

    Selective backprop ranks a loss against the losses seen lately, not only against its own batch, so that a batch
    of easy samples is not forced to train on its "hardest" easy ones. ``LossHistory(size)`` keeps the last ``size``
    scores on the device of the latest scores added, in float32 (float64 once float64 scores are added); :meth:`cdf`
    gives each value's percentile rank among the kept scores, as selective backprop's code does. A NaN score is kept
    as ``+inf`` (the largest loss), so that the history never holds a NaN.

    Args:
        size: how many recent scores to keep (the paper keeps the last 1,024 or more), ``>= 1``.

    Example:
        >>> h = LossHistory(4)
        >>> h.add(torch.tensor([1.0, 2.0, 3.0, 4.0, 5.0]))
        >>> h.values.tolist(), h.cdf(torch.tensor([2.5, 3.0, 9.0])).tolist()
        ([5.0, 2.0, 3.0, 4.0], [0.25, 0.5, 1.0])
    """

    def __init__(self, size: int = 1024) -> None:
        self.size = validate.integer("size", size, min=1)
        self._buffer: Tensor | None = None
        self._count = 0

    def __len__(self) -> int:
        return min(self._count, self.size)

    @property
    def values(self) -> Tensor:
        """The kept scores ``(min(count, size),)``, float32 or float64 (ring order, not time order)."""
        if self._buffer is None:
            return torch.zeros(0)
        return self._buffer[: len(self)]

    def add(self, scores: Tensor) -> None:
        """Add a batch of scores ``(B,)``; the oldest are dropped once ``size`` are kept. NaN is kept as ``+inf``."""
        if not isinstance(scores, Tensor) or scores.is_complex():
            shown = scores.dtype if isinstance(scores, Tensor) else type(scores).__name__
            raise TypeError(f"Expected argument `scores` to be a real tensor, but got {shown}.")
        s = scores.detach().reshape(-1)
        dtype = _rank_dtype(s.dtype, *(() if self._buffer is None else (self._buffer.dtype,)))
        s = _largest_for_nan(s.to(dtype))
        if self._buffer is None or self._buffer.device != s.device or self._buffer.dtype != dtype:
            old = self.values.to(s.device, dtype)
            self._buffer = torch.zeros(self.size, dtype=dtype, device=s.device)
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
        """The percentile rank of each of ``scores`` among the kept scores, ``(B,)`` in ``[0, 1]``.

        Selective backprop's rule (its code calls ``scipy.stats.percentileofscore(history, loss, kind="rank")``
        after adding the loss to the history): with ``n`` kept scores, ``left`` of them below ``s`` and ``right``
        of them ``<= s``, the rank is ``(left + right + (1 if right > left else 0)) / (2 n)``. For a kept score
        whose value no other kept score shares this is ``right / n``, the fraction of kept scores ``<= s``; for
        tied scores the mean of their ranks; for a value not kept, the fraction of kept scores below it. A NaN
        counts as ``+inf``. With nothing kept every rank is 1.

        Args:
            scores: real tensor ``(B,)``.

        Returns:
            float32 ``(B,)`` (float64 when the scores or the kept scores are float64), on the scores' device.
        """
        s = scores.detach().reshape(-1)
        dtype = _rank_dtype(s.dtype, *(() if self._buffer is None else (self._buffer.dtype,)))
        s = _largest_for_nan(s.to(dtype)).contiguous()
        kept = self.values.to(s.device, dtype)
        if kept.numel() == 0:
            return torch.ones_like(s)
        return _percentile_rank(torch.sort(kept).values, s)

    def state_dict(self) -> dict[str, Any]:
        """The kept scores and the count, for a checkpoint (loads with ``torch.load(..., weights_only=True)``)."""
        return {"size": self.size, "count": self._count, "values": self.values.detach().cpu().clone()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore :meth:`state_dict`."""
        if int(state["size"]) != self.size:
            raise ValueError(f"Expected a LossHistory state of size {self.size}, but got size {state['size']}.")
        values = state["values"]
        self._buffer = torch.zeros(self.size, dtype=_rank_dtype(values.dtype))
        self._buffer[: values.numel()] = values
        self._count = int(state["count"])


def num_to_keep(keep: float | int, batch: int) -> int:
    """How many of ``batch`` candidates ``keep`` asks for: a count (int in ``[1, batch]``) or a fraction.

    An integer (Python or numpy, never ``bool``) is a count; any other real number (``float``, ``numpy.float32``) a
    fraction in ``(0, 1]``, which keeps ``ceil(keep * batch)`` (at least 1), computed without float rounding error:
    0.07 of 100 keeps 7, where ``math.ceil(0.07 * 100)`` is 8.

    Example:
        >>> num_to_keep(0.25, 10), num_to_keep(3, 10), num_to_keep(0.07, 100)
        (3, 3, 7)
    """
    if isinstance(keep, bool) or not isinstance(keep, numbers.Real):
        raise TypeError(f"`keep` must be an integer count or a float fraction, got {type(keep).__name__} {keep!r}")
    if isinstance(keep, numbers.Integral):
        return validate.integer("keep", keep, min=1, max=batch)  # a count, at most the candidate batch size
    return validate.fraction_count("keep", keep, batch)  # a fraction of the candidates


def _forward(model: nn.Module, inputs: Any) -> Any:
    if isinstance(inputs, Mapping):
        return model(**inputs)
    return model(inputs)


def _batch_size(inputs: Any, targets: Any) -> int:
    """The candidate batch size ``B``: the leading dimension of ``inputs`` (a tensor), or of a dict's values.

    A dict (or tuple/list) may hold values that are not per-sample (a scalar tensor, a Python number): they are passed
    through unchanged. ``B`` is ``len(targets)`` when ``targets`` is a tensor of at least one dimension, and then one
    tensor value must have that leading dimension; otherwise ``B`` is the leading dimension of the first tensor value
    that has one.
    """
    if isinstance(inputs, Tensor):
        return int(inputs.shape[0]) if inputs.ndim else 0
    if isinstance(inputs, (Mapping, tuple, list)) and inputs:
        items = list(inputs.items()) if isinstance(inputs, Mapping) else list(enumerate(inputs))
        leading = {key: int(v.shape[0]) for key, v in items if isinstance(v, Tensor) and v.ndim}
        if isinstance(targets, Tensor) and targets.ndim:
            batch = int(targets.shape[0])
            if batch in leading.values():
                return batch
            raise ValueError(
                f"Expected a tensor in `inputs` with a leading batch dimension of {batch} (the length of `targets`), "
                f"but got leading dimensions {leading or 'none (no tensor of one dimension or more)'}."
            )
        if leading:
            return next(iter(leading.values()))
    raise TypeError(
        f"Expected argument `inputs` to be a tensor (or a dict of tensors, passed as keyword arguments) with a batch "
        f"dimension, but got {type(inputs).__name__}"
        + (" without a tensor of one dimension or more." if isinstance(inputs, (Mapping, tuple, list)) else ".")
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
        inputs: a tensor ``(B, ...)``, or a dict passed as keyword arguments (values that are not per-sample,
            such as a scalar, pass through; ``B`` is ``len(targets)``, see :func:`select_batch`).
        targets: the batch's targets, ``(B,)`` class indices for the default loss.
        loss_fn: ``loss_fn(outputs, targets) -> (B,)`` per-sample losses; default: cross-entropy
            (:func:`hardmine.feedback.losses.per_sample_cross_entropy`), which needs the model to return a tensor of
            logits.

    Returns:
        Float tensor ``(B,)`` on the outputs' device, detached.

    Raises:
        TypeError: ``model`` not a module; the model's output not a tensor with the default loss.
        ValueError: per-sample losses of the wrong shape.

    Example:
        >>> model = nn.Linear(3, 2)
        >>> candidate_losses(model, torch.zeros(4, 3), torch.tensor([0, 1, 0, 1])).shape
        torch.Size([4])
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"Expected argument `model` to be a torch.nn.Module, but got {type(model).__name__}.")
    batch = _batch_size(inputs, targets)
    modes = [(m, m.training) for m in model.modules()]
    try:
        model.eval()
        with torch.no_grad():
            outputs = _forward(model, inputs)
            if loss_fn is None and not isinstance(outputs, Tensor):
                raise TypeError(
                    f"Expected the model's output to be a tensor of logits for the default cross-entropy, but got "
                    f"{type(outputs).__name__}; pass `loss_fn=lambda outputs, targets: ...` that takes this output "
                    "and returns per-sample losses (B,)."
                )
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

    - ``inputs``: a tensor ``(B, ...)``, or a dict passed to the model as keyword arguments; its values that are
      not per-sample (a scalar tensor, a Python number) pass through unchanged. ``B`` is then ``len(targets)`` (one
      tensor value must have that leading dimension), or, for targets that are not a tensor, the leading dimension
      of the first tensor value that has one.
    - ``targets``: ``(B,)`` (class indices for the default cross-entropy)
    - ``irreducible`` (real tensor): ``(B,)``, the same samples' losses under the irreducible-loss model

    Args:
        model: the model being trained; it runs once, in eval mode under ``torch.no_grad``, and every submodule's
            training flag is put back (BatchNorm running statistics do not move).
        inputs: the candidate batch.
        targets: its targets.
        keep: how many to train on: an int count in ``[1, B]`` or a float fraction in ``(0, 1]``
            (``ceil(keep * B)``, without float rounding error: 0.07 of 100 is 7). numpy integers and floats count as
            ints and floats.
        irreducible: per-sample irreducible losses ``(B,)``: the selection score becomes ``loss - irreducible``
            (RHO-LOSS). Typically ``il[idx]`` with ``il = torch.tensor(hm.score(il_model, loader)["loss"])`` over
            the training set and ``idx`` the batch's dataset indices.
        loss_fn: ``loss_fn(outputs, targets) -> (B,)`` per-sample losses; default: cross-entropy, which needs the
            model to return a tensor of logits (for a tuple or dict output, pass a ``loss_fn`` that takes it).
        method: ``"top"`` (default): the ``k`` largest scores. ``"percentile"``: draw ``k`` without replacement with
            weights ``max(CDF(score) ** beta, 1e-6)``, the CDF the percentile rank over ``history`` (selective
            backprop's rule, :meth:`LossHistory.cdf`; the batch's own scores join the history first). Without a
            history the batch alone is the history: the weights are those of a fresh :class:`LossHistory`.
        history: a :class:`LossHistory` shared across calls, for ``"percentile"`` (default: the batch alone).
        beta: the exponent of ``"percentile"``, ``> 0``; larger favours high losses more (the paper uses 1 to 3).
            The floor ``1e-6`` applies after the power, so any ``beta`` gives every candidate a chance.
        generator: the random generator of ``"percentile"`` (on the scores' device).
        check_finite: ``True``, ``False`` or ``None``: raise on NaN or infinite scores. Default ``None``: checked on
            the CPU (free), not on an accelerator (the check would wait for the device). Unchecked, a NaN score
            ranks as the largest, ``+inf``, in both methods: ``"top"`` picks it first, ``"percentile"`` gives it
            the largest weight, and a history records it as ``+inf``, never NaN; the returned scores keep the NaN
            and it shows in the training loss. ``True`` always checks.
        return_scores: ``True`` or ``False``: also return the selection scores ``(B,)`` (loss, or loss minus
            irreducible), e.g. to pass the losses to :meth:`hardmine.HardMiner.observe`.

    Returns:
        int64 positions ``(k,)`` in ascending order on the scores' device: train on ``inputs[pos]``,
        ``targets[pos]``. With ``return_scores``, ``(positions, scores)``: the scores in the precision they are
        ranked in, float32, or float64 when the losses or ``irreducible`` are float64 (half-precision losses are
        widened to float32).

    Raises:
        ValueError: ``keep`` out of range, ``irreducible`` of the wrong shape, non-finite scores, a bad ``method`` or
            ``beta``, per-sample losses of the wrong shape, dict ``inputs`` without a value of ``len(targets)``
            rows.
        TypeError: ``keep`` not a number, ``model`` not a module, ``irreducible`` not a real tensor, a flag not a
            bool, the model's output not a tensor with the default loss.

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
    check_finite = validate.optional(validate.boolean, "check_finite", check_finite)
    return_scores = validate.boolean("return_scores", return_scores)
    if history is not None and not isinstance(history, LossHistory):
        raise TypeError(f"Expected argument `history` to be a hardmine LossHistory or None, but got {history!r}.")
    batch = _batch_size(inputs, targets)
    if batch == 0:
        raise ValueError("Expected a candidate batch of at least one sample, but `inputs` is empty.")
    k = num_to_keep(keep, batch)
    if irreducible is not None:
        if not isinstance(irreducible, Tensor) or irreducible.dtype == torch.bool or irreducible.is_complex():
            shown = irreducible.dtype if isinstance(irreducible, Tensor) else type(irreducible).__name__
            raise TypeError(
                f"Expected argument `irreducible` to be a float tensor of shape ({batch},), but got {shown}."
            )
        if irreducible.shape != (batch,):
            raise ValueError(
                f"Expected argument `irreducible` to hold one loss per candidate, shape ({batch},), but got shape "
                f"{tuple(irreducible.shape)}; index the irreducible losses by the batch's dataset indices."
            )
    losses = candidate_losses(model, inputs, targets, loss_fn=loss_fn)
    # Ranked in the losses' own precision (float32 at least): float64 losses that differ below float32's resolution
    # keep their order, and RHO-LOSS's difference is taken before any rounding.
    dtype = _rank_dtype(losses.dtype, *(() if irreducible is None else (irreducible.dtype,)))
    scores = losses.to(dtype)
    if irreducible is not None:
        scores = scores - irreducible.detach().to(scores.device, dtype, non_blocking=True)
    if check_finite or (check_finite is None and scores.device.type == "cpu"):
        bad = ~torch.isfinite(scores)
        if bool(bad.any()):
            rows = bad.nonzero()[:, 0][:10].tolist()
            what = "losses minus irreducible losses" if irreducible is not None else "losses"
            raise ValueError(
                f"Expected finite {what}, but candidates {rows} have {scores[rows].tolist()} "
                "(check the model's outputs and the targets of these samples)."
            )
    ranked = _largest_for_nan(scores)  # unchecked NaN: the largest loss in both methods, never NaN in a history
    if method == "top":
        positions = torch.topk(ranked, k, sorted=False).indices
    else:
        if history is not None:
            history.add(ranked)
            cdf = history.cdf(ranked)
        else:  # the batch alone, as a fresh LossHistory holding it would rank it
            cdf = _percentile_rank(torch.sort(ranked).values, ranked)
        weights = cdf.pow(beta).clamp_min(_MIN_WEIGHT)  # floor after the power: no underflow to 0 for a large beta
        positions = torch.multinomial(weights, k, replacement=False, generator=generator)
    positions = torch.sort(positions).values
    return (positions, scores) if return_scores else positions
