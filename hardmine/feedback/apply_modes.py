"""How a :class:`hardmine.HardMiner` applies the weights: one strategy per ``apply`` mode.

- ``"sample"`` (:class:`SampleMode`): hard samples are drawn more often; loss weights stay 1.
- ``"loss"`` (:class:`LossMode`): uniform draws; every sample carries its weight in the loss, scaled to a mean of 1.
- ``"sample+correct"`` (:class:`SampleCorrectMode`): weighted draws and importance weights ``1 / (N p_i)``
  (:func:`importance_weights`) that keep the weighted mean loss an unbiased estimate of the plain mean loss.

A mode turns the miner's weights ``w`` (float64 ``(N,)``) into the draw's sampling weights and the batches' loss
weights, says whether mining epochs draw from the weighted sampler, and refuses the settings it cannot serve.

Example:
    >>> w = torch.tensor([1.0, 3.0], dtype=torch.float64)
    >>> apply_mode("loss").sampling(w), apply_mode("loss").weighted_draw
    (tensor([1., 1.], dtype=torch.float64), False)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar, Literal, Protocol

import torch
from torch import Tensor

from hardmine.core import validate
from hardmine.core._tensors import real_tensor
from hardmine.feedback.sampling import check_sampling_weights

if TYPE_CHECKING:
    from hardmine.feedback.miner_settings import MinerSettings

__all__ = [
    "APPLY_MODES",
    "Apply",
    "ApplyMode",
    "LossMode",
    "SampleCorrectMode",
    "SampleMode",
    "apply_mode",
    "importance_weights",
]

Apply = Literal["sample", "loss", "sample+correct"]


def importance_weights(
    weights: Tensor, *, expected_draws: Tensor | None = None, num_draws: int | None = None
) -> Tensor:
    """Loss weights that undo a weighted draw: ``1 / (N p_i)`` with ``p_i = w_i / sum(w)``.

    With i.i.d. draws of probability ``p_i``, ``E[1 / (N p_i) * loss_i] = mean(loss)``: the weighted mean loss of a
    batch is an unbiased estimate of the plain mean loss over the ``N`` samples. For a draw that is not i.i.d. (every
    sample once plus weighted extra draws, or batches with guaranteed shares), pass ``expected_draws``, the expected
    number of times each sample is drawn per epoch, and ``num_draws``, the draws per epoch: the weights are then
    ``num_draws / (N * expected_draws_i)``, which is ``1 / (N p_i)`` for i.i.d. draws
    (``expected_draws = num_draws * p``).

    Args:
        weights: float tensor ``(N,)`` of sampling weights, non-negative, not all zero.
        expected_draws: float tensor ``(N,)``, optional.
        num_draws: int, required with ``expected_draws``.

    Returns:
        Float tensor ``(N,)`` (float64); zero where a sample is never drawn (it never needs a weight).

    Example:
        >>> importance_weights(torch.tensor([1.0, 1.0, 2.0]))
        tensor([1.3333, 1.3333, 0.6667], dtype=torch.float64)
    """
    w = check_sampling_weights(weights).to(torch.float64)  # 1-D, finite, non-negative, not all zero, or an error
    n = w.numel()
    if expected_draws is None:
        p = w / w.sum()
        return torch.where(p > 0, 1.0 / (n * p.clamp_min(torch.finfo(torch.float64).tiny)), 0.0)
    if num_draws is None:
        raise ValueError("Expected argument `num_draws` together with `expected_draws`, but got None.")
    num_draws = validate.integer("num_draws", num_draws, min=1)
    c = real_tensor("expected_draws", expected_draws, "a float tensor (N,)").detach().to(torch.float64)
    if c.shape != (n,) or not bool((torch.isfinite(c) & (c >= 0)).all()):
        raise ValueError(
            f"Expected argument `expected_draws` to be finite non-negative counts of shape ({n},), but got shape "
            f"{tuple(c.shape)}."
        )
    return torch.where(c > 0, num_draws / (n * c.clamp_min(torch.finfo(torch.float64).tiny)), 0.0)


class _Draw(Protocol):
    """What a mode reads from the miner's draw (``hardmine.feedback.batching``) once the sampling weights are in."""

    def expected_draws(self) -> Tensor: ...

    def draws_per_epoch(self) -> int: ...


class ApplyMode:
    """One way of applying the weights; the subclasses are the ``apply`` modes.

    Attributes:
        name: the ``apply`` value.
        weighted_draw: mining epochs draw in proportion to the sampling weights (else every sample once).
        yields_weights: batches carry loss weights by default (``with_weights=None``).
        serves_sampler: :meth:`hardmine.HardMiner.as_sampler` can stand for the miner (indices are enough).
    """

    name: ClassVar[str]
    weighted_draw: ClassVar[bool] = True
    yields_weights: ClassVar[bool] = True
    serves_sampler: ClassVar[bool] = False

    def check(self, settings: MinerSettings) -> None:
        """Raise ``ValueError`` for settings this mode cannot serve."""

    def sampling(self, w: Tensor) -> Tensor:
        """The draw's sampling weights, float64 ``(N,)``, from the miner's weights ``w``."""
        return w

    def loss_weights(self, w: Tensor, draw: _Draw) -> Tensor:
        """Per-sample loss weights ``(N,)``, read once ``draw`` holds :meth:`sampling` of ``w``."""
        return torch.ones_like(w)

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class SampleMode(ApplyMode):
    """``apply="sample"``: draw hard samples more often; the loss is the user's own, unweighted."""

    name = "sample"
    yields_weights = False
    serves_sampler = True


class LossMode(ApplyMode):
    """``apply="loss"``: uniform draws (every sample once); loss weights ``w / mean(w)``."""

    name = "loss"
    weighted_draw = False

    def check(self, settings: MinerSettings) -> None:
        """Batch shares change how batches are drawn, and this mode draws uniformly."""
        if settings.shares.active:
            raise ValueError(
                "Expected `apply` to be 'sample' or 'sample+correct' with `positive_share`/`hard_share` "
                "(shares change how batches are drawn), but got apply='loss'."
            )

    def sampling(self, w: Tensor) -> Tensor:
        """Uniform: every sampling weight is 1."""
        return torch.ones_like(w)

    def loss_weights(self, w: Tensor, draw: _Draw) -> Tensor:
        """The weights scaled to a dataset mean of 1."""
        return w / w.mean()


class SampleCorrectMode(ApplyMode):
    """``apply="sample+correct"``: weighted draws, and importance weights that keep the gradient unbiased."""

    name = "sample+correct"

    def check(self, settings: MinerSettings) -> None:
        """Draws without replacement have no simple probability to correct for."""
        if settings.sampler_mode == "no_replacement":
            raise ValueError(
                "Expected `sampler_mode` 'replacement' or 'cover' with apply='sample+correct' (draws "
                "without replacement have no simple probability to correct for), but got "
                "'no_replacement'."
            )

    def loss_weights(self, w: Tensor, draw: _Draw) -> Tensor:
        """:func:`importance_weights` of the draw's expected draws per sample."""
        return importance_weights(w, expected_draws=draw.expected_draws(), num_draws=draw.draws_per_epoch())


_MODES: dict[str, ApplyMode] = {mode.name: mode for mode in (SampleMode(), LossMode(), SampleCorrectMode())}
#: The ``apply`` values :class:`hardmine.HardMiner` takes.
APPLY_MODES: tuple[str, ...] = tuple(_MODES)


def apply_mode(name: str) -> ApplyMode:
    """The strategy of ``apply=name`` (one of :data:`APPLY_MODES`, checked by the miner's settings).

    Example:
        >>> apply_mode("sample+correct")
        SampleCorrectMode()
    """
    return _MODES[name]
